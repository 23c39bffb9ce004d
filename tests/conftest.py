"""Shared fixtures for Skate's end-to-end tests.

Run against Skate:         python -m pytest tests/core
Run against real Ray:      SKATE_TEST_AGAINST_RAY=1 python -m pytest tests/core

In Ray mode ``skate`` (and skate.exceptions / skate.util / skate.actor /
skate.util.scheduling_strategies) are aliases of the Ray modules, so every
test checks that it encodes Ray's real semantics.  Skate-only checks (leaks of
Skate's processes and of /dev/shm/skate* files) are skipped in Ray mode.
"""

import glob
import os
import re
import sys

import pytest

from tests import _skate_alias
from tests._skate_alias import AGAINST_RAY

_skate_alias.install()

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if not AGAINST_RAY and REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from tests.core.utils import wait_for_condition  # noqa: E402

# Only this test process's own arenas (session names carry the creating pid), so
# concurrent test runs on the same machine do not trip each other's leak checks.
SHM_GLOB = f"/dev/shm/skate-s*-p{os.getpid()}-*"


# --------------------------------------------------------------------------
# markers
# --------------------------------------------------------------------------
def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "skate_only: Skate-specific check (e.g. process / shared-memory leak checks); "
        "skipped when running against real Ray (SKATE_TEST_AGAINST_RAY=1)",
    )
    config.addinivalue_line(
        "markers", "slow: long-running tests, run in the separate slow stage (pytest -m slow)"
    )


def pytest_ignore_collect(collection_path, config):
    """Ray mode: don't even import modules marked skate_only as a whole
    (``pytestmark = pytest.mark.skate_only``): they are unit tests of Skate
    internals (``skate.core...``) that cannot be imported when ``skate`` is
    an alias of Ray."""
    if not AGAINST_RAY or collection_path.suffix != ".py":
        return None
    if not collection_path.name.startswith("test_"):
        return None
    try:
        source = collection_path.read_text()
    except OSError:
        return None
    if re.search(r"^pytestmark\s*=.*\bskate_only\b", source, re.MULTILINE):
        return True
    return None


def pytest_collection_modifyitems(config, items):
    if not AGAINST_RAY:
        return
    skip = pytest.mark.skip(reason="skate_only: not applicable to real Ray")
    for item in items:
        if "skate_only" in item.keywords:
            item.add_marker(skip)


# --------------------------------------------------------------------------
# cluster management
# --------------------------------------------------------------------------
# The running cluster is shared by consecutive tests that ask for the same
# init() arguments, and shut down when a test needs different arguments, when
# a test uses ``shutdown_only`` and at the end of every module.
_current = {"kwargs": None}


def _start_cluster(**kwargs):
    import skate

    if skate.is_initialized():
        if _current["kwargs"] == kwargs:
            return skate
        _stop_cluster()
    _current["kwargs"] = None
    skate.init(**kwargs)
    _current["kwargs"] = kwargs
    return skate


def _stop_cluster():
    import skate

    _current["kwargs"] = None
    if skate.is_initialized():
        skate.shutdown()


def _leftover_children():
    """Live child processes of the test process (Skate mode leak check)."""
    import psutil

    leftovers = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(p.cmdline())
        except psutil.Error:
            continue  # already gone
        # multiprocessing's resource tracker is a per-interpreter singleton
        # that lives until the interpreter exits; it is not a Skate leak.
        if "multiprocessing.resource_tracker" in cmdline:
            continue
        leftovers.append(p)
    return leftovers


def _leftover_shm():
    return sorted(glob.glob(SHM_GLOB))


def assert_no_leaks(timeout=5):
    """Skate mode: no child processes and no /dev/shm/skate* after shutdown."""
    if AGAINST_RAY:
        return
    try:
        wait_for_condition(lambda: not _leftover_children(), timeout=timeout)
    except AssertionError:
        procs = _leftover_children()
        desc = []
        for p in procs:
            try:
                desc.append(f"{p.pid}: {' '.join(p.cmdline())[:200]}")
            except Exception:  # noqa: BLE001
                desc.append(str(p.pid))
            try:
                p.kill()  # they are our own children; keep later modules isolated
            except Exception:  # noqa: BLE001
                pass
        raise AssertionError(
            "child processes still alive %ss after skate.shutdown():\n  %s"
            % (timeout, "\n  ".join(desc))
        ) from None
    try:
        wait_for_condition(lambda: not _leftover_shm(), timeout=timeout)
    except AssertionError:
        raise AssertionError(
            f"{SHM_GLOB} entries left after skate.shutdown(): {_leftover_shm()}"
        ) from None


@pytest.fixture(scope="module", autouse=True)
def _module_cluster_cleanup():
    """Shut down whatever cluster a module left running; check for leaks."""
    try:
        yield
    finally:
        _stop_cluster()
        assert_no_leaks()


@pytest.fixture
def shutdown_only():
    """For tests that call ``skate.init(...)`` themselves.

    Guarantees no cluster is running at the start, and shuts down after.
    """
    _stop_cluster()
    try:
        yield
    finally:
        _stop_cluster()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "_skate_rep_" + rep.when, rep)


def _shared_cluster(request, kwargs):
    skate = _start_cluster(**kwargs)
    try:
        yield skate
    finally:
        # A failed test may leave the cluster in a bad state (blocked tasks,
        # dead actors): don't let it leak into the next test.
        rep = getattr(request.node, "_skate_rep_call", None)
        if rep is None or rep.failed:
            _stop_cluster()


@pytest.fixture
def skate_cluster(request):
    """A running cluster; init kwargs from ``request.param`` (indirect
    parametrization), default ``num_cpus=2``.  Reused by consecutive tests of
    a module that ask for the same kwargs; shut down at module end (or right
    after a failing test)."""
    kwargs = dict(getattr(request, "param", None) or {"num_cpus": 2})
    yield from _shared_cluster(request, kwargs)


@pytest.fixture
def start_cluster(request):
    """Factory: ``start_cluster(**init_kwargs)`` returns a running cluster,
    reusing the module's current one when the kwargs match."""
    try:
        yield lambda **kwargs: _start_cluster(**kwargs)
    finally:
        rep = getattr(request.node, "_skate_rep_call", None)
        if rep is None or rep.failed:
            _stop_cluster()


@pytest.fixture
def start_regular(request):
    """A running ``num_cpus=2`` cluster (shared within the module)."""
    yield from _shared_cluster(request, {"num_cpus": 2})


@pytest.fixture
def start_regular_4cpu(request):
    """A running ``num_cpus=4`` cluster (shared within the module)."""
    yield from _shared_cluster(request, {"num_cpus": 4})


@pytest.fixture
def wait_for():
    return wait_for_condition

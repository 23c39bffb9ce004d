"""A head with its dashboard, started as a user would (``skate start --head``), for the
end-to-end tests of this folder.

Each head lives in a temporary ``SKATE_TEMP_DIR`` of its own, so it neither sees nor
disturbs a head this machine (or another test run) started; the dashboard takes a free
port (``--dashboard-port 0``). Teardown runs ``skate stop`` and waits, with a deadline,
until the control store, the node manager and the dashboard are gone.
"""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from dataclasses import dataclass

import psutil
import pytest

from tests.core.utils import REPO_ROOT, wait_for_condition


@dataclass
class Head:
    url: str
    token: str
    session_dir: str
    env: dict  #: for processes that should find this head (skate.init(address="auto"), CLI)
    info: dict  #: what `skate start` recorded

    def cli(self, *args, check=True, timeout=60):
        proc = subprocess.run([sys.executable, "-m", "skate.scripts.skate_cli", *args],
                              capture_output=True, text=True, timeout=timeout, env=self.env)
        if check:
            assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    def driver(self, code, timeout=60):
        """Run ``code`` as a driver of this head; its CompletedProcess (checked: exit 0)."""
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                              text=True, timeout=timeout, env=self.env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    @contextlib.contextmanager
    def running(self, code, timeout=60):
        """Run ``code`` as a driver that stays: once it prints READY, the block runs; then
        its stdin closes (``sys.stdin.read()`` returns) and it must exit 0. Yields the
        process and what it printed before READY."""
        proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=self.env)
        try:
            printed = []
            deadline = time.monotonic() + timeout
            for line in proc.stdout:
                if line.strip() == "READY":
                    break
                printed.append(line)
                assert time.monotonic() < deadline, "".join(printed)
            else:
                raise AssertionError("the driver exited before READY:\n" + "".join(printed))
            yield proc, "".join(printed)
            proc.stdin.close()
            rest = proc.stdout.read()
            assert proc.wait(timeout) == 0, rest
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def get(self, path, token=False):
        req = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer "
                                                               f"{self.token}"} if token else {})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: driver code: a detached actor ``talker`` (namespace "pages") whose ``say(text)`` prints
TALKER = textwrap.dedent("""
    import skate
    skate.init(address="auto", namespace="pages")
    @skate.remote
    class Talker:
        def say(self, text):
            print(text, flush=True)
    talker = Talker.options(name="talker", lifetime="detached").remote()
""")


def serve_app(port, name, route, requests):
    """Driver code: serve on ``port`` with an application ``name`` of one deployment that
    answers "hello" at ``route``, then ``requests`` requests to it."""
    return textwrap.dedent(f"""
        import urllib.request
        from skate import serve
        serve.start(http_options={{"host": "127.0.0.1", "port": {port}}})
        @serve.deployment(ray_actor_options={{"num_cpus": 0.5}})
        class Greeter:
            def __call__(self, request):
                return "hello"
        serve.run(Greeter.bind(), name={name!r}, route_prefix={route!r})
        for _ in range({requests}):
            assert urllib.request.urlopen("http://127.0.0.1:{port}{route}").read() == b"hello"
    """)


#: driver code that ends a driver started with ``Head.running``: READY, then wait for stdin
UNTIL_STDIN_CLOSES = textwrap.dedent("""
    import sys
    print("READY", flush=True)
    sys.stdin.read()
""")


def _alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@contextlib.contextmanager
def started_head(*flags):
    """``skate start --head`` with ``flags`` in a private temp dir; stopped on exit."""
    temp = tempfile.mkdtemp(prefix="skd-", dir="/tmp")  # short: Unix socket paths <= 107 bytes
    env = {k: v for k, v in os.environ.items()
           if k not in ("SKATE_TOKEN", "SKATE_ADDRESS", "RAY_ADDRESS")}
    env.update(SKATE_TEMP_DIR=temp, PYTHONUNBUFFERED="1",
               PYTHONPATH=REPO_ROOT + os.pathsep + env.get("PYTHONPATH", ""))
    start = subprocess.run([sys.executable, "-m", "skate.scripts.skate_cli", "start", "--head",
                            "--port", "0", "--num-cpus", "2", "--dashboard-port", "0", *flags],
                           capture_output=True, text=True, timeout=60, env=env)
    pids = []
    try:
        assert start.returncode == 0, start.stdout + start.stderr
        with open(os.path.join(temp, "current.json")) as f:
            info = json.load(f)
        pids = info["pids"] + [info[k] for k in ("dashboard_pid", "metrics_export_pid")
                               if info.get(k)]
        with open(os.path.join(info["session_dir"], "token")) as f:
            token = f.read().strip()
        head = Head(info.get("dashboard_url", ""), token, info["session_dir"], env, info)
        if head.url:
            wait_for_condition(lambda: head.get("/api/version"), timeout=30)
        yield head
    finally:
        subprocess.run([sys.executable, "-m", "skate.scripts.skate_cli", "stop"],
                       capture_output=True, timeout=60, env=env)
        try:
            wait_for_condition(lambda: not any(_alive(p) for p in pids), timeout=15)
        finally:
            shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def head():
    """One head with its dashboard for a test module."""
    with started_head() as h:
        yield h


def wait_until(fn, timeout=20, interval=0.05):
    """``fn()``'s first truthy value, polling until ``timeout`` (AssertionError then):
    ``wait_for_condition`` that hands back what it waited for."""
    got: list = []

    def ready():
        got[:] = [fn()]
        return got[0]

    wait_for_condition(ready, timeout=timeout, retry_interval_ms=interval * 1000)
    return got[0]


# -- the browser tests (test_browser*.py) -------------------------------------------------------
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DOCS = os.environ.get("SKATE_DOC_SCREENSHOTS") == "1"
IMAGES = os.path.join(REPO_ROOT, "docs", "images")


def need_browser():
    """playwright's sync API, or the calling test module is skipped with the reason."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install "
                    f"chromium)", allow_module_level=True)
    return pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser():
    with need_browser().sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Where screenshots go: the docs' pictures with SKATE_DOC_SCREENSHOTS=1, else a
    temporary folder (a test run leaves the tree clean)."""
    return IMAGES if DOCS else str(tmp_path_factory.mktemp("screenshots"))


@contextlib.contextmanager
def browser_page(browser, url, **options):
    """A fresh browser context's page at ``url``; on exit, no JavaScript error happened."""
    context = browser.new_context(viewport={"width": 1280, "height": 880}, **options)
    pg = context.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.set_default_timeout(15000)
    pg.goto(url)
    try:
        yield pg
    finally:
        context.close()
    assert not errors, errors


@pytest.fixture
def shot(page, images):
    """``shot(name)``: a screenshot of the test module's ``page`` as dashboard-<name>.png."""
    def take(name):
        path = os.path.join(images, f"dashboard-{name}.png")
        page.screenshot(path=path)
        assert os.path.getsize(path) > 10_000  # a picture, not a blank page
    return take

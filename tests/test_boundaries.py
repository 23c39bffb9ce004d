"""The dependency rules of ARCHITECTURE.md, checked on the source (no processes).

* A library (tune, util, rllib, serve, sgd, and the dashboard and job_submission,
  which are built the same way) uses the public API only: ``skate``
  (whose root also carries the core's public API for libraries: placement groups,
  scheduling strategies, the state API, RefPromise), its own package and other
  libraries -- never a ``skate.core`` module.
* A process role's folder (control_store, node_manager, worker) reaches another
  role only through that role's ``client.py``. (``object_store/`` is a component:
  the node manager keeps its books, every process maps it through its client.)
* RPC method names are spelled only in ``skate/core/rpc/``: everything else calls
  a client method, and servers key their handler tables by ``rpc.methods``.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "skate"
LIBRARIES = ("tune", "util", "rllib", "serve", "sgd", "dashboard", "job_submission")
#: what a library may import from skate.core: nothing (the public API is at the root)
PUBLIC_CORE: set = set()
ROLES = ("control_store", "node_manager", "worker")


def _modules(folder: pathlib.Path):
    return sorted(p for p in folder.rglob("*.py"))


def _imports(path: pathlib.Path):
    """(line, module) of every import in ``path``, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    try:
        package = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts[:-1])
    except ValueError:  # a file outside the tree (the self-test's sample)
        package = ""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            yield node.lineno, base
            for alias in node.names:  # "from skate.core import rpc" names a module too
                yield node.lineno, f"{base}.{alias.name}"


def _is_module(name: str) -> bool:
    rel = name.split(".")[1:]
    p = ROOT.joinpath(*rel)
    return p.with_suffix(".py").exists() or (p / "__init__.py").exists()


@pytest.mark.parametrize("library", LIBRARIES)
def test_libraries_use_only_the_public_core_api(library):
    bad = []
    for path in _modules(ROOT / library):
        for line, name in _imports(path):
            if (name == "skate.core" or name.startswith("skate.core.")) \
                    and name not in PUBLIC_CORE:
                bad.append(f"{path.relative_to(ROOT.parent)}:{line} imports {name}")
    assert not bad, "libraries must use the public API only:\n" + "\n".join(bad)


@pytest.mark.parametrize("role", ROLES)
def test_roles_reach_each_other_only_through_clients(role):
    bad = []
    for path in _modules(ROOT / "core" / role):
        for line, name in _imports(path):
            for other in ROLES:
                prefix = f"skate.core.{other}."
                if other == role or not name.startswith(prefix) or not _is_module(name):
                    continue
                if name != prefix + "client":
                    bad.append(f"{path.relative_to(ROOT.parent)}:{line} imports {name}")
    assert not bad, "a role reaches another only through its client:\n" + "\n".join(bad)


def _string_rpc_calls(path: pathlib.Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("call", "call_async", "notify") and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)):
            yield node.lineno, node.args[0].value


def test_rpc_names_are_spelled_only_in_rpc():
    bad = []
    for path in _modules(ROOT):
        if (ROOT / "core" / "rpc") in path.parents:
            continue
        for line, name in _string_rpc_calls(path):
            bad.append(f"{path.relative_to(ROOT.parent)}:{line} calls {name!r} by name")
    assert not bad, "call a client method instead:\n" + "\n".join(bad)


def test_servers_dispatch_through_handler_tables():
    """No ``getattr(self, "h_" + method)``: each server lists what it answers."""
    bad = []
    for path in _modules(ROOT / "core"):
        text = path.read_text()
        if '"h_" +' in text or "'h_' +" in text:
            bad.append(str(path.relative_to(ROOT.parent)))
    assert not bad, "dispatch through an explicit handler table:\n" + "\n".join(bad)


def test_the_checker_sees_violations(tmp_path):
    """The rules above are not vacuous: the import walker and the call finder see these."""
    sample = tmp_path / "sample.py"
    sample.write_text("from skate.core import ids\nimport skate.core.rpc\nconn.call('x', 1)\n")
    assert {n for _, n in _imports(sample)} >= {"skate.core.ids", "skate.core.rpc"}
    assert [n for _, n in _string_rpc_calls(sample)] == ["x"]

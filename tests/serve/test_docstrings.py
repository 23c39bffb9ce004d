"""Every runnable example in skate.serve's docstrings runs (against a real serve)."""

import doctest
import importlib

import pytest

pytestmark = pytest.mark.skate_only

PURE = ["autoscaling", "reconciler", "config", "deployment", "router", "batching", "multiplex",
        "ingress"]
# run in this order: the package docstring and api's start() end with serve.shutdown()
LIVE = ["handle", "api", "__init__"]


@pytest.mark.parametrize("name", PURE)
def test_pure_docstring_examples(name):
    module = importlib.import_module(f"skate.serve.{name}")
    failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert attempted > 0 and failed == 0


@pytest.mark.parametrize("name", LIVE)
def test_live_docstring_examples(serve_url, name):
    module = importlib.import_module("skate.serve" if name == "__init__"
                                     else f"skate.serve.{name}")
    failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert attempted > 0 and failed == 0

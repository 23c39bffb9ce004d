"""Every runnable example in skate.rllib's docstrings runs."""

import doctest
import importlib

import pytest

from tests.conftest import _start_cluster

pytestmark = pytest.mark.skate_only
pytest.importorskip("gymnasium")


MODULES = ["config", "module", "postprocessing", "algorithm", "checkpoint", "ppo", "dqn",
           "impala", "appo", "sac", "replay_buffer", "multi_agent_env", "multi_agent_runner",
           "offline", "__init__"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    _start_cluster(num_cpus=2)
    module = importlib.import_module("skate.rllib" if name == "__init__"
                                     else f"skate.rllib.{name}")
    failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert attempted > 0 and failed == 0

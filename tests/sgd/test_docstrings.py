"""Every runnable example in skate.sgd's (and skate.train's) docstrings runs."""

import doctest
import importlib

import pytest

from tests.conftest import _start_cluster

pytestmark = pytest.mark.skate_only

MODULES = ["skate.sgd", "skate.sgd.config", "skate.sgd.session", "skate.sgd.worker_group",
           "skate.sgd.torch_utils", "skate.sgd.trainer", "skate.train", "skate.train.torch"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    _start_cluster(num_cpus=2)
    failed, attempted = doctest.testmod(importlib.import_module(name),
                                        optionflags=doctest.ELLIPSIS)
    assert attempted > 0 and failed == 0

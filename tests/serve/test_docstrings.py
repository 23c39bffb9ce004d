"""Every runnable example in skate.serve's docstrings runs."""

import doctest

import pytest

import skate.serve.autoscaling
import skate.serve.reconciler

pytestmark = pytest.mark.skate_only


@pytest.mark.parametrize("module", [skate.serve.autoscaling, skate.serve.reconciler])
def test_docstring_examples(module):
    failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert attempted > 0 and failed == 0

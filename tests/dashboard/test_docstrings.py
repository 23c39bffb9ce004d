"""Every runnable example in the dashboard's and the jobs API's docstrings runs."""

import doctest
import importlib

import pytest

pytestmark = pytest.mark.skate_only

MODULES = ["skate.dashboard", "skate.dashboard.app", "skate.dashboard.config",
           "skate.dashboard.history", "skate.dashboard.params", "skate.dashboard.api.tasks",
           "skate.dashboard.api.nodes", "skate.dashboard.api.logs",
           "skate.dashboard.metric_history",
           "skate.dashboard.jobs.lifecycle", "skate.dashboard.jobs.request",
           "skate.dashboard.jobs.store", "skate.job_submission.models",
           # starts a private cluster and a dashboard, and stops them
           "skate.dashboard.launch"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, shutdown_only):
    failed, attempted = doctest.testmod(importlib.import_module(name),
                                        optionflags=doctest.ELLIPSIS)
    assert attempted > 0 and failed == 0

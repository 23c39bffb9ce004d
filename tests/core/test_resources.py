"""Unit tests of fixed-point resource arithmetic and option validation."""

import pytest

from skate.core import options
from skate.core import resources as res

pytestmark = pytest.mark.skate_only


def test_fractions_add_up_exactly():
    avail = res.to_units({"CPU": 1})
    for _ in range(10):
        assert res.fits(res.to_units({"CPU": 0.1}), avail)
        res.subtract(avail, res.to_units({"CPU": 0.1}))
    assert avail["CPU"] == 0
    assert not res.fits(res.to_units({"CPU": 0.1}), avail)


def test_negative_and_non_numeric_are_rejected():
    with pytest.raises(ValueError):
        res.to_units({"CPU": -1})
    with pytest.raises(ValueError):
        res.to_units({"CPU": "two"})


@pytest.mark.parametrize("bad, err", [
    ({"num_cpu": 1}, ValueError),
    ({"num_cpus": "x"}, TypeError),
    ({"num_cpus": -1}, ValueError),
    ({"resources": {"CPU": 1}}, ValueError),
    ({"max_retries": 1.5}, TypeError),
    ({"retry_exceptions": [1]}, TypeError),
    ({"runtime_env": {"env_vars": {"A": 1}}}, TypeError),
])
def test_bad_task_options(bad, err):
    with pytest.raises(err):
        options.validate(bad, options.TASK_OPTIONS, "remote functions")


def test_actor_only_options_are_refused_for_tasks():
    with pytest.raises(ValueError, match="max_restarts"):
        options.validate({"max_restarts": 1}, options.TASK_OPTIONS, "remote functions")
    options.validate({"max_restarts": 1}, options.ACTOR_OPTIONS, "actors")

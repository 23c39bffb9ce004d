"""RefPromise: a ref this process completes from a callback (skate/core/promise.py)."""

import threading

import pytest

import skate
from skate.core.promise import RefPromise

pytestmark = pytest.mark.skate_only  # a Skate primitive for libraries; Ray has none


def test_result_from_another_thread_wakes_get_and_wait(start_regular):
    p = RefPromise()
    ready, not_ready = skate.wait([p.ref], timeout=0.05)
    assert ready == [] and not_ready == [p.ref]
    threading.Timer(0.05, p.set_result, ([1, 2, 3],)).start()
    assert skate.get(p.ref, timeout=10) == [1, 2, 3]
    assert p.set_result("again") is False  # completed once
    assert skate.get(p.ref) == [1, 2, 3]


def test_exception_raises_in_get_and_in_a_task_that_depends_on_it(start_regular):
    p = RefPromise()

    @skate.remote
    def use(x):
        return x

    ref = use.remote(p.ref)  # waits for the promise like for any dependency
    assert p.set_exception(KeyError("gone")) is True
    with pytest.raises(KeyError):
        skate.get(p.ref, timeout=10)
    with pytest.raises(KeyError):
        skate.get(ref, timeout=30)


def test_set_exception_takes_an_exception(start_regular):
    p = RefPromise()
    with pytest.raises(TypeError, match="takes an exception"):
        p.set_exception("not an exception")
    p.set_result(None)
    assert skate.get(p.ref, timeout=10) is None

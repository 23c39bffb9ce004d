"""A ref that a callback completes: wait for an event with skate.wait / skate.get.

Run: python examples/core/ref_promise.py
"""

import threading

import skate
from skate import RefPromise


def main() -> None:
    skate.init(num_cpus=1)
    try:
        done, failed = RefPromise(), RefPromise()
        # anything that calls back later: a timer here, a reply or a watcher in a library
        threading.Timer(0.2, done.set_result, ({"rows": 3},)).start()
        threading.Timer(0.1, failed.set_exception, (ValueError("the source went away"),)).start()

        ready, _ = skate.wait([done.ref, failed.ref], num_returns=2, timeout=10)
        assert len(ready) == 2
        print("result:", skate.get(done.ref))
        try:
            skate.get(failed.ref)
        except ValueError as e:
            print("error:", e)

        @skate.remote
        def count(payload):  # a promised value passes to tasks like any ref
            return payload["rows"] * 2

        print("task on it:", skate.get(count.remote(done.ref)))
    finally:
        skate.shutdown()


if __name__ == "__main__":
    main()

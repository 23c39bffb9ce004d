"""Failures: retries after a crashed worker, typed errors, timeouts, cancellation, restarts.

Run: python examples/core/failures.py
"""

import os
import tempfile
import time

import skate
from skate.exceptions import ActorDiedError, GetTimeoutError, TaskCancelledError


@skate.remote(max_retries=2)
def crashes_once(marker):
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)  # the worker process dies; the task is retried elsewhere
    return "recovered"


@skate.remote
def forever():
    while True:
        time.sleep(0.05)


@skate.remote(max_restarts=1, max_task_retries=1)
class Service:
    def pid(self):
        return os.getpid()


if __name__ == "__main__":
    skate.init(num_cpus=2)
    print(skate.get(crashes_once.remote(os.path.join(tempfile.mkdtemp(), "marker"))))

    try:
        skate.get(forever.remote(), timeout=0.5)
    except GetTimeoutError:
        print("get(timeout=0.5) raised GetTimeoutError")

    ref = forever.remote()
    skate.cancel(ref)
    try:
        skate.get(ref)
    except TaskCancelledError:
        print("cancelled a running task")

    svc = Service.remote()
    first = skate.get(svc.pid.remote())
    os.kill(first, 9)
    print("actor restarted in a new process:", skate.get(svc.pid.remote()) != first)
    os.kill(skate.get(svc.pid.remote()), 9)
    try:
        skate.get(svc.pid.remote())
    except ActorDiedError:
        print("after max_restarts the actor is dead: ActorDiedError")
    skate.shutdown()

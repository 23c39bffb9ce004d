"""Test hooks that kill a worker at an exact moment of its life.

Chaos tests kill processes at random; these hooks hit the moments a random
killer rarely finds, deterministically. A worker started with

    runtime_env={"env_vars": {"SKATE_TEST_KILL_AT": "push_task@/tmp/x/token"}}

SIGKILLs itself the first time it reaches the point ``push_task`` — "first"
across every process that shares the token file, which is created
exclusively by the one that fires, so a retried task's next worker runs
normally. Several hooks are separated by commas.

Points (where they are reached):

=================  ================================================================
``start``          worker: before it connects to anything (not registered yet)
``registered``     worker: right after it registered with its node manager
``lease_granted``  node manager: right after it granted a lease on the worker
``push_task``      worker: a task push arrived, before it runs
``blocked``        worker: a task told its node manager it waits in ``get``/``wait``
``create_actor``   worker: an actor creation arrived, before ``__init__`` runs
``actor_call``     worker: an actor call arrived, before it runs
``seal``           worker: an object's bytes are in the store, not sealed yet
=================  ================================================================

With no hook set, ``ARMED`` is False and hot paths skip the call.
"""

from __future__ import annotations

import os
import signal

from skate.core.config import TEST_KILL_AT

POINTS = ("start", "registered", "lease_granted", "push_task", "blocked", "create_actor",
          "actor_call", "seal")


def parse(spec: str) -> dict[str, str]:
    """``"a@/t1,b@/t2"`` -> ``{"a": "/t1", "b": "/t2"}``; an unknown point is an error."""
    out = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        point, _, token = part.partition("@")
        if point not in POINTS or not token:
            raise ValueError(f"SKATE_TEST_KILL_AT: {part!r} is not '<point>@<token file>' with "
                             f"a point among {', '.join(POINTS)}")
        out[point] = token
    return out


_hooks = parse(TEST_KILL_AT)
ARMED = bool(_hooks)


def fires(hooks: dict, point: str) -> bool:
    """Whether ``point`` fires now: it is hooked and nobody took its token yet."""
    token = hooks.get(point)
    if token is None:
        return False
    try:
        os.close(os.open(token, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return False
    return True


def reached(point: str) -> None:
    """This process is at ``point``: die here if a hook says so."""
    if ARMED and fires(_hooks, point):
        os.kill(os.getpid(), signal.SIGKILL)


def hooks_of(env_vars: dict | None) -> dict[str, str]:
    """The hooks a worker started with ``env_vars`` carries (for the node manager's point)."""
    spec = (env_vars or {}).get("SKATE_TEST_KILL_AT")
    try:
        return parse(spec) if spec else {}
    except ValueError:  # the worker itself fails to start with that error; not ours to raise
        return {}

"""The remote functions and actor classes the benchmarks call (Ray's definitions).

They are defined inside :func:`define_remotes`, after the backend is imported, and
refer only to their closure (``ray``, each other) and numpy: nested definitions are
pickled by value, so a worker never has to import this package (which a Ray worker
could not, when the benchmark runs by path under the Ray virtualenv).
"""

from __future__ import annotations

import numpy as np


class Remotes:
    """Namespace of the remote functions and actor classes of one backend."""


class _Broken:
    """Stands in for a remote function/actor class the backend could not create."""

    def __init__(self, name, exc):
        self._msg = f"could not define remote {name}: {type(exc).__name__}: {exc}"

    def __getattr__(self, attr):
        raise RuntimeError(self._msg)


def _remote(ray, obj, **options):
    """ray.remote(obj) / ray.remote(**options)(obj), or a _Broken placeholder on error,
    so one unsupported feature (say async actors) only fails the benchmarks using it."""
    try:
        return ray.remote(**options)(obj) if options else ray.remote(obj)
    except Exception as e:  # noqa: BLE001
        return _Broken(obj.__name__, e)


def define_remotes(ray):
    """Define the benchmarks' remote functions and actor classes with `ray`."""
    # Plain functions/classes first, then each is wrapped by the backend's remote();
    # the names are rebound, so the closures below (e.g. Actor.small_value_batch calling
    # small_value.remote()) see the remote versions.

    def small_value():
        return b"ok"

    def ping():
        return 1

    def do_put_small(n):
        for _ in range(n):
            ray.put(0)

    def do_put_large(n):
        for _ in range(n):
            ray.put(np.zeros(10 * 1024 * 1024, dtype=np.int64))

    def create_object_containing_ref(n):
        obj_refs = []
        for _ in range(n):
            obj_refs.append(ray.put(1))
        return obj_refs

    class Actor:
        def small_value(self):
            return b"ok"

        def small_value_arg(self, x):
            return b"ok"

        def small_value_batch(self, n):
            ray.get([small_value.remote() for _ in range(n)])

    class AsyncActor:
        async def small_value(self):
            return b"ok"

        async def small_value_with_arg(self, x):
            return b"ok"

    class Client:
        def __init__(self, servers):
            if not isinstance(servers, list):
                servers = [servers]
            self.servers = servers

        def small_value_batch(self, n):
            results = []
            for s in self.servers:
                results.extend([s.small_value.remote() for _ in range(n)])
            ray.get(results)

        def small_value_batch_arg(self, n):
            x = ray.put(0)
            results = []
            for s in self.servers:
                results.extend([s.small_value_arg.remote(x) for _ in range(n)])
            ray.get(results)

    def actor_work(actors, n):
        k = len(actors)
        ray.get([actors[i % k].small_value.remote() for i in range(n)])

    small_value = _remote(ray, small_value)
    ping = _remote(ray, ping)
    do_put_small = _remote(ray, do_put_small)
    do_put_large = _remote(ray, do_put_large)
    create_object_containing_ref = _remote(ray, create_object_containing_ref)
    Actor = _remote(ray, Actor, num_cpus=0)
    AsyncActor = _remote(ray, AsyncActor)
    Client = _remote(ray, Client, num_cpus=0)
    actor_work = _remote(ray, actor_work)

    r = Remotes()
    r.small_value = small_value
    r.ping = ping
    r.do_put_small = do_put_small
    r.do_put_large = do_put_large
    r.create_object_containing_ref = create_object_containing_ref
    r.Actor = Actor
    r.AsyncActor = AsyncActor
    r.Client = Client
    r.actor_work = actor_work
    return r

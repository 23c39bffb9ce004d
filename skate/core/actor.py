"""``@skate.remote`` on a class: actors, their handles and their methods."""

from __future__ import annotations

import inspect
import threading

from skate.core import call_args, ids, serialization
from skate.core import options as opts
from skate.core.generator import ObjectRefGenerator, is_streaming
from skate.core.object_ref import ObjectRef, current_worker
from skate.core.remote_function import check_arguments
from skate.core.worker.actor_submitter import ActorCall


def method(*, num_returns: int | str = 1, **_ignored):
    """Set per-method options on an actor method.

    >>> import skate
    >>> @skate.remote
    ... class Pair:
    ...     @skate.method(num_returns=2)
    ...     def two(self):
    ...         return 1, 2
    """
    if num_returns != "streaming" and (not isinstance(num_returns, int) or num_returns < 0):
        raise ValueError(f"num_returns must be a non-negative int or 'streaming', got "
                         f"{num_returns!r}.")

    def deco(fn):
        fn.__skate_num_returns__ = num_returns
        return fn

    return deco


def _signatures(cls) -> dict:
    """Method signatures without ``self``, to check arguments where the call is made."""
    out = {}
    for name, m in inspect.getmembers(cls, inspect.isfunction):
        try:
            sig = inspect.signature(m)
        except (TypeError, ValueError):
            continue
        params = list(sig.parameters.values())[1:]
        out[name] = sig.replace(parameters=params)
    return out


def _method_meta(cls) -> dict:
    meta = {}
    for name, m in inspect.getmembers(cls, lambda x: inspect.isfunction(x) or inspect.ismethod(x)):
        n = getattr(m, "__skate_num_returns__", getattr(m, "__ray_num_returns__", None))
        meta[name] = "streaming" if is_streaming(m, n) else (1 if n is None else n)
    return meta


class ActorClass:
    """A class whose instances live in their own worker process.

    >>> import skate
    >>> @skate.remote
    ... class Counter:
    ...     def __init__(self):
    ...         self.n = 0
    ...     def incr(self):
    ...         self.n += 1
    ...         return self.n
    >>> c = Counter.remote()
    >>> skate.get(c.incr.remote())
    1
    """

    def __init__(self, cls, options: dict):
        self._cls = cls
        self._options = opts.validate(dict(options), opts.ACTOR_OPTIONS, "actors")
        self.__name__ = cls.__name__
        self.__qualname__ = cls.__qualname__
        self.__doc__ = cls.__doc__
        self.__module__ = cls.__module__
        self._meta: dict | None = None
        self._blob: bytes | None = None

    def __call__(self, *args, **kwargs):
        raise TypeError(
            f"Actors cannot be instantiated directly. Instead of '{self.__name__}()', use "
            f"'{self.__name__}.remote()'.")

    def __getattr__(self, name):
        # class attributes, classmethods and staticmethods of the user's class (and of its
        # bases) read through the actor class, in the driver and inside the actor's own
        # methods, where the class's name is bound to this object (Ray's decorated class
        # subclasses the user's class to the same effect)
        if name.startswith("__") or "_cls" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.__dict__["_cls"], name)

    def __dir__(self):
        return sorted(set(object.__dir__(self)) | set(dir(self._cls)))

    def __mro_entries__(self, bases):
        raise TypeError(
            f"Attempted to define a subclass of actor class '{self.__name__}'. Inheriting from "
            f"actor classes is not currently supported. Inherit from a plain base class instead "
            f"and make the derived class an actor class (with @skate.remote).")

    def options(self, **options) -> "_BoundActorClass":
        opts.validate(options, opts.ACTOR_OPTIONS, "actors")
        return _BoundActorClass(self, {**self._options, **options})

    def remote(self, *args, **kwargs) -> "ActorHandle":
        return self._create(args, kwargs, self._options)

    def _create(self, args, kwargs, options) -> "ActorHandle":
        from skate.core import runtime

        cls = self._cls
        if self._meta is None:
            self._signatures = _signatures(cls)
        check_arguments(self._signatures.get("__init__"), args, kwargs, cls.__name__)
        core = runtime.core()
        if self._meta is None:
            self._meta = {
                "class_name": cls.__name__,
                "methods": _method_meta(cls),
                "is_async": any(inspect.iscoroutinefunction(m)
                                for _, m in inspect.getmembers(cls, inspect.isfunction)),
            }
            self._blob = serialization.dumps_inband(cls, f"actor class {cls.__name__}")
            try:
                serialization.dumps_inband(self._signatures)
                self._meta["signatures"] = self._signatures
            except Exception:  # unpicklable annotations: the worker checks instead
                pass
        meta = dict(self._meta, max_task_retries=options.get("max_task_retries", 0),
                    max_restarts=options.get("max_restarts", 0))
        name = options.get("name")
        if options.get("get_if_exists") and name is None:
            raise ValueError("The actor name must be specified to use `get_if_exists` "
                             "(.options(name=..., get_if_exists=True)).")
        namespace = options.get("namespace") or core.namespace
        detached = options.get("lifetime") == "detached"
        if detached and name is None:
            pass  # Ray allows anonymous detached actors
        args_blob, deps, held = call_args.pack(core, args, kwargs, f"arguments of {cls.__name__}")
        max_concurrency = options.get("max_concurrency") or (1000 if meta["is_async"] else 1)
        payload = serialization.dumps_inband(
            (_ClassBlob(self._blob), args_blob, call_args.resolve_now(core, deps), max_concurrency,
             cls.__name__), "actor creation")
        spec = {
            "class_name": cls.__name__, "payload": payload, "meta": meta,
            "resources": opts.resource_request(options, 0, cls.__name__),
            "max_restarts": options.get("max_restarts", 0),
            "env_vars": opts.env_vars(options, core.job_env_vars),
            "strategy": opts.strategy(options),
            "home_node": core.node_id,
            # a worker (not a driver) that creates a non-detached actor owns it: the actor
            # dies with it
            "owner_worker": core.worker_id if core.mode == "worker" else None,
            "owner_node": core.node_id,
        }
        actor_id = ids.random_id(16)
        result = core.gcs.create_actor(actor_id, spec, core.job_id, name, namespace,
                               detached, bool(options.get("get_if_exists")))
        if result[0] == "exists":
            info, existing_meta = result[1], result[2]
            return ActorHandle(info["actor_id"], existing_meta)
        token = None if detached or name else _lifetime_token(core, actor_id, meta)
        handle = ActorHandle(actor_id, meta, token)
        core.actor_held[actor_id] = held  # creation args stay alive for restarts
        return handle


def _lifetime_token(core, actor_id: bytes, meta: dict) -> ObjectRef:
    """An object owned by the actor's creator that every handle (and every call in flight)
    holds a ref to, so the object store's reference counting — local instances, refs in
    pending calls, borrowers in other processes — counts the actor's handles too. When it
    is freed, no handle is left anywhere: the actor ends after the calls sent to it (Ray's
    out-of-scope rule; named and detached actors have no token and live on)."""
    from skate.core.ownership_codes import READY

    oid = ids.object_id(ids.task_id(), 0)
    obj = core.objects.create_owned(oid)
    ref = ObjectRef(oid, core.address)  # counted before complete(), which frees at zero
    obj.on_free = lambda: core.deferred_calls.append(lambda: _end_actor(core, actor_id, meta))
    core.objects.complete(oid, READY, ("i", serialization.KIND_VALUE,
                                       serialization.dumps_inband(None), []), False)
    return ref


def _end_actor(core, actor_id: bytes, meta: dict) -> None:
    """The last handle is gone: end the actor after the calls already sent."""
    if not core.connected:
        return
    core.actor_submitter(actor_id, meta).submit(
        ActorCall(ids.task_id(), "__skate_out_of_scope__", b"", [], [], [], 0))
    core.actor_held.pop(actor_id, None)


class _ClassBlob:
    """The class, pickled once per ActorClass and unpickled in the worker."""

    def __init__(self, blob):
        self.blob = blob

    def __reduce__(self):
        return (serialization.loads, (self.blob,))


class _BoundActorClass:
    def __init__(self, actor_class: ActorClass, options: dict):
        self._actor_class = actor_class
        self._options = options

    def remote(self, *args, **kwargs) -> "ActorHandle":
        return self._actor_class._create(args, kwargs, self._options)

    def options(self, **options):
        opts.validate(options, opts.ACTOR_OPTIONS, "actors")
        return _BoundActorClass(self._actor_class, {**self._options, **options})


class ActorHandle:
    """A reference to an actor; its methods are called with ``handle.method.remote(...)``.

    Handles can be passed to tasks and other actors. Once every handle of an
    unnamed, non-detached actor is gone — in every process, including handles
    passed to tasks that have finished — the actor ends after finishing the
    calls sent to it (its ``atexit`` handlers run).
    """

    def __init__(self, actor_id: bytes, meta: dict, token: ObjectRef | None = None):
        self._actor_id_bytes = actor_id
        self._meta = meta
        self._token = token  # counts this handle (see _lifetime_token); None: not counted
        self._lock = threading.Lock()

    @property
    def _actor_id(self):
        return _ActorID(self._actor_id_bytes)

    def _submitter(self):
        from skate.core import runtime

        core = runtime.core()
        return core.actor_submitter(self._actor_id_bytes, self._meta)

    def __getattr__(self, name):
        if name.startswith("__") and name not in ("__ray_terminate__", "__ray_ready__"):
            raise AttributeError(name)
        methods = self.__dict__.get("_meta", {}).get("methods", {})
        if name == "__ray_terminate__":
            return ActorMethod(self, "__skate_terminate__", 1)
        if name == "__ray_ready__":  # an empty call: ready once the actor is constructed
            return ActorMethod(self, "__skate_ready__", 1)
        if name not in methods:
            raise AttributeError(
                f"The actor {self._meta.get('class_name')} has no method {name!r}.")
        return ActorMethod(self, name, methods[name])

    def __reduce__(self):
        # the token travels as a ref: the receiver registers as its borrower
        return (ActorHandle, (self._actor_id_bytes, self._meta, self._token))

    def __repr__(self):
        return f"Actor({self._meta.get('class_name')}, {self._actor_id_bytes.hex()})"

    def __dir__(self):
        return sorted(set(object.__dir__(self)) | set(self._meta.get("methods", {})))

    def __hash__(self):
        return hash(self._actor_id_bytes)

    def __eq__(self, other):
        return isinstance(other, ActorHandle) and other._actor_id_bytes == self._actor_id_bytes


class _ActorID(ids.BinaryID):
    """The id of an actor (``handle._actor_id.hex()``)."""


class ActorMethod:
    """``handle.method``: call it with ``.remote(...)``."""

    def __init__(self, handle: ActorHandle, name: str, num_returns: int):
        self._handle = handle
        self._name = name
        self._num_returns = num_returns

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Actor methods cannot be called directly. Use "
                        f"{self._name}.remote(...) instead.")

    def options(self, **options) -> "ActorMethod":
        opts.validate(options, opts.METHOD_OPTIONS, "actor methods")
        m = ActorMethod(self._handle, self._name, options.get("num_returns", self._num_returns))
        return m

    def remote(self, *args, **kwargs):
        from skate.core import runtime

        check_arguments(self._handle._meta.get("signatures", {}).get(self._name), args, kwargs,
                        self._name)
        core = runtime.core()
        sub = self._handle._submitter()
        args_blob, deps, held = call_args.pack(core, args, kwargs, f"arguments of {self._name}")
        task_id = ids.task_id()
        streaming = self._num_returns == "streaming"
        n = 1 if streaming else self._num_returns
        return_ids = [ids.object_id(task_id, i + 1) for i in range(n)]
        refs = []
        for oid in return_ids:
            core.objects.create_owned(oid)
            refs.append(ObjectRef(oid, core.address))
        token = self._handle._token
        if token is not None:
            held.append(token)  # a call in flight keeps its actor (and the handle count) alive
        call = ActorCall(task_id, self._name, args_blob, None if deps else [], held, return_ids,
                         sub.max_task_retries, refs=deps or None)
        if streaming:  # registered first: its items may arrive before submit() returns
            gen = core.generators[task_id] = ObjectRefGenerator(core, task_id, refs[0])
            sub.submit(call)
            return gen
        sub.submit(call)
        if n == 1:
            return refs[0]
        if n == 0:
            return None
        return refs


def exit_actor() -> None:
    """End the current actor now: code after the call never runs, and it is not restarted.

    Its ``atexit`` handlers run; the call that made it fails with ActorDiedError
    naming exit_actor(), as do calls queued behind it and calls made later.
    Called in ``__init__``, the actor ends once constructed. Works in sync,
    threaded and async actors (also from a nested coroutine).

    >>> import skate
    >>> @skate.remote
    ... class Once:
    ...     def stop(self):
    ...         skate.actor.exit_actor()
    """
    from skate.core.worker.actor_execution import ActorExit

    core = current_worker()
    if core is None or core.current_actor_id is None:
        raise TypeError("exit_actor() was called outside an actor: call it inside an actor "
                        "method to end that actor (use skate.kill(handle) from elsewhere).")
    raise ActorExit()

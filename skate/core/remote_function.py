"""``@skate.remote`` on a function: ``f.remote(...)`` submits a task and returns ObjectRefs."""

from __future__ import annotations

import functools
import hashlib
import inspect

from skate.core import call_args, ids, serialization
from skate.core import options as opts
from skate.core.generator import ObjectRefGenerator, is_streaming
from skate.core.object_ref import ObjectRef


class RemoteFunction:
    """A function that runs as a task somewhere in the cluster.

    >>> import skate
    >>> @skate.remote
    ... def add(a, b):
    ...     return a + b
    >>> skate.get(add.remote(1, 2))
    3
    """

    def __init__(self, fn, options: dict):
        if not callable(fn):
            raise TypeError(f"@skate.remote needs a function or class, got {type(fn).__name__}.")
        self._function = fn
        self._options = opts.validate(dict(options), opts.TASK_OPTIONS, "remote functions")
        self._name = getattr(fn, "__qualname__", getattr(fn, "__name__", "task"))
        self._blob: bytes | None = None
        self._key: bytes | None = None
        self._signature = _signature_of(fn)
        self._streams = is_streaming(fn, None)  # a generator function: decided once, not per call
        functools.update_wrapper(self, fn)

    def __call__(self, *args, **kwargs):
        raise TypeError(
            f"Remote functions cannot be called directly. Use {self._name}.remote(...) to run it "
            f"as a task, or call the original function {self._name}._function(...).")

    def options(self, **options) -> "_BoundFunction":
        """A copy of this function with some options overridden (same names as ``@remote``)."""
        opts.validate(options, opts.TASK_OPTIONS, "remote functions")
        return _BoundFunction(self, {**self._options, **options})

    def remote(self, *args, **kwargs):
        return self._submit(args, kwargs, self._options)

    def _export(self):
        if self._blob is None:
            fn = self._function
            if inspect.iscoroutinefunction(fn):
                fn = _RunToCompletion(fn)  # Ray refuses `async def` tasks; we run them
            self._blob = serialization.dumps_inband(fn, f"function {self._name}")
            self._key = hashlib.sha1(self._blob).digest()[:12]
        return self._key, self._blob

    def _submit(self, args, kwargs, options):
        from skate.core import runtime
        from skate.core.worker.task_submitter import TaskRecord

        check_arguments(self._signature, args, kwargs, self._name)
        core = runtime.core()
        key, blob = self._export()
        num_returns = options.get("num_returns")
        streaming = num_returns == "streaming" or (num_returns is None and self._streams)
        if num_returns == "dynamic":
            raise ValueError("num_returns='dynamic' is not supported; a generator function "
                             "streams its values by default (num_returns='streaming').")
        if streaming or num_returns is None:
            num_returns = 1
        args_blob, deps, held = call_args.pack(core, args, kwargs, f"arguments of {self._name}")
        task_id = ids.task_id()
        return_ids = [ids.object_id(task_id, i + 1) for i in range(num_returns)]
        resources = opts.resource_request(options, 1, self._name)
        env_vars = opts.env_vars(options, core.job_env_vars)
        strategy = opts.strategy(options)
        task = TaskRecord(
            task_id=task_id, key=(tuple(sorted(resources.items())), repr(env_vars), strategy),
            strategy=strategy,
            resources=resources, env_vars=env_vars, fn_key=key, fn_blob=blob, fn_name=self._name,
            args_blob=args_blob, deps=deps, held=held, return_ids=return_ids,
            max_retries=options.get("max_retries", 3),
            retry_exceptions=options.get("retry_exceptions", False),
            max_calls=options.get("max_calls", 0) or 0)
        refs = []
        for oid in return_ids:
            core.objects.create_owned(oid, task)
            refs.append(ObjectRef(oid, core.address))
        if streaming:  # registered first: its items may arrive before submit() returns
            gen = core.generators[task_id] = ObjectRefGenerator(core, task_id, refs[0])
            core.submitter.submit(task)
            return gen
        core.submitter.submit(task)
        if num_returns == 1:
            return refs[0]
        if num_returns == 0:
            return None
        return refs


def _signature_of(fn):
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return None


# (id(signature), #args, kwarg names) -> the signature: shapes already checked. Keyed by id
# because hashing a Signature walks its parameters (slow on every call); the value keeps
# the signature alive, so its id is not reused while the entry exists.
_FITS: dict = {}


def check_arguments(signature, args, kwargs, name: str) -> None:
    """Fail at submission, as a local call would, when the arguments do not fit."""
    if signature is None:
        return
    shape = (id(signature), len(args), tuple(kwargs) if kwargs else ())
    if _FITS.get(shape) is signature:  # binding depends only on #positionals and the names
        return
    try:
        signature.bind(*args, **kwargs)
        if len(_FITS) < 10_000:
            _FITS[shape] = signature
    except TypeError as e:
        raise TypeError(f"{name}.remote() got arguments that do not match its signature "
                        f"{name}{signature}: {e}") from None


class _BoundFunction:
    def __init__(self, fn: RemoteFunction, options: dict):
        self._fn = fn
        self._options = options

    def remote(self, *args, **kwargs):
        return self._fn._submit(args, kwargs, self._options)

    def options(self, **options):
        opts.validate(options, opts.TASK_OPTIONS, "remote functions")
        return _BoundFunction(self._fn, {**self._options, **options})


class _RunToCompletion:
    """An ``async def`` task: the worker runs the coroutine to completion on a fresh event
    loop (Ray raises at decoration instead), so a task never fails with "cannot pickle
    'coroutine'"."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, *args, **kwargs):
        import asyncio

        return asyncio.run(self.fn(*args, **kwargs))

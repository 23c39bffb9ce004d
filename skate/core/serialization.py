"""Turning values into bytes and back.

Values are pickled with protocol 5; large contiguous buffers (numpy arrays,
torch CPU tensors via numpy, bytes-like objects) go out-of-band so they are
copied once into shared memory and read back as zero-copy views. Functions,
classes and anything defined in ``__main__`` need cloudpickle; a tuple of
plain scalars takes the ~15x cheaper standard pickler.

While a value is pickled, every ObjectRef inside it is recorded
(:func:`collecting_refs`) so its owner can keep it alive for the reader.
"""

from __future__ import annotations

import io
import pickle
import threading
import types
from collections import ChainMap

import cloudpickle

from skate.exceptions import RaySystemError

KIND_VALUE, KIND_ERROR = 0, 1
_PLAIN = (int, float, str, bytes, bool, type(None))
_local = threading.local()


class SerializationError(TypeError, RaySystemError):
    """A value could not be pickled (a lock, an open socket, a generator...)."""


class ArgRef:
    """Stands for top-level ObjectRef argument number ``i`` inside a pickled call."""

    __slots__ = ("i",)

    def __init__(self, i: int):
        self.i = i

    def __reduce__(self):
        return (ArgRef, (self.i,))


def _code_reduce_keeping_filename(code):
    """cloudpickle's code reducer, but tracebacks keep the real file name.

    Recent cloudpickle writes "<dynamic-code>" as every by-value function's
    file name, which makes remote tracebacks lose their source lines.
    """
    fn, args = _CODE_REDUCE(code)
    return fn, tuple(code.co_filename if a == "<dynamic-code>" else a for a in args)


_CODE_REDUCE = cloudpickle.Pickler.dispatch_table.get(types.CodeType)


class _Pickler(cloudpickle.Pickler):
    if _CODE_REDUCE is not None:
        dispatch_table = ChainMap({types.CodeType: _code_reduce_keeping_filename},
                                  cloudpickle.Pickler.dispatch_table)


def _cloud_dumps(value, buffer_callback=None) -> bytes:
    f = io.BytesIO()
    _Pickler(f, protocol=5, buffer_callback=buffer_callback).dump(value)
    return f.getvalue()


def _refs_sink():
    return getattr(_local, "refs", None)


class collecting_refs:
    """Context manager: records ObjectRefs pickled inside it in ``self.refs``."""

    def __enter__(self):
        self._prev = _refs_sink()
        self.refs: list = []
        _local.refs = self.refs
        return self

    def __exit__(self, *exc):
        _local.refs = self._prev


def note_ref(ref) -> None:
    """Called by ObjectRef.__reduce__."""
    sink = _refs_sink()
    if sink is not None:
        sink.append(ref)


_PLAIN_TYPES = frozenset(_PLAIN)
_CONTAINERS = frozenset((tuple, list, dict))
_PLAIN_BUDGET = 512  # items looked at before giving up (then cloudpickle decides)


def _plain(value) -> bool:
    """Built-in scalars in built-in containers (exact types, so no user subclass): the C
    pickler writes these exactly as cloudpickle would, several times faster."""
    t = type(value)
    if t in _PLAIN_TYPES:
        return True
    if t not in _CONTAINERS:
        return False
    todo = [value]
    budget = _PLAIN_BUDGET
    while todo:
        v = todo.pop()
        items = v.items() if type(v) is dict else v
        for x in items:
            budget -= 1
            if budget < 0:
                return False
            if type(v) is dict:
                k, x = x
                if type(k) not in _PLAIN_TYPES:
                    return False
            tx = type(x)
            if tx in _CONTAINERS:
                todo.append(x)
            elif tx not in _PLAIN_TYPES:
                return False
    return True


is_plain = _plain


def plain_dumps(value) -> bytes:
    """Pickle a value ``is_plain`` accepted (the C pickler; nothing to serialize by value)."""
    return pickle.dumps(value, 5)


def dumps_inband(value, what: str = "value") -> bytes:
    """Pickle without out-of-band buffers (for messages and small values)."""
    if _plain(value):
        return pickle.dumps(value, 5)
    try:
        return _cloud_dumps(value)
    except Exception as e:
        raise SerializationError(_why(value, what, e)) from e


def dumps(value, what: str = "value") -> tuple[bytes, list]:
    """``(pickle stream, [out-of-band buffers as memoryviews])``."""
    if _plain(value):
        return pickle.dumps(value, 5), []
    buffers = []

    def keep(buf: pickle.PickleBuffer):
        try:
            buffers.append(buf.raw())
        except BufferError:
            return True  # not contiguous: pickle it in-band
        return False

    try:
        meta = _cloud_dumps(value, buffer_callback=keep)
    except Exception as e:
        raise SerializationError(_why(value, what, e)) from e
    return meta, buffers


def loads(meta, buffers=()):
    return pickle.loads(meta, buffers=buffers)


def _why(value, what: str, e: Exception) -> str:
    return (f"Could not serialize the {what} {_short(value)}: {type(e).__name__}: {e}. "
            f"Skate sends values to other processes with pickle/cloudpickle; objects such as "
            f"locks, open files, sockets and generators cannot be sent. Create them inside the "
            f"task or actor instead, or pass something picklable.")


def _short(value) -> str:
    try:
        r = repr(value)
    except Exception:
        r = f"<{type(value).__name__}>"
    return r if len(r) < 80 else r[:77] + "..."

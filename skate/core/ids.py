"""Identifiers: small random bytes, hex for display.

Object ids are ``task_id + return index`` so an owner can name a task's
returns before it runs; a process makes ids from a random prefix and a counter
so making one costs no syscall.
"""

from __future__ import annotations

import itertools
import os
import struct

_PREFIX = os.urandom(8)
_COUNTER = itertools.count(1)
_PACK = struct.Struct("<8sII").pack


def reseed() -> None:
    """Give this process a fresh id prefix (after fork)."""
    global _PREFIX, _COUNTER
    _PREFIX = os.urandom(8)
    _COUNTER = itertools.count(1)


os.register_at_fork(after_in_child=reseed)  # a forked process must not repeat its parent's ids


def task_id() -> bytes:
    """A 12-byte task id; its returns are ``object_id(task, i)``."""
    return _PREFIX + next(_COUNTER).to_bytes(4, "little")


def object_id(task: bytes, index: int) -> bytes:
    """The id of return ``index`` of ``task`` (index 0 is used for ``put``)."""
    return task + index.to_bytes(4, "little")


def short_name(qualname: str) -> str:
    """A function's name as Ray's state API shows it: ``work`` for ``child.<locals>.work``."""
    return qualname.rsplit(".", 1)[-1]


def random_id(n: int = 16) -> bytes:
    return os.urandom(n)


class BinaryID:
    """An id shown as hex, compared by its bytes (ActorID, PlacementGroupID, ...)."""

    __slots__ = ("_b",)

    def __init__(self, b: bytes):
        self._b = b

    def hex(self) -> str:
        return self._b.hex()

    def binary(self) -> bytes:
        return self._b

    def __eq__(self, other):
        return type(other) is type(self) and other._b == self._b

    def __hash__(self):
        return hash(self._b)

    def __repr__(self):
        return f"{type(self).__name__}({self._b.hex()})"

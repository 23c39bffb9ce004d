"""A small key-value store in the control store, for libraries' state (as Ray's internal_kv).

It is persisted with the head, so it survives a head restart on the same
session directory.

>>> import skate
>>> from skate.experimental import internal_kv
>>> internal_kv._internal_kv_put("k", b"v")  # doctest: +SKIP
>>> internal_kv._internal_kv_get("k")         # doctest: +SKIP
b'v'
"""

from __future__ import annotations


def _gcs():
    from skate.core import runtime

    return runtime.core().gcs


def _key(key) -> str:
    if isinstance(key, bytes):
        return key.decode()
    if not isinstance(key, str):
        raise TypeError(f"internal_kv keys are str or bytes, got {type(key).__name__}")
    return key


def _value(value) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if not isinstance(value, (bytes, bytearray)):
        raise TypeError(f"internal_kv values are bytes or str, got {type(value).__name__}")
    return bytes(value)


def _internal_kv_initialized() -> bool:
    import skate

    return skate.is_initialized()


def _internal_kv_put(key, value, overwrite: bool = True, *, namespace: str = "") -> bool:
    """Store ``value``; returns True if the key already existed (as Ray does)."""
    k = _key(key)
    existed = _gcs().kv_get(namespace, k) is not None
    _gcs().kv_put(namespace, k, _value(value), overwrite)
    return existed


def _internal_kv_get(key, *, namespace: str = "") -> bytes | None:
    return _gcs().kv_get(namespace, _key(key))


def _internal_kv_exists(key, *, namespace: str = "") -> bool:
    return _internal_kv_get(key, namespace=namespace) is not None


def _internal_kv_del(key, *, namespace: str = "") -> bool:
    return _gcs().kv_del(namespace, _key(key))


def _internal_kv_list(prefix, *, namespace: str = "") -> list:
    return [k.encode() for k in _gcs().kv_keys(namespace, _key(prefix))]

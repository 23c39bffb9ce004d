"""How one serialized object is laid out in shared memory or a spill file.

``[u8 kind][3 pad][u32 nbufs][u64 meta_len][u64 buf_len] * nbufs`` then the
pickle stream, then each out-of-band buffer at a 64-byte boundary (so numpy
views are aligned). ``kind`` says whether the object is a value or an error.
"""

from __future__ import annotations

import struct

_HEAD = struct.Struct("<B3xIQ")
_LEN = struct.Struct("<Q")
ALIGN = 64


def _align(n: int) -> int:
    return (n + ALIGN - 1) & ~(ALIGN - 1)


def total_size(meta: bytes, buffers: list) -> int:
    pos = _HEAD.size + _LEN.size * len(buffers) + len(meta)
    for b in buffers:
        pos = _align(pos) + b.nbytes
    return pos


def write(dest: memoryview, kind: int, meta: bytes, buffers: list) -> None:
    """Write into ``dest`` (at least ``total_size`` bytes). ``buffers`` are memoryviews."""
    _HEAD.pack_into(dest, 0, kind, len(buffers), len(meta))
    pos = _HEAD.size
    for b in buffers:
        _LEN.pack_into(dest, pos, b.nbytes)
        pos += _LEN.size
    dest[pos:pos + len(meta)] = meta
    pos += len(meta)
    for b in buffers:
        pos = _align(pos)
        n = b.nbytes
        dest[pos:pos + n] = b
        pos += n


def read(src: memoryview):
    """``(kind, meta, [buffer views])`` from a laid-out object; views share ``src``."""
    kind, nbufs, meta_len = _HEAD.unpack_from(src, 0)
    pos = _HEAD.size
    lens = []
    for _ in range(nbufs):
        lens.append(_LEN.unpack_from(src, pos)[0])
        pos += _LEN.size
    meta = src[pos:pos + meta_len]
    pos += meta_len
    bufs = []
    for n in lens:
        pos = _align(pos)
        bufs.append(src[pos:pos + n])
        pos += n
    return kind, meta, bufs

"""First-fit allocator over one arena, with coalescing of free neighbours.

Why first-fit from the lowest offset: a program that puts and drops large
objects in a loop gets the same block back each time, whose pages are already
resident and mapped, so its copy runs at memory speed instead of page-fault
speed (measured ~7x here). Blocks are page aligned so readers can map them.
"""

from __future__ import annotations

import bisect

PAGE = 4096


def round_up(n: int, align: int = PAGE) -> int:
    return (n + align - 1) // align * align


class Allocator:
    """Hands out page-aligned ``[offset, offset + size)`` blocks of ``capacity`` bytes.

    Invariants: ``_free_offsets`` is sorted; free blocks never touch each other
    (they are merged); free and used blocks tile the arena exactly.
    """

    def __init__(self, capacity: int):
        if capacity < PAGE:
            raise ValueError(f"arena capacity {capacity} is smaller than one page")
        self.capacity = capacity - capacity % PAGE
        self._free_offsets: list[int] = [0]
        self._free_sizes: dict[int, int] = {0: self.capacity}
        self._used: dict[int, int] = {}
        self.used_bytes = 0

    def alloc(self, size: int) -> int | None:
        """The offset of a new block of at least ``size`` bytes, or None if none fits."""
        size = round_up(max(size, 1))
        for i, off in enumerate(self._free_offsets):
            free = self._free_sizes[off]
            if free >= size:
                del self._free_offsets[i]
                del self._free_sizes[off]
                if free > size:
                    rest = off + size
                    self._free_offsets.insert(i, rest)
                    self._free_sizes[rest] = free - size
                self._used[off] = size
                self.used_bytes += size
                return off
        return None

    def free(self, offset: int) -> None:
        size = self._used.pop(offset)
        self.used_bytes -= size
        i = bisect.bisect_left(self._free_offsets, offset)
        # merge with the next free block
        if i < len(self._free_offsets) and self._free_offsets[i] == offset + size:
            nxt = self._free_offsets.pop(i)
            size += self._free_sizes.pop(nxt)
        # merge with the previous free block
        if i > 0:
            prev = self._free_offsets[i - 1]
            if prev + self._free_sizes[prev] == offset:
                self._free_sizes[prev] += size
                return
        self._free_offsets.insert(i, offset)
        self._free_sizes[offset] = size

    def largest_free(self) -> int:
        return max(self._free_sizes.values(), default=0)

    def validate(self) -> None:
        blocks = sorted([(o, s, "free") for o, s in self._free_sizes.items()]
                        + [(o, s, "used") for o, s in self._used.items()])
        pos = 0
        prev_kind = None
        for off, size, kind in blocks:
            assert off == pos, f"gap or overlap at {pos}: next block at {off}"
            assert not (kind == prev_kind == "free"), f"unmerged free blocks at {off}"
            pos += size
            prev_kind = kind
        assert pos == self.capacity, "blocks do not tile the arena"
        assert self._free_offsets == sorted(self._free_sizes)

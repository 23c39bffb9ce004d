"""Unit tests of the arena allocator (pure logic, no processes)."""

import random

import pytest

from skate.core.object_store.allocator import PAGE, Allocator

pytestmark = pytest.mark.skate_only


def test_first_fit_reuses_the_freed_block():
    a = Allocator(100 * PAGE)
    x = a.alloc(10 * PAGE)
    a.free(x)
    assert a.alloc(10 * PAGE) == x  # same pages: already mapped and resident


def test_alignment_and_exhaustion():
    a = Allocator(10 * PAGE)
    offs = [a.alloc(1) for _ in range(10)]
    assert all(o % PAGE == 0 for o in offs)
    assert a.alloc(1) is None
    a.validate()


def test_coalescing_makes_room_for_a_large_block():
    a = Allocator(8 * PAGE)
    blocks = [a.alloc(2 * PAGE) for _ in range(4)]
    assert a.alloc(4 * PAGE) is None
    a.free(blocks[1])
    a.free(blocks[2])
    assert a.alloc(4 * PAGE) == blocks[1]
    a.validate()


def test_random_alloc_free_keeps_invariants():
    rng = random.Random(7)
    a = Allocator(1000 * PAGE)
    live = {}
    for _ in range(3000):
        if live and rng.random() < 0.45:
            off = rng.choice(list(live))
            a.free(off)
            del live[off]
        else:
            size = rng.randint(1, 40 * PAGE)
            off = a.alloc(size)
            if off is not None:
                for o, s in live.items():
                    assert off + size <= o or o + s <= off, "overlapping blocks"
                live[off] = size
        a.validate()
    for off in list(live):
        a.free(off)
    a.validate()
    assert a.largest_free() == a.capacity

"""Unit tests of the node's object store bookkeeping: pins, frees, spilling, restore."""

import os

import pytest

from skate.core.object_store.store import ObjectStore

pytestmark = pytest.mark.skate_only
MB = 1024 * 1024


@pytest.fixture
def store(tmp_path):
    s = ObjectStore(str(tmp_path / "arena"), 4 * MB, str(tmp_path / "spill"))
    yield s
    s.close()
    assert not os.path.exists(tmp_path / "arena")


def write(store, oid, size, fill):
    where = store.create(oid, size, owner="o")
    if where[0] == "arena":
        store._mm[where[1]:where[1] + size] = bytes([fill]) * size
    else:
        with open(where[1], "wb") as f:
            f.write(bytes([fill]) * size)
    store.seal(oid)
    return where


def read(store, oid, reader="r"):
    loc = store.get(oid, reader)
    if loc[0] == "arena":
        data = bytes(store._mm[loc[1]:loc[1] + loc[2]])
        store.release(oid, reader)
        return data
    with open(loc[1], "rb") as f:
        return f.read()


def test_full_store_spills_unpinned_and_restores(store):
    for i in range(6):  # 6 MB into a 4 MB arena
        write(store, bytes([i]), MB, i)
    st = store.stats()
    assert st["num_spilled"] >= 2 and st["spilled_bytes_total"] >= 2 * MB
    for i in range(6):
        assert read(store, bytes([i])) == bytes([i]) * MB  # nothing lost


def test_pinned_objects_are_never_spilled(store):
    write(store, b"a", 2 * MB, 1)
    loc = store.get(b"a", "reader")  # pinned by a reader
    write(store, b"b", 2 * MB, 2)
    write(store, b"c", 2 * MB, 3)  # must spill b, not a
    assert store.objects[b"a"].offset == loc[1]
    assert store.objects[b"b"].offset is None or store.objects[b"c"].offset is None
    store.release(b"a", "reader")


def test_free_while_pinned_waits_for_the_reader(store):
    write(store, b"x", MB, 9)
    store.get(b"x", "reader")
    store.free(b"x")
    assert b"x" in store.objects  # still mapped by the reader
    store.release(b"x", "reader")
    assert b"x" not in store.objects
    assert store.alloc.used_bytes == 0


def test_object_larger_than_the_arena_goes_to_a_file(store):
    where = write(store, b"big", 6 * MB, 5)
    assert where[0] == "file"
    assert read(store, b"big") == bytes([5]) * 6 * MB
    store.free(b"big")
    assert not os.listdir(store.spill_dir)


def test_reader_death_releases_its_pins(store):
    write(store, b"x", MB, 1)
    store.get(b"x", "dead-reader")
    store.free(b"x")
    store.release_reader("dead-reader")
    assert b"x" not in store.objects


def test_retried_create_replaces_a_copy_nobody_reads(store):
    # a retried task's first worker sealed its result but died before replying
    write(store, b"x", 10, 1)
    used = store.alloc.used_bytes
    where = store.create(b"x", 10, owner="o")
    assert where[0] == "arena"
    assert store.status(b"x") == "unsealed"
    assert store.alloc.used_bytes == used  # the old block was given back first


def test_retried_create_of_a_pinned_copy_keeps_it(store):
    write(store, b"x", 10, 1)
    store.get(b"x", "reader")
    assert store.create(b"x", 10, owner="o") == ("exists",)
    assert store.status(b"x") == "sealed"


def test_create_of_a_freed_copy_still_pinned_is_refused(store):
    write(store, b"x", 10, 1)
    store.get(b"x", "reader")
    store.free(b"x")
    with pytest.raises(ValueError, match="already exists"):
        store.create(b"x", 10, owner="o")


def test_writer_death_drops_what_it_had_not_sealed(store):
    store.create(b"half", MB, owner="o", writer="w1")
    write(store, b"whole", MB, 1)
    assert store.release_reader("w1") == [b"half"]
    assert b"half" not in store.objects
    assert store.status(b"whole") == "sealed"


def _pull(store, oid, size, reader="pull"):
    """What the node manager does for a copy pulled from another node."""
    where = store.create(oid, size, owner=None, secondary=True)
    view = store.receive_view(oid, reader)
    view[:] = b"p" * size
    view.release()
    store.seal(oid)
    store.release(oid, reader)
    return where


def test_pulled_copy_takes_the_place_of_an_unread_one_rather_than_fresh_pages(store):
    assert _pull(store, b"a", 1 * MB) == ("arena", 0)
    # b would go to fresh pages at 1 MB: a, a copy nobody reads, makes room instead
    assert _pull(store, b"b", 1 * MB) == ("arena", 0)
    assert b"a" not in store.objects
    # a copy someone reads stays; c then goes to fresh pages
    assert store.get(b"b", "reader")[0] == "arena"
    assert _pull(store, b"c", 1 * MB)[1] >= 1 * MB
    assert b"b" in store.objects
    # a primary copy is never dropped for a pulled one
    store.release(b"b", "reader")
    write(store, b"p", 1 * MB, 7)
    assert _pull(store, b"d", 2 * MB)[0] == "arena"
    assert read(store, b"p") == bytes([7]) * MB
    assert store.stats()["num_spilled"] == 0


def test_free_reports_the_nodes_that_pulled_copies(store):
    write(store, b"x", 1000, 1)
    store.add_copy(b"x", "node-b")
    store.add_copy(b"x", "node-c")
    assert store.free(b"x") == {"node-b", "node-c"}
    assert store.free(b"x") == set()  # told once
    write(store, b"y", 1000, 2)
    store.add_copy(b"y", "node-b")
    assert store.free_owner("o") == {"node-b": [b"y"]}


def test_stream_sender_sees_the_stored_bytes(store):
    write(store, b"s", 3000, 9)
    fd, offset, size, close_fd = store.open_for_stream(b"s", "send")
    assert (size, close_fd) == (3000, False)
    assert os.pread(fd, size, offset) == bytes([9]) * 3000
    store.release(b"s", "send")
    assert store.open_for_stream(b"missing", "send") is None

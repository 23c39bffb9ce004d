"""The object table's transitions (skate/core/worker/ownership.py), with no processes:
the free/unborrow callbacks just record what the runtime would send."""

from __future__ import annotations

import pytest

from skate.core.ownership_codes import FAILED, PENDING, READY
from skate.core.protocol import INLINE, STORED
from skate.core.worker.ownership import ObjectTable

pytestmark = pytest.mark.skate_only  # a unit test of Skate internals

ME, OTHER = "unix:/me", "unix:/other"
INLINE_VALUE = (INLINE, 0, b"meta", [])
STORED_VALUE = (STORED, 0, "node-a", 1 << 20)


@pytest.fixture
def table():
    freed: list = []
    unborrowed: list = []
    t = ObjectTable(ME, lambda oid, node: freed.append((oid, node)),
                    lambda owner, oid: unborrowed.append((owner, oid)))
    t.freed, t.unborrowed = freed, unborrowed
    yield t
    t.validate()


def test_pending_then_ready_runs_waiters_once(table):
    table.create_owned(b"a")
    table.add_local(b"a")
    seen = []
    assert table.on_ready(b"a", lambda obj: seen.append(obj.state))
    table.validate()
    table.complete(b"a", READY, INLINE_VALUE, False)
    table.complete(b"a", FAILED, INLINE_VALUE, False)  # a second result is ignored
    assert seen == [READY] and table.owned(b"a").state == READY
    assert table.on_ready(b"a", lambda obj: seen.append("late"))  # ready: runs at once
    assert seen == [READY, "late"]


def test_last_local_ref_frees_value_and_store_copy(table):
    table.create_owned(b"a")
    table.add_local(b"a")
    table.add_local(b"a")
    table.complete(b"a", READY, STORED_VALUE, True)
    table.remove_local(b"a")
    assert table.owned(b"a") is not None and table.freed == []
    table.remove_local(b"a")
    assert table.owned(b"a") is None and table.freed == [(b"a", "node-a")]
    assert not table.on_ready(b"a", lambda obj: None)  # unknown once freed


def test_borrowers_keep_an_object_alive(table):
    table.create_owned(b"a")
    table.add_local(b"a")
    table.complete(b"a", READY, INLINE_VALUE, False)
    assert table.add_borrower(b"a", OTHER)
    assert table.add_borrower(b"a", ME)  # ourselves: not a borrower
    table.remove_local(b"a")
    table.validate()
    assert table.owned(b"a") is not None
    table.remove_borrower(b"a", OTHER)
    assert table.owned(b"a") is None


def test_dead_borrower_is_forgotten_everywhere(table):
    for oid in (b"a", b"b"):
        table.create_owned(oid)
        table.add_borrower(oid, OTHER)
        table.complete(oid, READY, INLINE_VALUE, False)
    table.validate()
    table.drop_borrower_everywhere(OTHER)
    assert table.owned(b"a") is None and table.owned(b"b") is None


def test_result_with_no_ref_left_is_freed_at_once(table):
    table.create_owned(b"a")
    table.complete(b"a", READY, STORED_VALUE, True)
    assert table.owned(b"a") is None and table.freed == [(b"a", "node-a")]
    # a late result of an object already freed: its store copy is released, nothing kept
    table.complete(b"gone", READY, STORED_VALUE, True)
    assert table.freed[-1] == (b"gone", "node-a") and table.owned(b"gone") is None


def test_retry_goes_back_to_pending(table):
    table.create_owned(b"a")
    table.add_local(b"a")
    table.complete(b"a", FAILED, INLINE_VALUE, False)
    table.reset_pending(b"a")
    obj = table.owned(b"a")
    assert obj.state == PENDING and obj.value is None
    table.validate()
    table.complete(b"a", READY, INLINE_VALUE, False)
    assert table.owned(b"a").state == READY


def test_borrowed_refs_unregister_with_their_owner(table):
    table.mark_borrowed(b"x", OTHER)
    table.add_local(b"x")
    table.remove_local(b"x")
    assert table.unborrowed == [(OTHER, b"x")] and not table.is_borrowed(b"x")


def test_on_free_runs_when_freed(table):
    obj = table.create_owned(b"a")
    calls = []
    obj.on_free = lambda: calls.append("freed")
    table.add_local(b"a")
    table.complete(b"a", READY, INLINE_VALUE, False)
    assert calls == []
    table.remove_local(b"a")
    assert calls == ["freed"]


def test_validate_catches_broken_invariants(table):
    table.create_owned(b"a")
    table.add_local(b"a")
    table.complete(b"a", READY, INLINE_VALUE, False)
    table.owned(b"a").in_store = True  # says stored, value is inline
    with pytest.raises(AssertionError, match="in_store"):
        table.validate()
    table.owned(b"a").in_store = False
    table.mark_borrowed(b"a", OTHER)  # owned and borrowed at once
    with pytest.raises(AssertionError, match="owned and borrowed"):
        table.validate()
    table._borrowed.clear()

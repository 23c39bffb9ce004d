"""The lease books as a pure state machine: events in, commands out; no processes, no sleeps.

Every event goes through ``feed``, which checks the invariants after it.
"""

import itertools

import pytest

from skate.core import resources as res
from skate.core.node_manager import leases as ls
from skate.core.node_manager.placement import NodeView
from skate.exceptions import WorkerStartupError

pytestmark = pytest.mark.skate_only


def U(**r):
    return res.to_units(r)


def make(cpu=4, gpus=0, prestart=0, pool_size=1, idle_timeout_s=10.0, **extra):
    ids = itertools.count()
    total = {"CPU": cpu, **extra}
    if gpus:
        total["GPU"] = gpus
    return ls.Leases("here", res.to_units(total), gpus, pool_size=pool_size,
                     prestart_workers=prestart, idle_timeout_s=idle_timeout_s,
                     new_worker_id=lambda: f"w{next(ids)}", address="unix:here")


def feed(books, event):
    out = books.handle(event)
    books.validate()
    return out


def of(kind, commands):
    return [c for c in commands if isinstance(c, kind)]


def request(books, requester="driver", rid=1, now=0.0, env=None, dedicated=False,
            strategy=None, preferred=None, spilled=False, **resources):
    return feed(books, ls.RequestLease(requester, rid, U(**(resources or {"CPU": 1})), env,
                                       dedicated, strategy, preferred, spilled, now))


def register(books, commands, now=0.0, forked=False):
    """Register every worker ``commands`` started; return the commands that follow."""
    out = []
    for c in of(ls.StartWorker, commands):
        out += feed(books, ls.WorkerRegistered(c.worker_id, f"addr-{c.worker_id}", forked, now))
    return out


def idle_worker(books, env=None):
    """A node with one registered idle worker of ``env``'s key; returns its id."""
    started = books._start(ls.env_key(env), env)
    feed(books, ls.WorkerRegistered(started.worker_id, "addr", False, 0.0))
    return started.worker_id


def test_grant_from_an_idle_worker():
    books = make(prestart=1)
    started = feed(books, ls.Prestart(zygote=False))
    assert [c.env_key for c in of(ls.StartWorker, started)] == [""]
    assert register(books, started) == []
    assert books.idle[""][0].worker_id == "w0"
    (grant,) = request(books, rid=7, CPU=1)
    assert isinstance(grant, ls.Grant) and grant.rid == 7
    assert grant.grant.worker_id == "w0" and grant.grant.address == "addr-w0"
    assert grant.grant.node_id == "here" and grant.grant.gpu_ids == []
    assert books.resources.available["CPU"] == U(CPU=3)["CPU"]


def test_workers_start_only_for_requests_that_fit_now():
    books = make(cpu=2)
    out = []
    for rid in range(4):
        out += request(books, rid=rid, CPU=1)
    assert len(of(ls.StartWorker, out)) == 2  # the other two could not run yet
    assert books.starting() == {"": 2}
    grants = register(books, out)
    assert sorted(g.rid for g in of(ls.Grant, grants)) == [0, 1]
    assert len(books.pending) == 2 and not of(ls.StartWorker, grants)


def test_a_returned_lease_keeps_or_kills_its_worker():
    books = make()
    w = idle_worker(books)
    (g,) = request(books, CPU=1)
    assert feed(books, ls.LeaseReturned(g.grant.lease_id, False, 1.0)) == []
    assert [x.worker_id for x in books.idle[""]] == [w]
    (g,) = request(books, rid=2, CPU=1)
    assert feed(books, ls.LeaseReturned(g.grant.lease_id, True, 2.0)) == [ls.KillWorker(w)]
    assert not books.idle[""] and books.resources.available == books.resources.total
    # the worker's exit afterwards: the control store hears of it, nothing else changes
    gone = feed(books, ls.WorkerGone(w, 3.0, -9))
    assert gone == [ls.NotifyWorkerDied(w, True)]


def test_a_dedicated_lease_never_returns_its_worker_to_the_pool():
    books = make()
    w = idle_worker(books)
    (g,) = request(books, dedicated=True, CPU=1)  # an actor may take an idle worker ...
    assert g.grant.worker_id == w
    # ... but its process is never reused, even when returned without kill
    assert feed(books, ls.LeaseReturned(g.grant.lease_id, False, 1.0)) == [ls.KillWorker(w)]
    assert not books.idle[""]


def test_a_blocked_worker_lends_its_cpus_and_takes_them_back():
    books = make(cpu=1)
    w = idle_worker(books)
    request(books, rid=1, CPU=1)
    assert request(books, rid=2, CPU=1) == []  # does not fit: nothing started for it
    started = feed(books, ls.Blocked(w, True, 1.0))
    assert len(of(ls.StartWorker, started)) == 1
    granted = register(books, started, now=1.0)
    assert [g.rid for g in of(ls.Grant, granted)] == [2]
    feed(books, ls.Blocked(w, False, 2.0))  # resumes: CPU oversubscribed for a while
    assert books.resources.available["CPU"] == -res.UNIT
    assert feed(books, ls.Blocked(w, False, 2.0)) == []  # repeated: no change
    lease = books.workers[w].lease
    feed(books, ls.LeaseReturned(lease.lease_id, False, 3.0))
    assert books.resources.available["CPU"] == 0


def test_fractional_and_whole_gpus():
    books = make(cpu=8, gpus=2)
    for _ in range(4):
        idle_worker(books)
    (a,) = request(books, rid=1, CPU=1, GPU=0.5)
    (b,) = request(books, rid=2, CPU=1, GPU=0.5)
    assert a.grant.gpu_ids == b.grant.gpu_ids == [0]  # two halves share one id
    (c,) = request(books, rid=3, CPU=1, GPU=1)
    assert c.grant.gpu_ids == [1]
    assert request(books, rid=4, CPU=1, GPU=1) == []  # no whole GPU free: it waits
    assert books.resources.gpu_free == {0: 0, 1: 0}
    out = feed(books, ls.LeaseReturned(c.grant.lease_id, False, 1.0))  # ... granted now
    assert [(g.rid, g.grant.gpu_ids) for g in of(ls.Grant, out)] == [(4, [1])]
    assert not books.resources.fits_total(U(GPU=1.5))  # never fits: not a fraction, not whole


def test_bundles_prepare_and_return_killing_their_leases():
    books = make(cpu=4)
    answer = feed(books, ls.PrepareBundle("gcs", 5, "pg", 0, {"CPU": 3}, 0.0))
    assert answer == [ls.Answer("gcs", 5, True)]
    assert books.resources.available["CPU"] == U(CPU=1)["CPU"]
    assert books.resources.total["CPU_group_0_pg"] == U(CPU=3)["CPU"]
    assert feed(books, ls.PrepareBundle("gcs", 6, "pg", 0, {"CPU": 3}, 0.0)) == \
        [ls.Answer("gcs", 6, True)]  # already held: answered again
    assert feed(books, ls.PrepareBundle("gcs", 7, "pg", 1, {"CPU": 2}, 0.0)) == \
        [ls.Answer("gcs", 7, False)]  # does not fit now
    w = idle_worker(books)
    (g,) = request(books, **res.request_in_group({"CPU": 2}, "pg", 0))
    assert g.grant.worker_id == w
    assert feed(books, ls.ReturnBundle("pg", 0, 1.0)) == [ls.KillWorker(w)]
    assert books.resources.total == books.resources.available == U(CPU=4) and not books.leases


def view(**nodes):
    return {n: NodeView(U(**t), U(**a), True, f"addr-{n}") for n, (t, a) in nodes.items()}


def test_spill_to_a_node_with_room_now():
    books = make(cpu=1)
    feed(books, ls.ClusterView(view(here=({"CPU": 1}, {"CPU": 1}), b=({"CPU": 4}, {"CPU": 4})),
                               0.0))
    idle_worker(books)
    request(books, rid=1, CPU=1)
    (spill,) = request(books, rid=2, CPU=1)  # busy here, room there
    assert spill == ls.SpillTo("driver", 2, ("spill", "addr-b", "b"))
    (far,) = request(books, rid=3, CPU=3)  # can never fit here
    assert isinstance(far, ls.SpillTo) and far.spill.node_id == "b"
    assert not books.pending


def test_spread_rotates_with_the_books_turn():
    books = make(cpu=4)
    feed(books, ls.ClusterView(view(here=({"CPU": 4}, {"CPU": 4}), b=({"CPU": 4}, {"CPU": 4})),
                               0.0))
    picks = [request(books, rid=i, strategy="SPREAD", CPU=1) for i in range(2)]
    spills = [c for out in picks for c in of(ls.SpillTo, out)]
    assert len(spills) == 1 and len(books.pending) == 1  # one here, one there


def test_infeasible_warns_only_after_it_stayed_so():
    books = make(cpu=4)
    assert request(books, now=0.0, CPU=8) == []
    assert feed(books, ls.ClusterView({}, 0.5)) == []
    (warn,) = feed(books, ls.ClusterView({}, 1.5))
    assert isinstance(warn, ls.Warn) and warn.requester == "driver" and "CPU: 8" in warn.message
    assert feed(books, ls.ClusterView({}, 3.0)) == []  # once
    assert len(books.pending) == 1  # stays queued: a node may join


def test_pinned_to_an_unknown_node_held_then_failed_or_rerouted():
    books = make(cpu=4)
    v = view(here=({"CPU": 4}, {"CPU": 4}), b=({"CPU": 4}, {"CPU": 4}))
    feed(books, ls.ClusterView(v, 0.0))
    assert request(books, rid=1, strategy=("node", "new", False), CPU=1) == []
    assert request(books, rid=2, strategy=("node", "new", True), CPU=1) == []
    assert all(p.held for p in books.pending)  # never granted here while held
    assert feed(books, ls.ClusterView(v, 1.0)) == []
    out = feed(books, ls.ClusterView(v, 2.5))
    (fail,) = of(ls.Fail, out)
    assert fail.rid == 1 and isinstance(fail.error, ValueError) and "new" in str(fail.error)
    assert [p.rid for p in books.pending] == [2] and not books.pending[0].held
    assert len(of(ls.StartWorker, out)) == 1  # the soft one runs here after all


def test_failed_starts_give_up_and_fail_the_requests_of_their_key():
    books = make(cpu=4)
    env = {"BROKEN": "1"}
    out = request(books, rid=1, env=env, CPU=1)
    request(books, rid=2, CPU=1)  # another key: not failed
    now = 0.0
    for attempt in range(books.backoff.give_up_after):
        (start,) = [c for c in of(ls.StartWorker, out) if c.env_vars == env]
        now += 2.0
        out = feed(books, ls.WorkerGone(start.worker_id, now, 1, ("ImportError: x",), 42))
        if attempt < books.backoff.give_up_after - 1:
            assert not of(ls.Fail, out)
            out += feed(books, ls.ClusterView({}, now + 1.5))  # after the backoff
    (fail,) = of(ls.Fail, out)
    assert fail.rid == 1 and isinstance(fail.error, WorkerStartupError)
    assert "ImportError: x" in str(fail.error)
    assert [p.rid for p in books.pending] == [2]


def test_a_requester_gone_drops_its_requests_and_leases():
    books = make(cpu=2)
    w = idle_worker(books)
    request(books, requester="gone", rid=1, CPU=1)
    request(books, requester="gone", rid=2, CPU=4)  # infeasible: queued
    request(books, requester="stays", rid=3, CPU=4)
    out = feed(books, ls.RequesterGone("gone", 1.0))
    assert ls.KillWorker(w) in out  # it may have pushed work there
    assert [p.requester for p in books.pending] == ["stays"] and not books.leases


def test_cancel_drops_the_newest_requests_of_that_requester():
    books = make(cpu=0)
    for rid in (1, 2, 3):
        request(books, rid=rid, CPU=1)
    request(books, requester="other", rid=4, CPU=1)
    out = feed(books, ls.CancelRequests("driver", 9, 2))
    assert out == [ls.Answer("driver", 3, None), ls.Answer("driver", 2, None),
                   ls.Answer("driver", 9, 2)]
    assert [p.rid for p in books.pending] == [1, 4]


def test_cancel_tagged_drops_only_that_request():
    books = make(cpu=0)
    for rid, tag in ((1, "a"), (2, "b")):
        feed(books, ls.RequestLease("gcs", rid, U(CPU=1), None, True, None, None, False, 0.0,
                                    tag))
    request(books, requester="other", rid=3, CPU=1)
    assert feed(books, ls.CancelTagged("gcs", "a")) == [ls.Answer("gcs", 1, None)]
    assert feed(books, ls.CancelTagged("other", "b")) == []  # not its request
    assert [p.rid for p in books.pending] == [2, 3]


def test_the_watchdog_starts_a_worker_for_a_stalled_request():
    books = make(cpu=4)
    (start,) = request(books, CPU=1)
    del books.workers[start.worker_id]  # a bookkeeping bug: its start is forgotten
    assert feed(books, ls.Tick(0.0)) == [] and feed(books, ls.Tick(0.5)) == []
    (restart,) = feed(books, ls.Tick(1.6))
    assert isinstance(restart, ls.StartWorker) and books.watchdog.trips == 1


def test_idle_workers_beyond_the_pool_and_with_a_runtime_env_are_culled():
    books = make(cpu=4, pool_size=2, idle_timeout_s=10.0)  # every idle worker counts
    a, b = idle_worker(books), idle_worker(books)
    e = idle_worker(books, env={"X": "1"})
    assert feed(books, ls.Tick(5.0)) == []  # not idle long enough
    out = feed(books, ls.Tick(20.0))
    assert sorted(c.worker_id for c in out) == sorted([a, e])  # the pool keeps one ...
    assert [w.worker_id for w in books.idle[""]] == [b]
    # ... and a culled worker's exit is no owner's death: what it created lives on
    assert feed(books, ls.WorkerGone(a, 21.0, -9)) == [ls.NotifyWorkerDied(a, False)]


def test_a_leased_worker_dying_returns_its_lease():
    books = make(cpu=1)
    w = idle_worker(books)
    request(books, rid=1, CPU=1)
    out = feed(books, ls.WorkerGone(w, 1.0))
    assert out == [ls.NotifyWorkerDied(w, True)]
    assert books.resources.available == books.resources.total and not books.leases
    assert feed(books, ls.WorkerGone(w, 1.1, -9)) == []  # its second signal: nothing


def test_with_the_zygote_up_unforked_task_workers_are_replaced():
    books = make(prestart=1)
    w = idle_worker(books)
    books.zygote_up = True
    out = feed(books, ls.Prestart(zygote=True))
    assert out[0] == ls.KillWorker(w) and len(of(ls.StartWorker, out)) == 1
    assert register(books, out, forked=True) == [] and len(books.idle[""]) == 1


def test_validate_catches_a_broken_invariant():
    books = make(cpu=2, gpus=1)
    idle_worker(books)
    request(books, CPU=1, GPU=0.5)
    books.validate()
    books.resources.available["CPU"] += 1
    with pytest.raises(AssertionError, match="CPU"):
        books.validate()
    books.resources.available["CPU"] -= 1
    books.resources.gpu_free[0] = res.UNIT
    with pytest.raises(AssertionError, match="GPU 0"):
        books.validate()

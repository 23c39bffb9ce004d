"""The actor lifecycle as a pure state machine: events in, commands out (no processes)."""

import pytest

from skate.core.control_store.actor_events import (
    ActorAdopted,
    ActorCreated,
    ActorExited,
    ActorRestored,
    AdoptionOver,
    CancelLease,
    DropPersisted,
    JobFinished,
    KillRequested,
    KillWorker,
    LeaseFailed,
    LeaseGranted,
    LeaseLost,
    LeaseSpilled,
    NodeDied,
    NodeJoined,
    NotifyWatchers,
    OwnerDied,
    Persist,
    RequestLease,
    RetryDue,
    RetryLater,
    ReturnLease,
    StartActor,
    StartFailed,
    StartLost,
    StartSucceeded,
    WorkerGone,
)
from skate.core.control_store.actors import MAX_SPILL_HOPS, NO_NODE, Actors
from skate.core.protocol import ActorState, LeaseGrant
from skate.exceptions import ActorAlreadyExistsError

pytestmark = pytest.mark.skate_only

A = b"a" * 16
B = b"b" * 16
C = b"c" * 16


class Machine:
    """Actors with validate() after every event, and a lease counter for grants."""

    def __init__(self, nodes=(("head", True), ("n2", False))):
        self.actors = Actors()
        self.next_lease = 0
        for node_id, is_head in nodes:
            self.feed(NodeJoined(node_id, is_head))

    def feed(self, event):
        commands = self.actors.handle(event)
        self.actors.validate()
        return commands

    def create(self, actor_id=A, max_restarts=0, name=None, namespace="ns", detached=False,
               job_id="job1", owner_worker=None, owner_node="head", home_node="head"):
        spec = {"class_name": "C", "payload": b"p", "meta": {"m": 1}, "resources": {"CPU": 1},
                "max_restarts": max_restarts, "env_vars": None, "strategy": None,
                "home_node": home_node, "owner_worker": owner_worker, "owner_node": owner_node}
        return self.feed(ActorCreated(actor_id, spec, job_id, name, namespace, detached))

    def grant(self, actor_id=A, node="head", worker="w1", attempt=None):
        a = self.actors.get(actor_id)
        attempt = a.num_restarts if attempt is None else attempt
        self.next_lease += 1
        g = LeaseGrant(self.next_lease, worker, f"unix:/{worker}", [], node)
        return self.feed(LeaseGranted(actor_id, attempt, node, g))

    def start(self, actor_id=A, node="head", worker="w1", pid=100):
        self.grant(actor_id, node, worker)
        return self.feed(StartSucceeded(actor_id, self.actors.get(actor_id).num_restarts, pid))

    def state(self, actor_id=A):
        return self.actors.get(actor_id).state


def kinds(commands):
    return [type(c) for c in commands]


def test_creation_lease_start_alive():
    m = Machine()
    (req,) = m.create()
    assert req == RequestLease(A, 0, "head", 0, {"CPU": 1}, None, None)
    assert m.state() == ActorState.PENDING_CREATION
    (start,) = m.grant()
    assert isinstance(start, StartActor) and start.address == "unix:/w1"
    assert start.start.actor_id == A and start.start.num_restarts == 0
    assert start.start.job == ("job1", "ns")
    (note,) = m.feed(StartSucceeded(A, 0, 123))
    assert isinstance(note, NotifyWatchers)
    assert note.info["state"] == "ALIVE" and note.info["address"] == "unix:/w1"
    assert note.info["pid"] == 123 and note.info["version"] == 1
    assert m.actors.by_worker == {"w1": A}


def test_home_falls_back_to_the_head_then_any_node():
    m = Machine()
    (req,) = m.create(home_node="gone")
    assert req.node_id == "head"
    m2 = Machine(nodes=(("n1", False), ("n2", False)))
    (req,) = m2.create(home_node="gone")
    assert req.node_id == "n1"


def test_no_node_means_dead_at_once():
    m = Machine(nodes=())
    commands = m.create()
    assert kinds(commands) == [NotifyWatchers]
    assert m.state() == ActorState.DEAD and m.actors.get(A).death_cause == NO_NODE


def test_constructor_failure_is_dead_with_cause_and_returns_the_lease():
    m = Machine()
    m.create(max_restarts=3)
    m.grant()
    commands = m.feed(StartFailed(A, 0, ValueError("boom")))
    assert kinds(commands) == [NotifyWatchers, ReturnLease]
    assert commands[1] == ReturnLease("head", 1, True)
    a = m.actors.get(A)
    assert a.state == ActorState.DEAD and a.death_cause == "the actor's constructor raised: boom"
    assert m.actors.by_worker == {}


def test_lease_failure_is_dead():
    m = Machine()
    m.create()
    m.feed(LeaseFailed(A, 0, "unschedulable"))
    assert m.actors.get(A).death_cause == "could not get a worker for the actor: unschedulable"


def test_worker_death_with_restarts_left_restarts_on_a_new_lease():
    m = Machine()
    m.create(max_restarts=1)
    m.start()
    commands = m.feed(WorkerGone("w1", "the process exited"))
    assert kinds(commands) == [NotifyWatchers, RequestLease]
    assert commands[0].info["state"] == "RESTARTING" and commands[0].info["address"] is None
    assert commands[1].attempt == 1
    assert m.actors.by_worker == {}
    m.start(worker="w2", pid=200)
    a = m.actors.get(A)
    assert a.state == ActorState.ALIVE and a.num_restarts == 1 and a.pid == 200


def test_restarts_exhausted_is_dead():
    m = Machine()
    m.create(max_restarts=1)
    m.start()
    m.feed(WorkerGone("w1", "x"))
    m.start(worker="w2")
    commands = m.feed(WorkerGone("w2", "oom"))
    assert kinds(commands) == [NotifyWatchers]
    a = m.actors.get(A)
    assert a.state == ActorState.DEAD
    assert a.death_cause == ("the actor's worker process died (oom) and max_restarts=1 "
                             "restarts were used")


def test_infinite_restarts():
    m = Machine()
    m.create(max_restarts=-1)
    for i in range(5):
        m.start(worker=f"w{i}")
        assert kinds(m.feed(WorkerGone(f"w{i}", "x")))[-1] is RequestLease
    assert m.actors.get(A).num_restarts == 5


def test_stale_replies_of_an_older_attempt_are_ignored():
    m = Machine()
    m.create(max_restarts=2)
    m.grant()
    m.feed(StartLost(A, 0, "connection closed"))  # a restart: attempt 1 now
    assert m.state() == ActorState.RESTARTING
    assert m.feed(StartSucceeded(A, 0, 1)) == []
    assert m.feed(StartFailed(A, 0, "late")) == []
    assert m.feed(LeaseLost(A, 0, "x")) == []
    assert m.feed(RetryDue(A, 0)) == []
    assert m.feed(LeaseSpilled(A, 0, 0, "n2")) == []
    # a stale grant's worker is given back, stopped
    commands = m.grant(worker="w9", attempt=0)
    assert commands == [ReturnLease("head", m.next_lease, True)]
    assert m.state() == ActorState.RESTARTING and m.actors.get(A).worker_id is None


def test_replies_after_death_are_ignored_and_a_late_grant_returned():
    m = Machine()
    m.create()
    m.feed(KillRequested(A, True))
    assert m.grant(worker="w1", attempt=0) == [ReturnLease("head", 1, True)]
    assert m.feed(StartSucceeded(A, 0, 1)) == []
    assert m.state() == ActorState.DEAD


def test_worker_death_during_construction_is_a_restart():
    m = Machine()
    m.create(max_restarts=0)
    m.grant()
    m.feed(StartLost(A, 0, "connection closed"))
    assert m.actors.get(A).death_cause.startswith(
        "the actor's worker process died (its worker died during creation (connection closed))")


def test_spill_follows_up_to_8_hops_then_retries_later():
    m = Machine()
    m.create()
    for hops in range(MAX_SPILL_HOPS):
        (req,) = m.feed(LeaseSpilled(A, 0, hops, "n2"))
        assert req.node_id == "n2" and req.hops == hops + 1
    assert m.feed(LeaseSpilled(A, 0, MAX_SPILL_HOPS, "n2")) == [RetryLater(A, 0, 0.2)]
    (req,) = m.feed(RetryDue(A, 0))
    assert req.node_id == "head" and req.hops == 0


def test_spill_to_an_unknown_node_retries_later():
    m = Machine()
    m.create()
    assert m.feed(LeaseSpilled(A, 0, 0, "gone")) == [RetryLater(A, 0, 0.2)]


def test_a_lost_lease_request_retries():
    m = Machine()
    m.create()
    assert m.feed(LeaseLost(A, 0, "closed")) == [RetryLater(A, 0, 0.2)]
    (req,) = m.feed(RetryDue(A, 0))
    assert req == RequestLease(A, 0, "head", 0, {"CPU": 1}, None, None)


def test_retry_with_no_node_left_is_dead():
    m = Machine(nodes=(("head", True),))
    m.create()
    m.feed(LeaseLost(A, 0, "closed"))
    m.feed(NodeDied("head", "gone"))
    m.feed(RetryDue(A, 0))
    assert m.actors.get(A).death_cause == NO_NODE


def test_kill_no_restart_is_dead_and_stops_the_worker():
    m = Machine()
    m.create(max_restarts=5)
    m.start()
    commands = m.feed(KillRequested(A, True))
    assert kinds(commands) == [NotifyWatchers, KillWorker]
    assert commands[1] == KillWorker("head", "w1")
    assert m.actors.get(A).death_cause == "the actor was killed by skate.kill()"
    assert m.feed(WorkerGone("w1", "killed")) == []  # its death changes nothing now
    assert m.feed(KillRequested(A, True)) == []


def test_kill_with_restart_stops_the_worker_and_the_death_restarts():
    m = Machine()
    m.create(max_restarts=1)
    m.start()
    assert m.feed(KillRequested(A, False)) == [KillWorker("head", "w1")]
    assert m.state() == ActorState.ALIVE  # until the node manager reports the death
    assert kinds(m.feed(WorkerGone("w1", "killed"))) == [NotifyWatchers, RequestLease]
    assert m.feed(KillRequested(A, False)) == []  # no worker yet: nothing to stop


def test_kill_worker_on_a_dead_node_asks_every_node():
    m = Machine()
    m.create(owner_worker="owner", owner_node="n2")
    m.start(node="n2")
    m.actors.nodes.pop("n2")  # as if the node manager went and NodeDied is on its way
    commands = m.feed(KillRequested(A, True))
    assert commands[-1] == KillWorker(None, "w1")


def test_exit_actor_is_dead_without_restart():
    m = Machine()
    m.create(max_restarts=3)
    m.start()
    assert kinds(m.feed(ActorExited(A, "exit_actor() was called"))) == [NotifyWatchers]
    a = m.actors.get(A)
    assert a.state == ActorState.DEAD and a.death_cause == "exit_actor() was called"
    assert m.feed(WorkerGone("w1", "exited")) == []


def test_job_end_kills_non_detached_actors_only():
    m = Machine()
    b, c = b"b" * 16, b"c" * 16
    m.create(A)
    m.create(b, detached=True, name="keep")
    m.create(c, job_id="job2")
    m.start(A, worker="w1")
    commands = m.feed(JobFinished("job1"))
    assert kinds(commands) == [NotifyWatchers, KillWorker]
    assert m.state(A) == ActorState.DEAD
    assert m.actors.get(A).death_cause == "the job (driver) that created it exited"
    assert m.state(b) == ActorState.PENDING_CREATION
    assert m.state(c) == ActorState.PENDING_CREATION


def test_owner_death_kills_owned_actors():
    m = Machine()
    b, c = b"b" * 16, b"c" * 16
    m.create(A, owner_worker="owner")
    m.create(b, owner_worker="owner", detached=True)  # detached: not owned
    m.create(c, owner_worker="other")
    m.start(A)
    assert m.actors.owned_by == {"owner": {A}, "other": {c}}
    commands = m.feed(OwnerDied("owner"))
    assert commands[-1] == KillWorker("head", "w1")
    assert m.actors.get(A).death_cause == "the worker that created it (its owner) died"
    assert m.state(b) != ActorState.DEAD and m.state(c) != ActorState.DEAD
    assert m.feed(OwnerDied("owner")) == []


def test_node_death_restarts_or_kills():
    m = Machine()
    b, c = b"b" * 16, b"c" * 16
    m.create(A, max_restarts=1)
    m.create(b, max_restarts=0)
    m.create(c, owner_worker="task-worker", owner_node="n2")  # runs on head, owner on n2
    m.start(A, node="n2", worker="w1")
    m.start(b, node="n2", worker="w2")
    m.start(c, node="head", worker="w3")
    commands = m.feed(NodeDied("n2", "its node manager disconnected"))
    assert m.state(A) == ActorState.RESTARTING
    restart = [r for r in commands if isinstance(r, RequestLease)]
    assert restart == [RequestLease(A, 1, "head", 0, {"CPU": 1}, None, None)]
    assert m.state(b) == ActorState.DEAD
    assert "its node died (its node manager disconnected)" in m.actors.get(b).death_cause
    assert m.state(c) == ActorState.DEAD
    assert m.actors.get(c).death_cause.startswith("the node of the worker that created it died")
    assert KillWorker("head", "w3") in commands
    assert "n2" not in m.actors.nodes


def test_named_actor_freed_at_death_and_get_if_exists():
    m = Machine()
    b = b"b" * 16
    m.create(A, name="x")
    assert m.actors.find_named("ns", "x").actor_id == A
    assert m.actors.find_named("other", "x") is None
    with pytest.raises(ActorAlreadyExistsError, match="get_if_exists=True"):
        m.create(b, name="x")
    assert b not in m.actors.actors  # nothing changed
    m.feed(KillRequested(A, True))
    assert m.actors.find_named("ns", "x") is None
    m.create(b, name="x")
    assert m.actors.find_named("ns", "x").actor_id == b


def test_detached_actors_are_persisted_and_dropped():
    m = Machine()
    commands = m.create(detached=True, name="d")
    assert kinds(commands) == [Persist, RequestLease]
    assert commands[0].fields["num_restarts"] == 0 and commands[0].fields["detached"]
    commands = m.feed(KillRequested(A, True))
    assert kinds(commands) == [DropPersisted, NotifyWatchers, CancelLease]


def test_killed_while_waiting_withdraws_its_lease_request():
    m = Machine()
    m.create()
    (spill,) = m.feed(LeaseSpilled(A, 0, 0, "n2"))  # now asked at n2
    assert isinstance(spill, RequestLease) and spill.node_id == "n2"
    commands = m.feed(KillRequested(A, True))
    assert commands[-1] == CancelLease("n2", A, 0) and m.state() == ActorState.DEAD
    assert m.grant(node="n2") == [ReturnLease("n2", 1, True)]  # a grant already on its way

    m.create(actor_id=B)
    m.feed(LeaseLost(B, 0, "gone"))  # nothing outstanding: nothing to withdraw
    assert CancelLease not in kinds(m.feed(KillRequested(B, True)))
    m.create(actor_id=C)
    m.start(actor_id=C)  # a granted actor is killed through its worker
    assert kinds(m.feed(KillRequested(C, True))) == [NotifyWatchers, KillWorker]


SPEC = {"class_name": "C", "payload": b"p", "meta": {}, "resources": {}, "max_restarts": 2}


def test_restored_actors_wait_for_adoption_then_a_node():
    m = Machine(nodes=())
    assert m.feed(ActorRestored(A, SPEC, "job1", "d", "ns", version=1 << 32)) == []
    assert m.state() == ActorState.RESTARTING and m.actors.find_named("ns", "d") is not None
    assert m.feed(NodeJoined("head", True)) == []  # it may still be reported: not yet
    (req,) = m.feed(AdoptionOver(frozenset()))
    assert req.node_id == "head" and req.attempt == 0
    assert m.feed(NodeJoined("n2", False)) == []  # asked once only

    m2 = Machine(nodes=())
    m2.feed(ActorRestored(A, SPEC, "job1", None, "ns"))
    assert m2.feed(AdoptionOver(frozenset())) == []  # no node yet: it waits for one
    (req,) = m2.feed(NodeJoined("head", True))
    assert req.node_id == "head"


def test_a_restored_actor_is_adopted_where_it_still_runs():
    m = Machine(nodes=())
    m.feed(ActorRestored(A, SPEC, "job1", "d", "ns", num_restarts=0, version=1 << 32))
    m.feed(NodeJoined("n2", False))
    grant = LeaseGrant(7, "w9", "unix:/w9", [], "n2")
    (start,) = m.feed(ActorAdopted(A, 1, "n2", grant))  # its worker was at attempt 1
    assert isinstance(start, StartActor) and (start.worker_id, start.attempt) == ("w9", 1)
    (note,) = m.feed(StartSucceeded(A, 1, 100))  # the worker: "I run it already"
    assert note.info["state"] == "ALIVE" and note.info["address"] == "unix:/w9"
    assert note.info["version"] > 1 << 32  # above the watchers' versions from before
    assert m.feed(AdoptionOver(frozenset())) == []  # adopted: nothing to recreate
    # a second report of it (or of an actor never restored) stops that worker
    assert m.feed(ActorAdopted(A, 1, "n2", LeaseGrant(8, "w8", "unix:/w8", [], "n2"))) == [
        ReturnLease("n2", 8, True)]
    assert m.feed(ActorAdopted(B, 0, "n2", LeaseGrant(9, "w7", "u", [], "n2"))) == [
        ReturnLease("n2", 9, True)]


def test_after_adoption_actors_of_jobs_that_did_not_come_back_die():
    m = Machine(nodes=())
    m.feed(ActorRestored(A, SPEC, "gone-job", None, "ns", detached=False))
    m.feed(ActorRestored(B, SPEC, "back-job", None, "ns", detached=False))
    m.feed(ActorRestored(C, SPEC, "gone-job", "kept", "ns", detached=True))
    m.feed(NodeJoined("head", True))
    m.feed(ActorAdopted(B, 0, "head", LeaseGrant(1, "w1", "unix:/w1", [], "head")))
    commands = m.feed(AdoptionOver(frozenset({"back-job"})))
    assert m.state(A) == ActorState.DEAD and "did not come back" in \
        m.actors.get(A).death_cause
    assert m.state(B) == ActorState.RESTARTING  # adopted, its start is on its way
    assert [c.actor_id for c in commands if isinstance(c, RequestLease)] == [C]  # recreated


def test_a_head_that_can_restart_persists_every_actor():
    m = Machine()
    m.actors.persist_all = True
    assert kinds(m.create()) == [Persist, RequestLease]
    assert kinds(m.feed(KillRequested(A, True))) == [DropPersisted, NotifyWatchers,
                                                     CancelLease]


def test_versions_grow_with_every_change():
    m = Machine()
    m.create(max_restarts=1)
    m.start()
    m.feed(WorkerGone("w1", "x"))
    m.start(worker="w2")
    assert m.actors.get(A).version == 3


def test_validate_catches_a_broken_invariant():
    m = Machine()
    m.create(name="x")
    m.start()
    m.actors.get(A).address = None  # ALIVE without an address
    with pytest.raises(AssertionError, match="address"):
        m.actors.validate()
    m.actors.get(A).address = "unix:/w1"
    m.actors.validate()
    m.actors.by_worker["ghost"] = A
    with pytest.raises(AssertionError, match="by_worker"):
        m.actors.validate()
    del m.actors.by_worker["ghost"]
    m.actors.get(A).state = ActorState.DEAD  # DEAD yet named and with a worker
    with pytest.raises(AssertionError):
        m.actors.validate()

"""Unit tests of the deployment reconciler: a pure state machine, time passed in.

A tiny simulated cluster carries out its commands (a started replica is
ready one tick later, a stop takes effect at once) so whole rollouts run in
microseconds, checking the invariants after every step.
"""

from skate.serve.reconciler import (
    HEALTHY,
    RUNNING,
    UNHEALTHY,
    Reconciler,
    Reconfigure,
    StartReplica,
    StopReplica,
    Target,
)


class Sim:
    def __init__(self, r: Reconciler):
        self.r = r
        self.starting: list = []  # started last tick: ready this tick
        self.fail_starts = False
        self.min_running_seen = None
        self.reconfigured: list = []
        self.stopped: list = []

    def tick(self, now: float) -> list:
        for rid in self.starting:
            if self.fail_starts:
                self.r.replica_failed(rid, "constructor raised ValueError", now)
            else:
                self.r.replica_started(rid)
        self.starting = []
        cmds = self.r.step(now)
        self.r.check()
        for c in cmds:
            if isinstance(c, StartReplica):
                self.starting.append(c.replica_id)
            elif isinstance(c, StopReplica):
                self.stopped.append(c.replica_id)
                self.r.replica_stopped(c.replica_id)
            elif isinstance(c, Reconfigure):
                self.reconfigured.append(c.replica_id)
                self.r.reconfigured(c.replica_id, c.config_version)
        running = self.r.counts().get(RUNNING, 0)
        if self.min_running_seen is not None:
            self.min_running_seen = min(self.min_running_seen, running)
        return cmds

    def settle(self, start=0.0, ticks=50):
        for i in range(ticks):
            self.tick(start + i)
        return self


def versions(r):
    return sorted((rep.version, rep.state) for rep in r.replicas.values())


def test_scale_up_and_down():
    r = Reconciler("d")
    r.set_target(Target("v1", 3))
    sim = Sim(r).settle()
    assert versions(r) == [("v1", RUNNING)] * 3
    assert r.status()[0] == HEALTHY
    r.set_target(Target("v1", 1))
    sim.settle(100)
    assert versions(r) == [("v1", RUNNING)]
    assert sim.stopped == ["d#3", "d#2"]  # newest first


def test_rolling_update_never_drops_below_the_target_running():
    r = Reconciler("d")
    r.set_target(Target("v1", 3))
    sim = Sim(r).settle()
    sim.min_running_seen = 3
    r.set_target(Target("v2", 3))
    sim.settle(100)
    assert versions(r) == [("v2", RUNNING)] * 3
    assert sim.min_running_seen >= 3  # no moment with fewer running replicas
    assert r.status()[0] == HEALTHY


def test_surge_is_bounded_during_a_rollout():
    r = Reconciler("d")
    r.set_target(Target("v1", 4, max_surge=2))
    sim = Sim(r).settle()
    r.set_target(Target("v2", 4, max_surge=2))
    for i in range(30):
        sim.tick(100 + i)
        live = [x for x in r.replicas.values() if x.state != "STOPPING"]
        assert len(live) <= 6
    assert versions(r) == [("v2", RUNNING)] * 4


def test_a_new_target_in_the_middle_of_a_rollout():
    r = Reconciler("d")
    r.set_target(Target("v1", 2))
    sim = Sim(r).settle()
    r.set_target(Target("v2", 2))
    sim.tick(100)
    r.set_target(Target("v3", 2))  # v2 still starting: it is dropped at once
    sim.settle(101)
    assert versions(r) == [("v3", RUNNING)] * 2


def test_user_config_change_reconfigures_in_place():
    r = Reconciler("d")
    r.set_target(Target("v1", 2, config_version="a"))
    sim = Sim(r).settle()
    before = set(r.replicas)
    r.set_target(Target("v1", 2, config_version="b"))
    sim.settle(100)
    assert set(r.replicas) == before  # no replica restarted
    assert sorted(sim.reconfigured) == sorted(before)
    assert all(x.config_version == "b" for x in r.replicas.values())


def test_a_failed_replica_is_replaced():
    r = Reconciler("d")
    r.set_target(Target("v1", 2))
    sim = Sim(r).settle()
    r.replica_failed("d#1", "health check failed", now=50)
    cmds = sim.tick(51)
    assert cmds == [StartReplica("d#3", "v1", None)]
    sim.settle(52)
    assert versions(r) == [("v1", RUNNING)] * 2


def test_replicas_that_cannot_start_back_off_and_report_unhealthy():
    r = Reconciler("d")
    r.set_target(Target("v1", 1))
    sim = Sim(r)
    sim.fail_starts = True
    starts = []
    for t in [x * 0.25 for x in range(200)]:  # 50 s in quarter seconds
        starts += [t for c in sim.tick(t) if isinstance(c, StartReplica)]
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    # each failure is seen a tick (0.25 s) after its start, then 0.5, 1, 2, 4 s of back-off
    assert gaps[:4] == [0.75, 1.25, 2.25, 4.25]
    assert max(gaps) <= 30.25
    state, message = r.status()
    assert state == UNHEALTHY and "constructor raised ValueError" in message
    sim.fail_starts = False  # fixed code: a new version starts at once
    r.set_target(Target("v2", 1))
    sim.settle(100)
    assert r.status()[0] == HEALTHY


def test_scale_to_zero_and_back():
    r = Reconciler("d")
    r.set_target(Target("v1", 2))
    sim = Sim(r).settle()
    r.set_target(Target("v1", 0))
    sim.settle(100)
    assert r.replicas == {}
    assert r.status()[0] == HEALTHY
    r.set_target(Target("v1", 1))
    sim.settle(200)
    assert versions(r) == [("v1", RUNNING)]

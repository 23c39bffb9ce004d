"""Nodes dying: running tasks are retried on other nodes, actors restart
elsewhere, and nodes() / cluster_resources() follow nodes joining and
leaving."""

import os
import signal
import time

import pytest

import skate
from skate.exceptions import NodeDiedError, RayActorError
from skate.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from tests.core.utils import touch, wait_for_condition, wait_for_file


def _soft(node):
    return NodeAffinitySchedulingStrategy(node_id=node.node_id, soft=True)


def _hard(node):
    return NodeAffinitySchedulingStrategy(node_id=node.node_id, soft=False)


def _lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def _alive(node_id):
    return any(n["NodeID"] == node_id and n["Alive"] for n in skate.nodes())


@skate.remote
def logged(log, release):
    """Append this attempt's node to ``log``; run until ``release`` exists."""
    node = skate.get_runtime_context().get_node_id()
    with open(log, "a") as f:
        f.write(node + "\n")
    wait_for_file(release, timeout=60)
    return node


# ------------------------------------------------------------------------ tasks
def test_task_running_on_a_dying_node_is_retried_on_another(cluster, tmp_path):
    c = cluster(workers=[{"num_cpus": 1}, {"num_cpus": 1}])
    doomed = c.workers[0]
    log, release = str(tmp_path / "log"), str(tmp_path / "release")
    ref = logged.options(max_retries=2, scheduling_strategy=_soft(doomed)).remote(log, release)
    wait_for_condition(lambda: _lines(log) == [doomed.node_id], timeout=30)

    c.remove_node(doomed, allow_graceful=False)
    wait_for_condition(lambda: len(_lines(log)) == 2, timeout=60)  # the retry has started
    touch(release)
    survivor = skate.get(ref, timeout=60)
    assert survivor != doomed.node_id
    assert _lines(log) == [doomed.node_id, survivor]
    assert survivor in {n.node_id for n in c.nodes if n is not doomed}


def test_task_without_retries_fails_with_node_died_error(cluster, tmp_path):
    c = cluster(workers=[{"num_cpus": 1}])
    doomed = c.workers[0]
    log, release = str(tmp_path / "log"), str(tmp_path / "release")
    ref = logged.options(max_retries=0, scheduling_strategy=_hard(doomed)).remote(log, release)
    wait_for_condition(lambda: _lines(log) == [doomed.node_id], timeout=30)
    c.remove_node(doomed, allow_graceful=False)
    with pytest.raises(NodeDiedError):
        skate.get(ref, timeout=60)
    assert _lines(log) == [doomed.node_id]  # not retried


# ----------------------------------------------------------------------- actors
@skate.remote
class Counter:
    def __init__(self):
        self.n = 0

    def incr(self):
        self.n += 1
        return self.n, skate.get_runtime_context().get_node_id()

    def slow_incr(self, log, release):
        self.n += 1
        with open(log, "a") as f:
            f.write(skate.get_runtime_context().get_node_id() + "\n")
        wait_for_file(release, timeout=60)
        return self.n, skate.get_runtime_context().get_node_id()


# Ray's workers outlive a SIGKILLed raylet for a while, so there the call can
# finish on the old actor; Skate's die with their node manager.
@pytest.mark.skate_only
def test_actor_restarts_on_another_node_and_retries_the_call_in_flight(cluster, tmp_path):
    # only the two worker nodes have "zone": the actor can live on either
    c = cluster(workers=[{"num_cpus": 1, "resources": {"zone": 1}},
                         {"num_cpus": 1, "resources": {"zone": 1}}])
    actor = Counter.options(num_cpus=0, resources={"zone": 1}, max_restarts=1,
                            max_task_retries=1).remote()
    assert skate.get(actor.incr.remote(), timeout=60)[0] == 1
    first = skate.get(actor.incr.remote(), timeout=60)[1]
    doomed = next(n for n in c.workers if n.node_id == first)
    other = next(n for n in c.workers if n.node_id != first)

    log, release = str(tmp_path / "log"), str(tmp_path / "release")
    in_flight = actor.slow_incr.remote(log, release)
    wait_for_condition(lambda: _lines(log) == [first], timeout=30)
    c.remove_node(doomed, allow_graceful=False)
    wait_for_condition(lambda: len(_lines(log)) == 2, timeout=60)  # retried on the restart
    touch(release)
    # the restarted actor is fresh (n starts at 0 again) and runs on the other node
    assert skate.get(in_flight, timeout=60) == (1, other.node_id)
    assert _lines(log) == [first, other.node_id]
    assert skate.get(actor.incr.remote(), timeout=60) == (2, other.node_id)


def test_actor_without_restarts_dies_with_its_node(cluster, tmp_path):
    c = cluster(workers=[{"num_cpus": 1}])
    doomed = c.workers[0]
    actor = Counter.options(num_cpus=0, max_restarts=0, scheduling_strategy=_hard(doomed)).remote()
    assert skate.get(actor.incr.remote(), timeout=60) == (1, doomed.node_id)
    log, release = str(tmp_path / "log"), str(tmp_path / "release")
    in_flight = actor.slow_incr.remote(log, release)
    wait_for_condition(lambda: _lines(log) == [doomed.node_id], timeout=30)
    c.remove_node(doomed, allow_graceful=False)
    with pytest.raises(RayActorError):
        skate.get(in_flight, timeout=60)
    with pytest.raises(RayActorError):
        skate.get(actor.incr.remote(), timeout=60)


# ------------------------------------------------------------- the node table
@pytest.mark.skate_only  # Ray notices a dead node only after its health checks (~30 s)
def test_nodes_and_resources_follow_nodes_joining_and_leaving(cluster):
    c = cluster(head={"num_cpus": 1})
    assert skate.cluster_resources()["CPU"] == 1

    started = time.monotonic()
    node = c.add_node(num_cpus=2, resources={"extra": 3})
    wait_for_condition(lambda: _alive(node.node_id)
                       and skate.cluster_resources().get("CPU") == 3
                       and skate.cluster_resources().get("extra") == 3
                       and skate.available_resources().get("extra") == 3, timeout=2)
    assert time.monotonic() - started < 5  # start-up plus the 2 s above
    assert {n["NodeID"]: n["Resources"]["CPU"] for n in skate.nodes() if n["Alive"]} == {
        c.head.node_id: 1, node.node_id: 2}

    started = time.monotonic()
    c.remove_node(node, allow_graceful=False)
    wait_for_condition(lambda: not _alive(node.node_id)
                       and skate.cluster_resources().get("CPU") == 1
                       and "extra" not in skate.cluster_resources()
                       and "extra" not in skate.available_resources(), timeout=2)
    assert time.monotonic() - started < 2
    dead = [n for n in skate.nodes() if n["NodeID"] == node.node_id]
    assert len(dead) == 1 and dead[0]["Alive"] is False  # still listed, as dead


@pytest.fixture
def hang_after_3s(monkeypatch):
    """Skate's hung-node timeout at 3 s (the default, 30 s, suits loaded machines)."""
    monkeypatch.setenv("SKATE_NODE_TIMEOUT_S", "3")


@pytest.mark.skate_only  # stops the node manager by pid; sets Skate's hung-node timeout
def test_hung_node_is_declared_dead_and_stops_when_it_wakes(hang_after_3s, cluster):
    c = cluster(workers=[{"num_cpus": 1, "resources": {"hung": 1}}])
    hung = c.workers[0]
    proc = hung._node.procs[0]  # its node manager; its workers keep running
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        wait_for_condition(lambda: not _alive(hung.node_id), timeout=15)
        assert time.monotonic() - started > 2  # still connected: only the silence counts
        assert "hung" not in skate.cluster_resources()
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    # told at its next heartbeat that it was declared dead, it exits rather than come back
    wait_for_condition(lambda: proc.poll() is not None, timeout=10)
    assert not _alive(hung.node_id)


@pytest.mark.skate_only  # stops the node manager by pid; sets Skate's hung-node timeout
def test_task_sent_to_a_hung_node_runs_elsewhere_once_it_is_declared_dead(hang_after_3s, cluster):
    c = cluster(workers=[{"num_cpus": 1}])
    hung = c.workers[0]
    proc = hung._node.procs[0]

    @skate.remote
    def where():
        return skate.get_runtime_context().get_node_id()

    os.kill(proc.pid, signal.SIGSTOP)
    try:
        # the node still looks alive, so the request goes to it and nobody answers
        ref = where.options(scheduling_strategy=_soft(hung)).remote()
        wait_for_condition(lambda: not _alive(hung.node_id), timeout=15)
        assert skate.get(ref, timeout=10) == c.head.node_id
    finally:
        os.kill(proc.pid, signal.SIGCONT)


@pytest.mark.skate_only  # stops the node manager by pid; sets Skate's hung-node timeout
def test_actor_sent_to_a_hung_node_is_created_elsewhere_once_it_is_declared_dead(
        hang_after_3s, cluster):
    c = cluster(workers=[{"num_cpus": 1}])
    hung = c.workers[0]
    proc = hung._node.procs[0]
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        # the node still looks alive, so the control store's lease request goes to it and
        # nobody answers; once the node is declared dead the request is asked again elsewhere
        actor = Counter.options(num_cpus=0, scheduling_strategy=_soft(hung)).remote()
        wait_for_condition(lambda: not _alive(hung.node_id), timeout=15)
        assert skate.get(actor.incr.remote(), timeout=20) == (1, c.head.node_id)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    wait_for_condition(lambda: proc.poll() is not None, timeout=10)  # told it is dead, it exits

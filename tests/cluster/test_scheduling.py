"""Where work runs in a multi-node cluster: spillback, custom resources,
SPREAD, node affinity (hard, soft, to a dead node), and actors placed by
their resources."""

import collections
import os

import pytest

import skate
from skate.exceptions import GetTimeoutError, TaskUnschedulableError
from skate.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from tests.core.utils import rendezvous, touch, wait_for_condition, wait_for_file


@skate.remote
def where():
    return skate.get_runtime_context().get_node_id()


@skate.remote
def meet(directory, name, n):
    """Keep running (holding its CPU) until ``n`` tasks have arrived; return the node."""
    rendezvous(directory, name, n)
    return skate.get_runtime_context().get_node_id()


@skate.remote
def hold(release):
    """Hold its resources until the file ``release`` appears; return the node."""
    wait_for_file(release, timeout=60)
    return skate.get_runtime_context().get_node_id()


def _affinity(node_id, soft=False):
    return NodeAffinitySchedulingStrategy(node_id=node_id, soft=soft)


def _alive_ids():
    return {n["NodeID"] for n in skate.nodes() if n["Alive"]}


# ------------------------------------------------------------------ spillback
def test_task_spills_to_another_node_when_the_local_node_is_full(cluster, tmp_path):
    c = cluster(workers=[{"num_cpus": 1}])
    head, worker = c.head.node_id, c.workers[0].node_id
    # Two one-CPU tasks that must run at the same time: the driver's node has
    # one CPU, so the second can only run if it spills to the other node.
    rdv = str(tmp_path / "rdv")
    placed = skate.get([meet.remote(rdv, str(i), 2) for i in range(2)], timeout=60)
    assert sorted(placed) == sorted([head, worker])


def test_task_bigger_than_the_local_node_runs_where_it_fits(cluster):
    c = cluster(workers=[{"num_cpus": 1}, {"num_cpus": 2}])
    big = c.workers[1].node_id
    placed = skate.get([where.options(num_cpus=2).remote() for _ in range(3)], timeout=60)
    assert placed == [big] * 3


def test_busy_local_node_sends_new_work_elsewhere(cluster, tmp_path):
    c = cluster(workers=[{"num_cpus": 1}])
    head, worker = c.head.node_id, c.workers[0].node_id
    release = str(tmp_path / "release")
    blocker = hold.options(scheduling_strategy=_affinity(head)).remote(release)
    wait_for_condition(lambda: skate.available_resources().get("CPU", 0) == 1, timeout=10)
    # The head's only CPU is taken: plain tasks run on the other node meanwhile.
    assert set(skate.get([where.remote() for _ in range(4)], timeout=60)) == {worker}
    touch(release)
    assert skate.get(blocker, timeout=60) == head


# --------------------------------------------------------- custom resources
def test_custom_resource_pins_tasks_to_the_node_that_has_it(cluster):
    c = cluster(workers=[{"num_cpus": 1}, {"num_cpus": 1, "resources": {"accel": 2}}])
    accel = c.workers[1].node_id
    refs = [where.options(resources={"accel": 1}).remote() for _ in range(6)]
    refs += [where.options(num_cpus=0, resources={"accel": 0.5}).remote() for _ in range(4)]
    assert skate.get(refs, timeout=60) == [accel] * 10


def test_task_waits_for_a_node_with_its_resource_to_join(cluster):
    c = cluster()
    ref = where.options(resources={"late": 1}).remote()
    ready, _ = skate.wait([ref], timeout=0.5)
    assert ready == []  # no node has "late": the task stays pending, it does not fail
    late = c.add_node(num_cpus=1, resources={"late": 1})
    assert skate.get(ref, timeout=60) == late.node_id


# -------------------------------------------------------------------- SPREAD
def test_spread_puts_tasks_on_every_node(cluster):
    c = cluster(workers=[{"num_cpus": 1}, {"num_cpus": 1}])
    ids = {n.node_id for n in c.nodes}  # each has a warm worker (see the fixture)
    # A quarter CPU each: all of them would fit on the driver's node, where the
    # default strategy may keep them all; SPREAD must use every node.
    placed = skate.get([where.options(num_cpus=0.25, scheduling_strategy="SPREAD").remote()
                        for _ in range(15)], timeout=60)
    counts = collections.Counter(placed)
    assert set(counts) == ids, counts
    assert min(counts.values()) >= 2, counts  # an even split is 5 each


def test_spread_actors_land_on_different_nodes(cluster):
    c = cluster(workers=[{"num_cpus": 1}, {"num_cpus": 1}])

    # a quarter CPU each: all three would fit on the driver's node, which is
    # where the default strategy puts the first two
    @skate.remote(num_cpus=0.25)
    class Where:
        def node(self):
            return skate.get_runtime_context().get_node_id()

    actors = [Where.options(scheduling_strategy="SPREAD").remote() for _ in range(3)]
    placed = skate.get([a.node.remote() for a in actors], timeout=60)
    assert sorted(placed) == sorted(n.node_id for n in c.nodes)


# ------------------------------------------------------------- node affinity
def test_hard_affinity_runs_on_the_chosen_node(cluster):
    c = cluster(workers=[{"num_cpus": 1}, {"num_cpus": 1}])
    for node in c.nodes:
        refs = [where.options(scheduling_strategy=_affinity(node.node_id)).remote()
                for _ in range(3)]
        assert skate.get(refs, timeout=60) == [node.node_id] * 3


def test_hard_affinity_to_a_node_that_just_joined(cluster):
    c = cluster()
    node = c.add_node(num_cpus=1)  # returns once skate.nodes() shows it alive
    assert node.node_id in _alive_ids()
    pinned = where.options(scheduling_strategy=_affinity(node.node_id)).remote()
    assert skate.get(pinned, timeout=60) == node.node_id


def test_hard_affinity_to_a_busy_node_waits_for_it(cluster, tmp_path):
    c = cluster(workers=[{"num_cpus": 1}])
    worker = c.workers[0].node_id
    release = str(tmp_path / "release")
    blocker = hold.options(scheduling_strategy=_affinity(worker)).remote(release)
    wait_for_condition(lambda: skate.available_resources().get("CPU", 0) == 1, timeout=10)
    pinned = where.options(scheduling_strategy=_affinity(worker)).remote()
    ready, _ = skate.wait([pinned], timeout=0.5)
    assert ready == []  # the head has a free CPU, but hard affinity does not spill
    touch(release)
    assert skate.get([blocker, pinned], timeout=60) == [worker, worker]


def test_affinity_to_a_dead_node_hard_fails_soft_runs_elsewhere(cluster):
    c = cluster(workers=[{"num_cpus": 1}, {"num_cpus": 1}])
    doomed = c.workers[0]
    dead_id = doomed.node_id
    assert skate.get(where.options(scheduling_strategy=_affinity(dead_id)).remote()) == dead_id
    c.remove_node(doomed, allow_graceful=False)
    # (Ray takes its health-check period to notice; test_failures times Skate)
    wait_for_condition(lambda: dead_id not in _alive_ids(), timeout=60)

    hard = where.options(scheduling_strategy=_affinity(dead_id)).remote()
    with pytest.raises(TaskUnschedulableError):
        skate.get(hard, timeout=60)
    soft = [where.options(scheduling_strategy=_affinity(dead_id, soft=True)).remote()
            for _ in range(3)]
    placed = skate.get(soft, timeout=60)
    assert set(placed) <= _alive_ids() and dead_id not in placed


def test_hard_affinity_to_an_unknown_node_fails(cluster):
    cluster()
    unknown = os.urandom(28).hex()
    with pytest.raises(TaskUnschedulableError):
        skate.get(where.options(scheduling_strategy=_affinity(unknown)).remote(), timeout=60)


# ---------------------------------------------------------------------- actors
@skate.remote
class Placed:
    def node(self):
        return skate.get_runtime_context().get_node_id()


def test_actors_are_placed_by_their_resources(cluster):
    c = cluster(workers=[{"num_cpus": 2}, {"num_cpus": 1, "resources": {"accel": 1}}])
    two_cpus, accel = c.workers[0].node_id, c.workers[1].node_id
    big = Placed.options(num_cpus=2).remote()
    special = Placed.options(num_cpus=0, resources={"accel": 1}).remote()
    pinned = Placed.options(num_cpus=0,
                            scheduling_strategy=_affinity(c.head.node_id)).remote()
    assert skate.get([big.node.remote(), special.node.remote(), pinned.node.remote()],
                     timeout=60) == [two_cpus, accel, c.head.node_id]


def test_actor_waits_for_resources_freed_on_another_node(cluster):
    c = cluster(workers=[{"num_cpus": 1, "resources": {"accel": 1}}])
    accel = c.workers[0].node_id
    first = Placed.options(num_cpus=0, resources={"accel": 1}).remote()
    assert skate.get(first.node.remote(), timeout=60) == accel
    second = Placed.options(num_cpus=0, resources={"accel": 1}).remote()
    with pytest.raises(GetTimeoutError):
        skate.get(second.node.remote(), timeout=0.5)  # "accel" is held by the first actor
    skate.kill(first)
    assert skate.get(second.node.remote(), timeout=60) == accel


def _children(pid):
    kids = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            kids.update(int(p) for p in f.read().split())
    return kids


@pytest.mark.skate_only  # counts the node manager's worker processes
def test_queued_requests_start_only_the_workers_the_node_has_room_for(cluster):
    c = cluster(workers=[{"num_cpus": 1}])
    node = c.workers[0]
    started = _children(node._node.procs[0].pid)

    @skate.remote(num_cpus=0)
    class Idle:  # takes the node's warm worker, not its CPU
        def ping(self):
            return os.getpid()

    actor = Idle.options(scheduling_strategy=_affinity(node.node_id)).remote()
    skate.get(actor.ping.remote(), timeout=60)
    # eight one-CPU tasks queue there; each would fit the free CPU, but only one at a time
    refs = [where.options(scheduling_strategy=_affinity(node.node_id)).remote() for _ in range(8)]
    assert skate.get(refs, timeout=60) == [node.node_id] * 8
    new = _children(node._node.procs[0].pid) - started
    assert len(new) <= 2, f"{len(new)} workers started for a one-CPU node"  # actor + one

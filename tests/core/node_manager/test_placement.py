"""Unit tests of the spill/placement policy (pure, no processes)."""

import pytest

from skate.core import resources as res
from skate.core.node_manager.placement import HERE, NodeView, decide

pytestmark = pytest.mark.skate_only


def view(**nodes):
    return {n: NodeView(res.to_units(t), res.to_units(a), alive)
            for n, (t, a, alive) in nodes.items()}


def U(**r):
    return res.to_units(r)


def test_local_first_when_it_fits():
    v = view(a=({"CPU": 2}, {"CPU": 2}, True), b=({"CPU": 2}, {"CPU": 2}, True))
    assert decide(U(CPU=1), None, "a", v).node == HERE


def test_spill_when_busy_here_and_free_elsewhere():
    v = view(a=({"CPU": 2}, {"CPU": 0}, True), b=({"CPU": 2}, {"CPU": 1}, True))
    assert decide(U(CPU=1), None, "a", v).node == "b"


def test_wait_here_when_everyone_is_busy():
    v = view(a=({"CPU": 2}, {"CPU": 0}, True), b=({"CPU": 2}, {"CPU": 0}, True))
    assert decide(U(CPU=1), None, "a", v).node is None


def test_custom_resource_pins_to_the_node_that_has_it():
    v = view(a=({"CPU": 2}, {"CPU": 2}, True), b=({"CPU": 2, "gpu_box": 1}, {"CPU": 0}, True))
    assert decide(U(CPU=1, gpu_box=1), None, "a", v).node == "b"  # queues there even if busy


def test_infeasible_everywhere_and_dead_nodes_ignored():
    v = view(a=({"CPU": 2}, {"CPU": 2}, True), b=({"CPU": 64}, {"CPU": 64}, False))
    d = decide(U(CPU=8), None, "a", v)
    assert d.infeasible and d.node is None


def test_spread_rotates_over_nodes():
    v = view(a=({"CPU": 4}, {"CPU": 4}, True), b=({"CPU": 4}, {"CPU": 4}, True),
             c=({"CPU": 4}, {"CPU": 4}, True))
    picks = {decide(U(CPU=1), "SPREAD", "a", v, spread_turn=i).node for i in range(6)}
    assert picks == {HERE, "b", "c"}


def test_node_affinity_hard_and_soft():
    v = view(a=({"CPU": 2}, {"CPU": 2}, True), b=({"CPU": 2}, {"CPU": 0}, True),
             c=({"CPU": 2}, {"CPU": 2}, False))
    assert decide(U(CPU=1), ("node", "b", False), "a", v).node == "b"
    assert decide(U(CPU=1), ("node", "c", False), "a", v).error
    assert decide(U(CPU=1), ("node", "c", True), "a", v).node == HERE


def test_node_affinity_to_a_node_not_yet_in_the_view_waits():
    v = view(a=({"CPU": 2}, {"CPU": 2}, True))
    d = decide(U(CPU=1), ("node", "new", False), "a", v)
    assert d.unknown_target and d.node is None and not d.error


def test_locality_prefers_the_node_holding_the_arguments():
    v = view(a=({"CPU": 2}, {"CPU": 2}, True), b=({"CPU": 2}, {"CPU": 2}, True))
    assert decide(U(CPU=1), None, "a", v, preferred="b").node == "b"
    busy = view(a=({"CPU": 2}, {"CPU": 2}, True), b=({"CPU": 2}, {"CPU": 0}, True))
    assert decide(U(CPU=1), None, "a", busy, preferred="b").node == HERE  # no room there now

"""A node's resource books on their own: GPUs by fraction, bundles, lent CPUs, balance."""

import doctest

import pytest

from skate.core import resources as res
from skate.core.node_manager import node_resources
from skate.core.node_manager.node_resources import NodeResources

pytestmark = pytest.mark.skate_only

U = res.UNIT


def test_the_docstring_example_runs():
    failed, attempted = doctest.testmod(node_resources)
    assert attempted > 0 and failed == 0


def test_fractions_share_an_id_and_whole_gpus_take_free_ids():
    node = NodeResources(res.to_units({"CPU": 4, "GPU": 2}), num_gpus=2)
    assert node.take_gpus(U // 2) == [0]
    assert node.take_gpus(U // 2) == [0]
    assert node.take_gpus(U) == [1]
    assert node.take_gpus(U // 4) is None and node.gpu_free == {0: 0, 1: 0}
    node.give_back({"GPU": U // 2}, [0], blocked=False)
    assert node.gpu_free == {0: U // 2, 1: 0}
    assert not node.fits_total({"GPU": U + U // 2}) and node.fits_total({"GPU": 2 * U})


def test_a_bundle_moves_resources_into_its_group_and_back():
    node = NodeResources(res.to_units({"CPU": 4}), num_gpus=0)
    key = ("pg", 0)
    assert node.prepare_bundle(key, {"CPU": 3}, 0, "pg")
    assert node.prepare_bundle(key, {"CPU": 3}, 0, "pg")  # again: already there
    assert node.available["CPU"] == U
    assert node.total["CPU_group_0_pg"] == node.total["CPU_group_pg"] == 3 * U
    assert not node.prepare_bundle(("pg", 1), {"CPU": 2}, 1, "pg")  # 1 CPU is left
    node.validate({}, {})
    node.return_bundle(key)
    assert node.total == node.available == res.to_units({"CPU": 4}) and not node.bundles


def test_lent_cpus_are_not_held_and_validate_names_what_is_off():
    node = NodeResources(res.to_units({"CPU": 2}), num_gpus=0)
    one = {"CPU": U}
    node.take(one)
    node.lend_cpu(U)  # its worker waits in get: the CPU is the node's again
    node.validate({}, {})
    node.take_back_cpu(U)
    node.validate(one, {})
    node.give_back(one, [], blocked=False)
    node.validate({}, {})
    with pytest.raises(AssertionError, match="CPU: available"):
        node.validate(one, {})

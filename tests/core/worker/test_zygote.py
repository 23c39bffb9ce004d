"""Workers forked by a zygote (``_system_config={"worker_preload_modules": [...]}``):
they start with the modules imported, their ids and random generators are their own,
their output reaches the driver, a kill -9 is noticed, and nothing outlives shutdown."""

import os
import signal
import sys
import time

import pytest

import skate
from skate.exceptions import RayActorError
from tests.core.utils import wait_for_condition

pytestmark = pytest.mark.skate_only

PRELOAD = ["colorsys", "skate_no_such_module_xyz"]  # a cheap module, and one that fails


@pytest.fixture
def zygote_cluster(shutdown_only):
    skate.init(num_cpus=2, _system_config={"worker_preload_modules": PRELOAD})

    @skate.remote(num_cpus=0)
    def loaded():
        return "colorsys" in sys.modules

    # the zygote imports, then the idle pool is made of workers forked from it
    wait_for_condition(lambda: all(skate.get([loaded.remote() for _ in range(4)])),
                       timeout=30)
    yield skate


@skate.remote(num_cpus=0)
class Probe:
    def info(self):
        import random

        import numpy as np

        from skate.core import ids

        print(f"probe {os.getpid()} says hello", flush=True)
        return {"pid": os.getpid(), "ppid": os.getppid(), "preloaded": "colorsys" in sys.modules,
                "task_id": ids.task_id().hex(), "np": float(np.random.random()),
                "py": random.random()}


def test_forked_workers_start_preloaded_with_their_own_ids_and_seeds(zygote_cluster):
    probes = [Probe.remote() for _ in range(3)]
    infos = skate.get([p.info.remote() for p in probes])
    assert all(i["preloaded"] for i in infos)
    assert len({i["ppid"] for i in infos}) == 1  # one zygote forked them
    assert infos[0]["ppid"] != os.getpid()
    for key in ("pid", "task_id", "np", "py"):
        assert len({i[key] for i in infos}) == 3, key


def test_worker_output_reaches_the_driver(zygote_cluster, capfd):
    pid = skate.get(Probe.remote().info.remote())["pid"]
    seen = []

    def printed():
        seen.append(capfd.readouterr().out)
        return f"probe {pid} says hello" in "".join(seen)

    wait_for_condition(printed, timeout=10)


def test_a_killed_forked_worker_is_noticed(zygote_cluster):
    probe = Probe.options(max_restarts=0).remote()
    pid = skate.get(probe.info.remote())["pid"]
    os.kill(pid, signal.SIGKILL)
    began = time.monotonic()
    with pytest.raises(RayActorError):
        skate.get(probe.info.remote(), timeout=30)
    assert time.monotonic() - began < 30

    @skate.remote(max_retries=2)
    def pid_of():
        return os.getpid()

    assert skate.get(pid_of.remote(), timeout=30) > 0  # the node goes on


def test_when_the_zygote_dies_its_workers_count_as_dead_and_others_start(zygote_cluster):
    import psutil

    probe = Probe.options(max_restarts=0).remote()
    info = skate.get(probe.info.remote())
    zygote = info["ppid"]
    assert "skate.core.worker.zygote" in " ".join(psutil.Process(zygote).cmdline())
    os.kill(zygote, signal.SIGKILL)  # the node manager then stops what it forked
    wait_for_condition(lambda: not psutil.pid_exists(info["pid"]) or
                       psutil.Process(info["pid"]).status() == psutil.STATUS_ZOMBIE,
                       timeout=20)
    with pytest.raises(RayActorError):
        skate.get(probe.info.remote(), timeout=30)
    fresh = Probe.remote()  # now started as a new interpreter
    info = skate.get(fresh.info.remote(), timeout=30)
    assert info["ppid"] != zygote and not info["preloaded"]


def test_a_placement_group_actor_is_forked_too(zygote_cluster):
    from skate.util import placement_group, remove_placement_group
    from skate.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    pg = placement_group([{"CPU": 1}])
    assert pg.wait(10)
    try:
        probe = Probe.options(num_cpus=1, scheduling_strategy=PlacementGroupSchedulingStrategy(
            pg, placement_group_bundle_index=0)).remote()
        assert skate.get(probe.info.remote())["preloaded"]
    finally:
        remove_placement_group(pg)


def test_preload_settings_are_checked(shutdown_only):
    with pytest.raises(TypeError, match="list of module names"):
        skate.init(num_cpus=1, _system_config={"worker_preload_modules": "torch"})

"""init / shutdown / cluster introspection / runtime context."""

import os

import numpy as np
import pytest

import skate
from tests.core.utils import rendezvous, wait_for_condition

MB = 1024 * 1024


def test_init_resources(shutdown_only):
    assert not skate.is_initialized()
    skate.init(
        num_cpus=2,
        num_gpus=2,
        resources={"custom": 3, "other": 1},
        object_store_memory=200 * MB,
    )
    assert skate.is_initialized()

    total = skate.cluster_resources()
    assert total["CPU"] == 2
    assert total["GPU"] == 2
    assert total["custom"] == 3
    assert total["other"] == 1
    assert "memory" in total and total["memory"] > 0
    assert total["object_store_memory"] == pytest.approx(200 * MB, rel=0.01)

    # Nothing is running, so everything is (eventually) available.
    def all_available():
        avail = skate.available_resources()
        return (
            avail.get("CPU") == 2
            and avail.get("GPU") == 2
            and avail.get("custom") == 3
            and "object_store_memory" in avail
            and "memory" in avail
        )

    wait_for_condition(all_available)


def test_init_fractional_node_resource_rejected(shutdown_only):
    # Node resource quantities must be whole numbers (tasks may ask for
    # fractions, nodes may not offer them).
    with pytest.raises(ValueError, match="whole numbers"):
        skate.init(num_cpus=1, resources={"half": 0.5})
    assert not skate.is_initialized()


def test_init_defaults_detect_cpus(shutdown_only):
    skate.init()
    cpus = skate.cluster_resources()["CPU"]
    assert 1 <= cpus <= (os.cpu_count() or 1)


def test_is_initialized_shutdown_and_reinit(shutdown_only):
    assert not skate.is_initialized()
    skate.init(num_cpus=1)
    assert skate.is_initialized()

    @skate.remote
    def f(x):
        return x + 1

    assert skate.get(f.remote(1)) == 2
    skate.shutdown()
    assert not skate.is_initialized()

    # A second cluster with different resources works in the same process.
    skate.init(num_cpus=2, resources={"again": 1})
    assert skate.is_initialized()
    assert skate.cluster_resources()["CPU"] == 2
    assert skate.cluster_resources()["again"] == 1
    assert skate.get(f.remote(41)) == 42
    skate.shutdown()
    assert not skate.is_initialized()


def test_shutdown_when_not_initialized_is_noop(shutdown_only):
    assert not skate.is_initialized()
    skate.shutdown()
    skate.shutdown()
    assert not skate.is_initialized()


def test_double_init_raises(shutdown_only):
    skate.init(num_cpus=1)
    with pytest.raises(RuntimeError, match="ignore_reinit_error"):
        skate.init(num_cpus=1)
    # Suppressed with ignore_reinit_error; the existing cluster is kept.
    skate.init(num_cpus=1, ignore_reinit_error=True)
    assert skate.is_initialized()
    assert skate.cluster_resources()["CPU"] == 1
    assert skate.get(skate.put("still works")) == "still works"


def test_init_namespace(shutdown_only):
    skate.init(num_cpus=1, namespace="my_namespace")
    assert skate.get_runtime_context().namespace == "my_namespace"


def test_nodes(start_regular):
    nodes = skate.nodes()
    assert isinstance(nodes, list) and len(nodes) == 1
    node = nodes[0]
    assert node["Alive"] is True
    assert isinstance(node["NodeID"], str) and len(node["NodeID"]) > 0
    assert node["Resources"]["CPU"] == 2
    assert node["NodeID"] == skate.get_runtime_context().get_node_id()


def test_runtime_context_driver(start_regular):
    ctx = skate.get_runtime_context()
    job_id = ctx.get_job_id()
    assert isinstance(job_id, str) and job_id
    node_id = ctx.get_node_id()
    assert isinstance(node_id, str) and node_id
    # The driver is neither a task nor an actor.
    assert ctx.get_task_id() is None
    assert ctx.get_actor_id() is None


def test_runtime_context_in_task(start_regular):
    @skate.remote
    def info():
        ctx = skate.get_runtime_context()
        return {
            "job_id": ctx.get_job_id(),
            "task_id": ctx.get_task_id(),
            "actor_id": ctx.get_actor_id(),
            "node_id": ctx.get_node_id(),
            "resources": ctx.get_assigned_resources(),
        }

    a, b = skate.get([info.remote(), info.remote()])
    driver = skate.get_runtime_context()
    for r in (a, b):
        assert r["job_id"] == driver.get_job_id()
        assert r["node_id"] == driver.get_node_id()
        assert isinstance(r["task_id"], str) and r["task_id"]
        assert r["actor_id"] is None
        assert r["resources"] == {"CPU": 1.0}
    assert a["task_id"] != b["task_id"]

    frac = skate.get(info.options(num_cpus=0.5).remote())
    assert frac["resources"] == {"CPU": 0.5}
    zero = skate.get(info.options(num_cpus=0).remote())
    assert zero["resources"] == {}


def test_runtime_context_in_actor(start_regular):
    @skate.remote
    class Info:
        def actor_id(self):
            return skate.get_runtime_context().get_actor_id()

        def task_id(self):
            return skate.get_runtime_context().get_task_id()

    a1 = Info.remote()
    a2 = Info.remote()
    id1 = skate.get(a1.actor_id.remote())
    assert isinstance(id1, str) and id1
    assert skate.get(a1.actor_id.remote()) == id1  # stable
    assert skate.get(a2.actor_id.remote()) != id1
    t1, t2 = skate.get([a1.task_id.remote(), a1.task_id.remote()])
    assert isinstance(t1, str) and t1 and t1 != t2


def test_gpu_ids_and_cuda_visible_devices(shutdown_only, tmp_path):
    skate.init(num_cpus=2, num_gpus=2)

    @skate.remote(num_gpus=1)
    def gpu_task(rdv_dir=None):
        if rdv_dir is not None:
            # Two GPU tasks hold their GPU at the same time.
            rendezvous(rdv_dir, str(os.getpid()), 2)
        ctx = skate.get_runtime_context()
        return {
            "gpu_ids": skate.get_gpu_ids(),
            "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "accel": ctx.get_accelerator_ids().get("GPU"),
            "resources": ctx.get_assigned_resources(),
        }

    r = skate.get(gpu_task.remote())
    assert len(r["gpu_ids"]) == 1
    gpu = str(r["gpu_ids"][0])
    assert gpu in ("0", "1")
    assert r["cuda"] == gpu
    assert r["accel"] == [gpu]
    assert r["resources"]["GPU"] == 1

    # Concurrent GPU tasks get distinct devices.
    rs = skate.get([gpu_task.remote(str(tmp_path / "rdv")) for _ in range(2)], timeout=60)
    assert sorted(str(x["gpu_ids"][0]) for x in rs) == ["0", "1"]
    assert sorted(x["cuda"] for x in rs) == ["0", "1"]

    both = skate.get(gpu_task.options(num_gpus=2).remote())
    assert sorted(str(g) for g in both["gpu_ids"]) == ["0", "1"]
    assert sorted(both["cuda"].split(",")) == ["0", "1"]

    @skate.remote
    def no_gpu():
        return skate.get_gpu_ids()

    assert skate.get(no_gpu.remote()) == []
    # The driver itself was assigned no GPU.
    assert skate.get_gpu_ids() == []


def test_gpu_actor(shutdown_only):
    skate.init(num_cpus=2, num_gpus=1)

    @skate.remote(num_gpus=1)
    class G:
        def ids(self):
            return skate.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES")

    g = G.remote()
    ids, cuda = skate.get(g.ids.remote())
    assert [str(i) for i in ids] == ["0"]
    assert cuda == "0"
    wait_for_condition(lambda: skate.available_resources().get("GPU", 0) == 0)
    skate.kill(g)
    wait_for_condition(lambda: skate.available_resources().get("GPU", 0) == 1)


# --------------------------------------------------------------------------
# Skate-only: nothing is left behind after shutdown.
# --------------------------------------------------------------------------
@pytest.mark.skate_only
def test_shutdown_leaves_no_processes_or_shm(shutdown_only):
    from tests.conftest import _leftover_children, _leftover_shm, assert_no_leaks

    skate.init(num_cpus=2, object_store_memory=200 * MB)

    @skate.remote
    def f(a):
        return a * 2

    @skate.remote
    class A:
        def ping(self):
            return os.getpid()

    arr = np.ones(4 * MB // 8)
    ref = skate.put(arr)
    assert skate.get(f.remote(ref)).sum() == 2 * arr.size
    actor = A.remote()
    assert skate.get(actor.ping.remote()) != os.getpid()
    assert _leftover_children(), "expected worker processes while the cluster runs"
    del ref, actor
    skate.shutdown()
    assert_no_leaks(timeout=5)
    assert _leftover_children() == []
    assert _leftover_shm() == []


@pytest.mark.skate_only
def test_repeated_init_shutdown_no_leaks(shutdown_only):
    from tests.conftest import assert_no_leaks

    for i in range(3):
        skate.init(num_cpus=1)

        @skate.remote
        def f(x):
            return x

        assert skate.get(f.remote(i)) == i
        skate.shutdown()
        assert_no_leaks(timeout=5)


def test_init_runtime_env_reaches_every_task_and_actor(shutdown_only):
    """init(runtime_env=...) is the job's environment: tasks, nested tasks and actors see it;
    a task's own runtime_env wins key by key."""
    skate.init(num_cpus=2, runtime_env={"env_vars": {"JOB_VAR": "job", "BOTH": "job"}})

    @skate.remote
    def read(*names):
        return [os.environ.get(n) for n in names]

    @skate.remote
    def nested():
        return skate.get(read.remote("JOB_VAR"))

    @skate.remote
    class Reader:
        def read(self, name):
            return os.environ.get(name)

    assert skate.get(read.remote("JOB_VAR", "BOTH")) == ["job", "job"]
    own = read.options(runtime_env={"env_vars": {"BOTH": "task"}}).remote("JOB_VAR", "BOTH")
    assert skate.get(own) == ["job", "task"]
    assert skate.get(nested.remote()) == ["job"]
    assert skate.get(Reader.remote().read.remote("JOB_VAR")) == "job"


def test_init_refuses_local_mode(shutdown_only):
    with pytest.raises(RuntimeError, match="local_mode"):
        skate.init(num_cpus=1, local_mode=True)
    assert not skate.is_initialized()
    skate.init(num_cpus=1, local_mode=False)
    assert skate.is_initialized()


@pytest.mark.skate_only  # Ray installs pip packages and uploads working_dir; Skate refuses
def test_init_refuses_unsupported_runtime_env(shutdown_only):
    with pytest.raises(ValueError, match="pip are not supported"):
        skate.init(num_cpus=1, runtime_env={"pip": ["requests"]})
    with pytest.raises(TypeError, match="env_vars'] must be a dict of str to str"):
        skate.init(num_cpus=1, runtime_env={"env_vars": {"A": 1}})
    assert not skate.is_initialized()  # nothing was started by the refused calls
    skate.init(num_cpus=1)

    @skate.remote
    def f():
        return 1

    with pytest.raises(ValueError, match="working_dir are not supported"):
        f.options(runtime_env={"working_dir": "."})
    assert skate.get(f.remote()) == 1


@pytest.mark.skate_only  # Ray starts a dashboard here; Skate says where to get one
def test_include_dashboard_is_answered_not_ignored(shutdown_only):
    with pytest.warns(UserWarning, match="skate start --head"):
        skate.init(num_cpus=1, include_dashboard=True)
    assert skate.get(skate.remote(lambda: 1).remote()) == 1

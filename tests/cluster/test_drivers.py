"""Several drivers on one cluster: a detached named actor made by one driver
process is used by another, in the same namespace only; a driver's other
actors end with it."""

import textwrap

import skate
from tests.core.utils import run_driver, wait_for_condition

FIRST = """
    skate.init(address={address!r}, namespace="shared")

    @skate.remote
    class Keeper:
        def __init__(self):
            self.items = []

        def add(self, item):
            self.items.append(item)
            return list(self.items)

        def node(self):
            return skate.get_runtime_context().get_node_id()

        def big(self, n):
            import numpy as np
            return np.arange(n, dtype=np.int64)

    @skate.remote
    class Temp:
        def ping(self):
            return "pong"

    keeper = Keeper.options(name="keeper", lifetime="detached", num_cpus=0,
                            resources={{"far": 1}}).remote()
    print("ADDED", skate.get(keeper.add.remote("first")))
    temp = Temp.options(name="temp", num_cpus=0).remote()
    print("TEMP", skate.get(temp.ping.remote()))
    skate.shutdown()
"""

SECOND = """
    from tests.core.utils import wait_for_condition

    skate.init(address={address!r}, namespace="shared")
    keeper = skate.get_actor("keeper")
    print("ADDED", skate.get(keeper.add.remote("second")))
    print("NODE", skate.get(keeper.node.remote()))
    arr = skate.get(keeper.big.remote(2_000_000))  # 16 MB made on the actor's node
    print("BIG", len(arr), int(arr.sum()) == 2_000_000 * 1_999_999 // 2)

    def temp_is_gone():
        try:
            skate.get_actor("temp")
        except ValueError:
            return True
        return False

    wait_for_condition(temp_is_gone, timeout=30)  # not detached: ended with the first driver
    print("TEMP GONE")
    skate.shutdown()
"""

OTHER_NAMESPACE = """
    skate.init(address={address!r}, namespace="elsewhere")
    try:
        skate.get_actor("keeper")
    except ValueError:
        print("NOT VISIBLE")
    print("EXPLICIT", skate.get(skate.get_actor("keeper", namespace="shared").add.remote("third")))
    skate.shutdown()
"""


def _run(code, address):
    out = run_driver(textwrap.dedent(code).format(address=address), timeout=120)
    assert out.returncode == 0, f"driver failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def test_detached_actor_made_by_one_driver_is_used_by_another(cluster):
    c = cluster(workers=[{"num_cpus": 1, "resources": {"far": 1}}], connect=False)
    far = c.workers[0].node_id

    assert "ADDED ['first']" in _run(FIRST, c.address)
    second = _run(SECOND, c.address)
    assert "ADDED ['first', 'second']" in second  # the same actor, with its state
    assert f"NODE {far}" in second
    assert "BIG 2000000 True" in second
    assert "TEMP GONE" in second
    other = _run(OTHER_NAMESPACE, c.address)
    assert "NOT VISIBLE" in other
    assert "EXPLICIT ['first', 'second', 'third']" in other

    # it outlives every driver that used it, until someone kills it
    c.cluster.connect(namespace="shared")
    keeper = skate.get_actor("keeper")
    assert skate.get(keeper.add.remote("fourth"), timeout=60)[-1] == "fourth"
    skate.kill(keeper)

    def keeper_is_gone():
        try:
            skate.get_actor("keeper")
        except ValueError:
            return True
        return False

    wait_for_condition(keeper_is_gone, timeout=30)


def test_two_drivers_share_the_cluster_at_once(cluster, tmp_path):
    c = cluster(workers=[{"num_cpus": 1}])
    ids = sorted(n.node_id for n in c.nodes)
    code = """
        skate.init(address={address!r})
        print("NODES", sorted(n["NodeID"] for n in skate.nodes() if n["Alive"]))
        print("CPU", skate.cluster_resources()["CPU"])

        @skate.remote
        def square(x):
            return x * x

        print("SUM", sum(skate.get([square.remote(i) for i in range(200)])))
        skate.shutdown()
    """
    out = _run(code, c.address)
    assert f"NODES {ids}" in out
    assert "CPU 2.0" in out
    assert f"SUM {sum(i * i for i in range(200))}" in out
    # this driver (connected all along) still works after the other one left
    assert skate.get(skate.put("still here"), timeout=30) == "still here"


def test_each_driver_gets_its_own_job(cluster):
    c = cluster()
    code = """
        skate.init(address={address!r})
        print("JOB", skate.get_runtime_context().get_job_id())
        skate.shutdown()
    """
    jobs = {_run(code, c.address).split("JOB ")[1].split()[0] for _ in range(2)}
    jobs.add(skate.get_runtime_context().get_job_id())
    assert len(jobs) == 3

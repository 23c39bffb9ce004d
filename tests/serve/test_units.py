"""Pure logic of skate.serve: the replica chooser, option checks, config files, batching."""

import asyncio
import random

import pytest

from skate import serve
from skate.serve import config as cfg
from skate.serve import schema
from skate.serve.deployment import flatten
from skate.serve.router import ReplicaChooser, ReplicaInfo

pytestmark = pytest.mark.skate_only


def _chooser(n=4, max_ongoing=2, node="n0", nodes=None):
    c = ReplicaChooser(max_ongoing=max_ongoing, node_id=node, rng=random.Random(1))
    nodes = nodes or ["n1"] * n
    c.set_replicas([ReplicaInfo(f"r{i}", None, nodes[i]) for i in range(n)])
    return c


def test_power_of_two_never_exceeds_max_ongoing_and_balances():
    c = _chooser(n=4, max_ongoing=3)
    picks = []
    while (rid := c.choose(0.0)) is not None:
        c.started(rid)
        picks.append(rid)
    assert len(picks) == 12 and all(v == 3 for v in c.in_flight.values())
    c.finished("r2")
    assert c.choose(0.0) == "r2"


def test_local_replicas_first_then_remote():
    c = _chooser(n=3, max_ongoing=1, node="n0", nodes=["n0", "n1", "n1"])
    assert c.choose(0.0) == "r0"
    c.started("r0")
    assert c.choose(0.0) in {"r1", "r2"}


def test_rejected_replica_paused_briefly():
    c = _chooser(n=1, max_ongoing=5)
    c.started("r0")
    c.rejected("r0", now=1.0)
    c.finished("r0")
    assert c.choose(1.0) is None
    assert c.choose(1.5) == "r0"


def test_model_affinity_and_least_loaded_for_new_models():
    c = ReplicaChooser(max_ongoing=4, rng=random.Random(0))
    c.set_replicas([ReplicaInfo("a", None, model_ids=frozenset({"m1"})),
                    ReplicaInfo("b", None)])
    assert all(c.choose(0.0, "m1") == "a" for _ in range(10))
    c.started("b")
    assert c.choose(0.0, "m2") == "a"  # nobody has m2: the least loaded loads it


def test_set_replicas_keeps_counts_of_known_and_drops_gone():
    c = _chooser(n=2)
    c.started("r0")
    c.set_replicas([ReplicaInfo("r0", None), ReplicaInfo("r9", None)])
    assert c.in_flight == {"r0": 1, "r9": 0}


def test_deployment_options_are_checked():
    with pytest.raises(ValueError, match="num_replicas"):
        cfg.from_options({"num_replicas": -1})
    with pytest.raises(ValueError, match="max_queued_requests"):
        cfg.from_options({"max_queued_requests": -5})
    with pytest.raises(ValueError, match="ray_actor_options: unknown"):
        cfg.from_options({"ray_actor_options": {"num_cpu": 1}})
    with pytest.raises(ValueError, match="cannot both be set"):
        cfg.from_options({"num_replicas": 2, "autoscaling_config": {"max_replicas": 3}})
    auto = cfg.from_options({"num_replicas": "auto"})
    assert auto.autoscaling_config.max_replicas == 100 and auto.num_replicas is None
    fixed = auto.merged({"num_replicas": 3})
    assert fixed.autoscaling_config is None and fixed.initial_replicas() == 3


def test_flatten_replaces_bound_deployments_with_handles_and_versions_code():
    @serve.deployment
    class A:
        pass

    @serve.deployment
    class B:
        def __init__(self, a, extra):
            pass

    specs = flatten(B.bind(A.bind(), {"k": 1}), "app")
    assert [s.name for s in specs] == ["A", "B"] and specs[-1].ingress
    again = flatten(B.bind(A.bind(), {"k": 1}), "app")
    assert [s.version for s in specs] == [s.version for s in again]
    changed = flatten(B.bind(A.bind(), {"k": 2}), "app")
    assert changed[-1].version != specs[-1].version
    with pytest.raises(ValueError, match="two deployments named"):
        flatten(B.bind(A.bind(), A.bind()), "app")


def test_config_file_checks_name_the_wrong_key():
    good = {"applications": [{"name": "a", "import_path": "m:app", "route_prefix": "/a",
                              "deployments": [{"name": "D", "num_replicas": 2}]}]}
    assert schema.parse_config(good)["applications"][0]["route_prefix"] == "/a"
    with pytest.raises(schema.ConfigError, match="unknown key.*colour"):
        schema.parse_config({**good, "colour": 1})
    bad_dep = {"applications": [{"import_path": "m:app",
                                 "deployments": [{"name": "D", "replicas": 2}]}]}
    with pytest.raises(schema.ConfigError, match=r"deployments\[0\] \(D\): unknown key"):
        schema.parse_config(bad_dep)
    with pytest.raises(schema.ConfigError, match="import_path"):
        schema.parse_config({"applications": [{"name": "x"}]})
    two = {"applications": [{"import_path": "m:a"}, {"import_path": "m:b"}]}
    with pytest.raises(schema.ConfigError, match="two applications"):
        schema.parse_config(two)


def test_batch_splits_by_size_and_fails_the_whole_batch():
    seen = []

    @serve.batch(max_batch_size=3, batch_wait_timeout_s=0.05)
    async def double(xs):
        seen.append(list(xs))
        if -1 in xs:
            raise ValueError("bad item")
        return [x * 2 for x in xs]

    async def main():
        ok = await asyncio.gather(*(double(i) for i in range(7)))
        bad = await asyncio.gather(double(-1), double(5), return_exceptions=True)
        return ok, bad
    ok, bad = asyncio.run(main())
    assert ok == [0, 2, 4, 6, 8, 10, 12]
    assert [len(b) for b in seen[:3]] == [3, 3, 1]
    assert all(isinstance(e, ValueError) for e in bad)
    with pytest.raises(TypeError, match="async def"):
        serve.batch(lambda xs: xs)

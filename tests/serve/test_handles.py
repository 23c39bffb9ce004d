"""Handles, composition, streaming through handles, @serve.batch and @serve.multiplexed."""

import asyncio

import httpx
import pytest

import skate
from skate import serve
from skate.exceptions import RayServeException
from tests.serve.conftest import deployed

pytestmark = pytest.mark.skate_only
LIGHT = {"num_cpus": 0}


@serve.deployment(ray_actor_options=LIGHT)
class Adder:
    def __init__(self, amount):
        self.amount = amount

    def add(self, x):
        return x + self.amount

    def fail(self):
        raise KeyError("no such thing")

    def count(self, n):
        for i in range(n):
            yield i


@serve.deployment(ray_actor_options=LIGHT)
class Doubler:
    async def __call__(self, x):
        return x * 2


@serve.deployment(ray_actor_options=LIGHT)
class Pipeline:
    def __init__(self, adder, doubler):
        self.adder, self.doubler = adder, doubler

    async def __call__(self, request):
        x = int(request.query_params["x"])
        # a response passed into another call: chained without waiting here
        return await self.doubler.remote(self.adder.add.remote(x))

    async def run(self, x):
        return await self.doubler.remote(await self.adder.add.remote(x))


def test_handle_calls_methods_and_raises_user_errors(serve_url):
    with deployed(Adder.bind(10), "adder", route_prefix=None) as h:
        assert h.add.remote(5).result() == 15
        assert [r.result() for r in [h.add.remote(i) for i in range(20)]] == \
            list(range(10, 30))
        with pytest.raises(KeyError):
            h.fail.remote().result()
        assert list(h.options(stream=True).count.remote(4)) == [0, 1, 2, 3]
        assert serve.get_app_handle("adder").add.remote(1).result() == 11
        assert serve.get_deployment_handle("Adder", "adder").add.remote(2).result() == 12
        with pytest.raises(RayServeException):
            serve.get_app_handle("nope")


def test_composition_over_http_and_handles(serve_url):
    app = Pipeline.bind(Adder.bind(1), Doubler.bind())
    with deployed(app, "pipe", route_prefix="/pipe") as h:
        assert httpx.get(f"{serve_url}/pipe?x=4").text == "10"
        assert h.run.remote(5).result() == 12
        names = set(serve.status().applications["pipe"].deployments)
        assert names == {"Adder", "Doubler", "Pipeline"}


def test_handle_from_async_driver_code(serve_url):
    with deployed(Adder.bind(2), "adder_async", route_prefix=None) as h:
        async def main():
            return await asyncio.gather(*(h.add.remote(i) for i in range(5)))
        assert asyncio.run(main()) == [2, 3, 4, 5, 6]


@serve.deployment(ray_actor_options=LIGHT, max_ongoing_requests=64)
class BatchedModel:
    def __init__(self):
        self.batches = []

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.2)
    async def predict(self, xs):
        self.batches.append(len(xs))
        return [x * 10 for x in xs]

    async def __call__(self, request):
        return await self.predict(int(request.query_params["x"]))

    def sizes(self):
        return self.batches


def test_batch_collects_concurrent_calls(serve_url):
    with deployed(BatchedModel.bind(), "batched", route_prefix="/b") as h:
        results = [h.predict.remote(i) for i in range(16)]
        assert [r.result() for r in results] == [i * 10 for i in range(16)]
        sizes = h.sizes.remote().result()
        assert sum(sizes) == 16 and max(sizes) == 8  # full batches, not one call each

        async def over_http():
            async with httpx.AsyncClient() as c:
                rs = await asyncio.gather(*(c.get(f"{serve_url}/b?x={i}") for i in range(8)))
            return [r.text for r in rs]
        assert asyncio.run(over_http()) == [str(i * 10) for i in range(8)]


@serve.deployment(num_replicas=2, ray_actor_options=LIGHT)
class ModelHost:
    def __init__(self):
        self.loads = []

    @serve.multiplexed(max_num_models_per_replica=2)
    async def get_model(self, model_id):
        self.loads.append(model_id)
        return f"model-{model_id}"

    async def __call__(self, request):
        model = await self.get_model(serve.get_multiplexed_model_id())
        return {"model": model, "replica": serve.get_replica_context().replica_id}

    def loaded(self):
        return list(self.loads)


def test_multiplexed_models_route_to_the_replica_holding_them(serve_url):
    with deployed(ModelHost.bind(), "mux", route_prefix="/mux"):
        hdr = {"serve_multiplexed_model_id": "m1"}
        first = httpx.get(f"{serve_url}/mux", headers=hdr).json()
        assert first["model"] == "model-m1"
        skate_deadline = 10
        from tests.core.utils import wait_for_condition

        # once the controller knows where m1 lives, every m1 request goes there
        def sticky():
            got = {httpx.get(f"{serve_url}/mux", headers=hdr).json()["replica"]
                   for _ in range(10)}
            return got == {first["replica"]}
        wait_for_condition(sticky, timeout=skate_deadline)


def test_multiplex_lru_evicts_beyond_capacity(serve_url):
    @serve.deployment(ray_actor_options=LIGHT)
    class One:
        def __init__(self):
            self.loads = []

        @serve.multiplexed(max_num_models_per_replica=2)
        async def get_model(self, model_id):
            self.loads.append(model_id)
            return model_id

        async def __call__(self, x):
            await self.get_model(serve.get_multiplexed_model_id())
            return list(self.loads)

    with deployed(One.bind(), "lru", route_prefix=None) as h:
        for mid in ["a", "b", "a", "c", "a", "b"]:
            loads = h.options(multiplexed_model_id=mid).remote(0).result()
        # a, b loaded; a hit; c evicts b; a hit; b evicts c (LRU)
        assert loads == ["a", "b", "c", "b"]


def test_replica_context_and_errors_outside_replica(serve_url):
    with pytest.raises(RuntimeError, match="outside a replica"):
        serve.get_replica_context()
    assert serve.get_multiplexed_model_id() == ""


def test_bad_deployments_fail_clearly(serve_url):
    @serve.deployment(ray_actor_options=LIGHT)
    class Crashes:
        def __init__(self):
            raise ValueError("bad weights file")

    with pytest.raises(RuntimeError, match="bad weights file"):
        serve.run(Crashes.bind(), name="crashes", route_prefix="/crash")
    assert serve.status().applications["crashes"].status == "DEPLOY_FAILED"
    serve.delete("crashes")

    @serve.deployment(ray_actor_options={"num_cpus": 1000})
    def huge(request):
        return "never"

    with pytest.raises(ValueError, match="no node has that much"):
        serve.run(huge.bind(), name="huge")
    with pytest.raises(TypeError, match="unknown deployment option"):
        serve.deployment(num_replica=2)
    with pytest.raises(ValueError, match="route_prefix"):
        serve.run(Doubler.bind(), route_prefix="no-slash")
    with pytest.raises(ValueError, match="max_ongoing_requests"):
        Doubler.options(max_ongoing_requests=0)
    with pytest.raises(TypeError, match="cannot be serialized"):
        import threading

        serve.run(Adder.bind(threading.Lock()), name="lock")
    assert skate.is_initialized()


@serve.deployment(num_replicas=2, max_ongoing_requests=1, ray_actor_options=LIGHT)
class OneAtATime:
    def __init__(self):
        self.running = 0
        self.most = 0

    async def __call__(self, x):
        self.running += 1
        self.most = max(self.most, self.running)
        await asyncio.sleep(0.05)
        self.running -= 1
        return x

    def peak(self):
        return self.most


def test_two_routers_never_overfill_a_replica(serve_url):
    """The driver's background-loop router and an asyncio.run router know nothing of each
    other's calls; replicas reject what would exceed max_ongoing_requests and the routers
    retry elsewhere, so every call succeeds and no replica ever runs two at once."""
    with deployed(OneAtATime.bind(), "one", route_prefix=None) as h:
        sync_side = [h.remote(i) for i in range(20)]

        async def async_side():
            return await asyncio.gather(*(h.remote(100 + i) for i in range(20)))
        got = asyncio.run(async_side())
        assert got == [100 + i for i in range(20)]
        assert [r.result() for r in sync_side] == list(range(20))
        peaks = {h.peak.remote().result() for _ in range(10)}
        assert peaks == {1}

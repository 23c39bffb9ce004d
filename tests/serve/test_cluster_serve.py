"""serve on a 3-node cluster: replicas spread over the nodes, the head's proxy reaches all."""

import asyncio

import httpx
import pytest

import skate
from skate import serve
from tests.cluster.conftest import cluster  # noqa: F401  (the multi-node fixture)
from tests.core.utils import wait_for_condition
from tests.serve.conftest import free_port

pytestmark = pytest.mark.skate_only


@serve.deployment(num_replicas=3, max_ongoing_requests=1, ray_actor_options={"num_cpus": 1})
class WhereAmI:
    async def __call__(self, request):
        if request.query_params.get("slow"):
            await asyncio.sleep(0.3)
        return skate.get_runtime_context().get_node_id()


def test_replicas_spread_and_proxy_on_head_routes_to_all(cluster):  # noqa: F811
    sim = cluster(head={"num_cpus": 1}, workers=[{"num_cpus": 2}, {"num_cpus": 2}])
    port = free_port()
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(WhereAmI.bind(), name="where")
        url = f"http://127.0.0.1:{port}/"
        # one at a time: the replica on the proxy's own node takes them all
        assert {httpx.get(url).text for _ in range(10)} == {sim.nodes[0].node_id}

        async def burst():  # more at once than the local replica takes: they spill over
            async with httpx.AsyncClient(timeout=30) as c:
                rs = await asyncio.gather(*(c.get(url + "?slow=1") for _ in range(6)))
            return {r.text for r in rs}
        seen: set = set()
        wait_for_condition(lambda: seen.update(asyncio.run(burst())) or len(seen) == 3,
                           timeout=30)
        assert seen == {n.node_id for n in sim.nodes}
    finally:
        serve.shutdown()

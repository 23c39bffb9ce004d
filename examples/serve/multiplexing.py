"""@serve.multiplexed: many models on few replicas, chosen per request by a header.

Run: python examples/serve/multiplexing.py
"""

import httpx

import skate
from skate import serve


@serve.deployment(num_replicas=2, ray_actor_options={"num_cpus": 0})
class ModelServer:
    @serve.multiplexed(max_num_models_per_replica=2)
    async def get_model(self, model_id: str):
        factor = int(model_id.removeprefix("times"))     # "loading" a model
        return lambda x: x * factor

    async def __call__(self, request):
        model = await self.get_model(serve.get_multiplexed_model_id())
        return {"model": serve.get_multiplexed_model_id(),
                "result": model(int(request.query_params["x"])),
                "replica": serve.get_replica_context().replica_id}


def main():
    skate.init()
    serve.run(ModelServer.bind())
    with httpx.Client() as client:
        for model_id in ["times2", "times3", "times2", "times10"]:
            r = client.get("http://127.0.0.1:8000/", params={"x": 7},
                           headers={"serve_multiplexed_model_id": model_id})
            print(r.json())
    serve.shutdown()
    skate.shutdown()


if __name__ == "__main__":
    main()

"""Composition: a pipeline of two deployments, preprocess -> model, through handles.

Run: python examples/serve/composition.py
"""

import httpx

import skate
from skate import serve


@serve.deployment(ray_actor_options={"num_cpus": 0})
class Preprocess:
    def __call__(self, text: str) -> list:
        return [len(word) for word in text.split()]


@serve.deployment(num_replicas=2, ray_actor_options={"num_cpus": 0})
class Model:
    def __call__(self, features: list) -> float:
        return sum(features) / max(1, len(features))


@serve.deployment(ray_actor_options={"num_cpus": 0})
class Pipeline:
    def __init__(self, preprocess, model):
        self.preprocess, self.model = preprocess, model   # DeploymentHandles

    async def __call__(self, request):
        text = request.query_params["text"]
        # the first response goes straight into the second call
        score = await self.model.remote(self.preprocess.remote(text))
        return {"text": text, "mean_word_length": score}


def main():
    skate.init()
    serve.run(Pipeline.bind(Preprocess.bind(), Model.bind()), route_prefix="/score")
    print(httpx.get("http://127.0.0.1:8000/score", params={"text": "skate on ice"}).json())
    model = serve.get_deployment_handle("Model", "default")   # any part, from Python
    print("model via its handle:", model.remote([3, 4]).result())
    serve.shutdown()
    skate.shutdown()


if __name__ == "__main__":
    main()

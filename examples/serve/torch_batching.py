"""A torch model served with @serve.batch: loaded once per replica, JSON predictions.

Run: python examples/serve/torch_batching.py
"""

import asyncio

import httpx
import torch

import skate
from skate import serve


@serve.deployment(num_replicas=1, max_ongoing_requests=64, ray_actor_options={"num_cpus": 0})
class Classifier:
    def __init__(self):
        torch.set_num_threads(1)
        torch.manual_seed(0)
        self.model = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.ReLU(),
                                         torch.nn.Linear(32, 3)).eval()
        self.batch_sizes = []

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.01)
    async def predict(self, rows: list) -> list:
        self.batch_sizes.append(len(rows))
        with torch.no_grad():
            logits = self.model(torch.tensor(rows, dtype=torch.float32))
        return logits.argmax(dim=1).tolist()

    async def __call__(self, request):
        body = await request.json()
        return {"class": await self.predict(body["features"])}

    def stats(self):
        return self.batch_sizes


async def many_requests(n):
    async with httpx.AsyncClient() as client:
        rows = [[i / n, 1 - i / n, (i % 3) / 3, 0.5] for i in range(n)]
        answers = await asyncio.gather(*(client.post("http://127.0.0.1:8000/classify",
                                                     json={"features": r}) for r in rows))
    return [a.json()["class"] for a in answers]


def main():
    skate.init()
    handle = serve.run(Classifier.bind(), route_prefix="/classify")
    classes = asyncio.run(many_requests(48))
    sizes = handle.stats.remote().result()
    print(f"48 predictions {classes[:8]}... in {len(sizes)} batches (largest {max(sizes)})")
    serve.shutdown()
    skate.shutdown()


if __name__ == "__main__":
    main()

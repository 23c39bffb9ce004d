"""Server side of torch_batching.py: a small torch MLP behind a serve deployment.

The model is ``64 -> H -> ReLU -> H -> ReLU -> 10`` (``--hidden`` H, default 256; seeded,
eval mode, ``torch.set_num_threads(1)`` in the replica).  ``POST /`` with JSON
``{"x": [64 floats]}`` answers ``{"class": k}``, the arg-max class; ``GET /`` answers
the replica's counters ``{"rows": ..., "batches": ...}`` (for the mean batch size).

``--mode unbatched``: ``async def __call__(self, request)`` runs the model on one row.
``--mode batched``: ``__call__`` awaits ``self.predict(row)``, an async method under
``@serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)`` that runs the model on
the list of rows it is given.  Start-up, ``READY`` and shutdown are ``noop_server.py``'s
(same options).  Usage::

    python benchmarks/serve/torch_server.py --backend skate --mode batched --port 8000
    /work/ray-venv/bin/python benchmarks/serve/torch_server.py --backend ray --port 8000
"""

from __future__ import annotations

import sys

from noop_server import base_parser, serve_main


def build_model(hidden: int = 256):
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(64, hidden), torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
        torch.nn.Linear(hidden, 10),
    ).eval()


def torch_app(args):
    opts = dict(num_replicas=args.replicas, max_ongoing_requests=args.max_ongoing)
    hidden = args.hidden

    def make(serve):
        if args.mode == "unbatched":
            @serve.deployment(**opts)
            class MLP:
                def __init__(self):
                    import torch

                    torch.set_num_threads(1)
                    self.torch, self.model = torch, build_model(hidden)
                    self.rows = self.batches = 0

                async def __call__(self, request):
                    if request.method == "GET":
                        return {"rows": self.rows, "batches": self.batches}
                    row = (await request.json())["x"]
                    with self.torch.inference_mode():
                        k = int(self.model(self.torch.tensor([row])).argmax(1)[0])
                    self.rows += 1
                    self.batches += 1
                    return {"class": k}

            return MLP.bind()

        @serve.deployment(**opts)
        class BatchedMLP:
            def __init__(self):
                import torch

                torch.set_num_threads(1)
                self.torch, self.model = torch, build_model(hidden)
                self.rows = self.batches = 0

            @serve.batch(max_batch_size=args.max_batch_size,
                         batch_wait_timeout_s=args.batch_wait_timeout)
            async def predict(self, rows: list[list[float]]) -> list[int]:
                with self.torch.inference_mode():
                    out = self.model(self.torch.tensor(rows)).argmax(1).tolist()
                self.rows += len(rows)
                self.batches += 1
                return out

            async def __call__(self, request):
                if request.method == "GET":
                    return {"rows": self.rows, "batches": self.batches}
                return {"class": await self.predict((await request.json())["x"])}

        return BatchedMLP.bind()

    return make


def main() -> None:
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--mode", choices=["unbatched", "batched"], default="batched")
    p.add_argument("--hidden", type=int, default=256, help="width of the two hidden layers")
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--batch-wait-timeout", type=float, default=0.005,
                   help="batch_wait_timeout_s")
    args = p.parse_args()
    if args.backend == "uvicorn" or args.startup:
        sys.exit("torch_server.py takes --backend skate|ray and no --startup")
    extra = dict(mode=args.mode, model=f"MLP 64-{args.hidden}-{args.hidden}-10, torch threads 1")
    if args.mode == "batched":
        extra.update(max_batch_size=args.max_batch_size,
                     batch_wait_timeout_s=args.batch_wait_timeout)
    serve_main(args, torch_app(args), extra)


if __name__ == "__main__":
    main()

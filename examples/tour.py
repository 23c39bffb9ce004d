"""A short tour of Skate: tasks, objects, actors, failures, asyncio, tune, serve, rllib,
sgd.

Run: python examples/tour.py
"""

import asyncio
import time

import numpy as np

import skate


@skate.remote
def square(x):
    return x * x


@skate.remote
def total(values):
    return sum(values)


@skate.remote
class Counter:
    def __init__(self, start):
        self.value = start

    def add(self, n):
        self.value += n
        return self.value


@skate.remote
def countdown(n):
    for i in range(n, 0, -1):
        yield i


@skate.remote
def fails():
    raise ValueError("this task failed on purpose")


def main():
    t0 = time.perf_counter()
    skate.init(num_cpus=2)
    first = skate.get(square.remote(3))
    print(f"init + first task: {time.perf_counter() - t0:.2f} s (result {first})")

    # tasks, and refs passed to tasks without fetching them
    squares = [square.remote(i) for i in range(10)]
    print("sum of squares:", skate.get(total.remote(skate.get(squares))))

    # large objects live in shared memory; get returns a zero-copy read-only view
    big = np.arange(10_000_000, dtype=np.float64)
    ref = skate.put(big)
    view = skate.get(ref)
    print(f"80 MB array back: sum={view.sum():.0f}, writeable={view.flags.writeable}")

    # actors keep state; calls run in order
    counter = Counter.remote(100)
    print("counter:", skate.get([counter.add.remote(1) for _ in range(5)]))

    # generators stream: each ref arrives as soon as the task yields it
    print("streamed:", [skate.get(ref) for ref in countdown.remote(3)])

    # a task's exception re-raises as the same type, with the remote traceback
    try:
        skate.get(fails.remote())
    except ValueError as e:
        print("caught ValueError from a task:", str(e).splitlines()[0])

    # asyncio: await refs directly
    async def gather():
        return await asyncio.gather(*[square.remote(i) for i in range(5)])

    print("awaited:", asyncio.run(gather()))
    print("resources:", {k: v for k, v in skate.cluster_resources().items() if k in ("CPU", "GPU")})

    # tune: a hyperparameter search, each trial an actor holding one CPU
    tour_tune()

    # serve: a deployment answering HTTP on 127.0.0.1:8000, through two replicas
    tour_serve()

    # rllib: PPO on CartPole for a few iterations (env runners are actors)
    tour_rllib()

    # sgd: 2 workers train a model together with DistributedDataParallel
    tour_sgd()

    # seeing inside: the state API and the metrics every library records
    tour_observability()
    skate.shutdown()


def tour_observability():
    from skate.util import metrics, state

    tasks = state.summarize_tasks()["cluster"]
    print(f"state: {tasks['total_tasks']} task attempts recorded, "
          f"{len(state.list_actors(filters=[('state', '=', 'DEAD')], limit=1000))} actors "
          f"finished, {len(state.list_workers(limit=1000))} worker records")
    names = sorted(f["name"] for f in metrics.snapshot())
    by_library = {lib: sum(n.startswith(lib + "_") for n in names)
                  for lib in ("skate", "tune", "serve", "rllib")}
    print(f"metrics: {len(names)} families ({by_library}), e.g. tune_trials, "
          f"serve_deployment_request_counter")


def tour_tune():
    import tempfile

    from skate import tune

    def trainable(config):
        for step in range(1, 6):
            tune.report({"loss": (config["lr"] - 0.05) ** 2 + 1 / step})

    analysis = tune.run(trainable, config={"lr": tune.grid_search([0.001, 0.05, 0.5])},
                        num_samples=1, metric="loss", mode="min", verbose=0,
                        storage_path=tempfile.mkdtemp(prefix="skate-tour-"))
    print(f"tune: {len(analysis.trials)} trials, best config {analysis.best_config}, "
          f"results in {analysis.best_trial.path}")


def tour_serve():
    import httpx

    from skate import serve

    @serve.deployment(num_replicas=2, ray_actor_options={"num_cpus": 0})
    class Predictor:
        def __call__(self, request):
            x = float(request.query_params["x"])
            return {"x": x, "prediction": 3 * x + 1}

    t0 = time.perf_counter()
    serve.deploy(Predictor.bind())
    up = time.perf_counter() - t0
    answer = httpx.get("http://127.0.0.1:8000/", params={"x": 2}).json()
    print(f"serve: 2 replicas up in {up:.2f} s; GET /?x=2 -> {answer}")
    serve.shutdown()


def tour_rllib():
    from skate.rllib import PPO

    algo = PPO.default_config_for("CartPole-v1").debugging(seed=0).build()
    t0 = time.perf_counter()
    returns = [algo.train()["env_runners"]["episode_return_mean"] for _ in range(8)]
    print(f"rllib: PPO on CartPole, 8 iterations in {time.perf_counter() - t0:.1f} s, "
          f"mean episode return {returns[0]:.0f} -> {returns[-1]:.0f}")
    algo.stop()


def tour_sgd():
    import tempfile

    import torch

    from skate import train
    from skate.train.torch import TorchTrainer, prepare_model

    def train_loop(config):
        rank = train.get_context().get_world_rank()
        model = prepare_model(torch.nn.Linear(4, 1))  # DistributedDataParallel
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        x = torch.randn(256, 4, generator=torch.Generator().manual_seed(rank))  # its rows
        y = x @ torch.tensor([[1.0], [2.0], [-1.0], [0.5]])
        for epoch in range(config["epochs"]):
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            train.report({"epoch": epoch, "loss": loss.item()})

    t0 = time.perf_counter()
    result = TorchTrainer(train_loop, train_loop_config={"epochs": 3},
                          scaling_config=train.ScalingConfig(num_workers=2),
                          run_config=train.RunConfig(verbose=0, storage_path=tempfile.mkdtemp(
                              prefix="skate-tour-"))).fit()
    print(f"sgd: 2 workers, {result.metrics['epoch'] + 1} epochs in "
          f"{time.perf_counter() - t0:.1f} s, loss {result.metrics['loss']:.3f}")


if __name__ == "__main__":
    main()

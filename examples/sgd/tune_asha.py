"""Tune the learning rate of a 1-worker training with ASHA: each trial its own worker
group, poor trials stopped early. Run: python examples/sgd/tune_asha.py
"""

import tempfile

import torch

import skate
from skate import train, tune
from skate.train.torch import TorchTrainer, prepare_model


def train_loop(config):
    torch.manual_seed(0)
    model = prepare_model(torch.nn.Linear(4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"])
    x = torch.randn(256, 4)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    for epoch in range(10):
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        train.report({"loss": loss.item()})


def main():
    skate.init(num_cpus=2)
    trainer = TorchTrainer(train_loop, scaling_config=train.ScalingConfig(num_workers=1))
    grid = tune.Tuner(
        trainer,
        param_space={"train_loop_config": {"lr": tune.grid_search([1e-3, 1e-2, 3e-2, 1e-1])}},
        tune_config=tune.TuneConfig(metric="loss", mode="min",
                                    scheduler=tune.schedulers.ASHAScheduler(
                                        max_t=10, grace_period=2, reduction_factor=2)),
        run_config=train.RunConfig(storage_path=tempfile.mkdtemp(), name="asha", verbose=0),
    ).fit()
    for r in sorted(grid, key=lambda r: r.config["train_loop_config"]["lr"]):
        print(f"lr={r.config['train_loop_config']['lr']:<6} iterations "
              f"{r.metrics['training_iteration']:2d}  loss {r.metrics['loss']:.4f}")
    print("best lr:", grid.get_best_result().config["train_loop_config"]["lr"])
    skate.shutdown()


if __name__ == "__main__":
    main()

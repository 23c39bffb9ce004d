"""Two workers train an MLP on synthetic regression data with DistributedDataParallel.

Run: python examples/sgd/mlp.py
"""

import os
import tempfile

import numpy as np
import torch

import skate
from skate import train
from skate.train.torch import TorchTrainer, prepare_data_loader, prepare_model


def train_loop(config):
    rows = train.get_dataset_shard("train")  # this worker's rows of the dataset
    data = torch.utils.data.TensorDataset(torch.from_numpy(rows[:, :-1]),
                                          torch.from_numpy(rows[:, -1:]))
    loader = prepare_data_loader(torch.utils.data.DataLoader(data, batch_size=32,
                                                             shuffle=True))
    model = prepare_model(torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(),
                                              torch.nn.Linear(32, 1)))
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    for epoch in range(config["epochs"]):
        for x, y in loader:
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with tempfile.TemporaryDirectory() as d:
            checkpoint = None
            if train.get_context().get_world_rank() == 0:
                torch.save(model.state_dict(), os.path.join(d, "model.pt"))
                checkpoint = train.Checkpoint.from_directory(d)
            train.report({"epoch": epoch, "loss": loss.item()}, checkpoint=checkpoint)


def main():
    skate.init(num_cpus=2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2048, 8)).astype(np.float32)
    y = np.sin(x[:, :1]) + 0.5 * x[:, 1:2]
    trainer = TorchTrainer(
        train_loop, train_loop_config={"lr": 3e-3, "epochs": 5},
        scaling_config=train.ScalingConfig(num_workers=2),
        datasets={"train": np.concatenate([x, y.astype(np.float32)], axis=1)},
        run_config=train.RunConfig(storage_path=tempfile.mkdtemp(), name="mlp"))
    result = trainer.fit()
    print(f"final loss {result.metrics['loss']:.4f} after {result.metrics['epoch'] + 1} "
          f"epochs; checkpoint {result.checkpoint.path}")
    skate.shutdown()


if __name__ == "__main__":
    main()

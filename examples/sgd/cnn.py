"""A small CNN learns to tell horizontal from vertical stripes, on 2 workers.

The images are generated (8x8, a stripe at a random row or column plus noise), so
the example needs no download. Run: python examples/sgd/cnn.py
"""

import tempfile

import torch

import skate
from skate import train
from skate.train.torch import TorchTrainer, prepare_data_loader, prepare_model


def stripes(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    images = 0.3 * torch.randn(n, 1, 8, 8, generator=g)
    labels = torch.randint(0, 2, (n,), generator=g)
    where = torch.randint(0, 8, (n,), generator=g)
    for i in range(n):
        if labels[i]:
            images[i, 0, :, where[i]] += 1.0  # vertical
        else:
            images[i, 0, where[i], :] += 1.0  # horizontal
    return torch.utils.data.TensorDataset(images, labels)


def train_loop(config):
    loader = prepare_data_loader(torch.utils.data.DataLoader(
        stripes(1024, seed=0), batch_size=32, shuffle=True))
    model = prepare_model(torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 2)))
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9)
    test = stripes(256, seed=1)
    for epoch in range(config["epochs"]):
        for x, y in loader:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            accuracy = (model(test.tensors[0]).argmax(1) == test.tensors[1]).float().mean()
        train.report({"epoch": epoch, "loss": loss.item(), "accuracy": accuracy.item()})


def main():
    skate.init(num_cpus=2)
    result = TorchTrainer(train_loop, train_loop_config={"lr": 0.05, "epochs": 4},
                          scaling_config=train.ScalingConfig(num_workers=2),
                          run_config=train.RunConfig(storage_path=tempfile.mkdtemp(),
                                                     name="cnn")).fit()
    print(f"test accuracy {result.metrics['accuracy']:.3f} after "
          f"{result.metrics['epoch'] + 1} epochs")
    skate.shutdown()


if __name__ == "__main__":
    main()

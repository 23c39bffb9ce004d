"""ASHA early stopping on a small PyTorch MLP (scikit-learn's digits, no download).

Each trial trains a one-hidden-layer MLP for up to 20 epochs and reports the
validation accuracy after every epoch. ``ASHAScheduler`` compares trials at
rungs (epochs 1, 3, 9 with ``reduction_factor=3``) and stops those not in the
top third there, so most of the budget goes to promising configs. The data is
shared through the object store once with ``tune.with_parameters``.

Run: python examples/tune/asha_torch.py
"""

import tempfile

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import skate
from skate import tune
from skate.tune.schedulers import ASHAScheduler


def load_data():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


def train_mlp(config, data=None):
    torch.set_num_threads(1)  # one CPU per trial: don't oversubscribe the machine
    torch.manual_seed(0)
    X_train, X_val, y_train, y_val = (torch.tensor(a) for a in data)  # copies
    model = torch.nn.Sequential(torch.nn.Linear(64, config["hidden"]), torch.nn.ReLU(),
                                torch.nn.Linear(config["hidden"], 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)
    for epoch in range(20):
        model.train()
        order = torch.randperm(len(X_train), generator=generator)
        for start in range(0, len(X_train), config["batch_size"]):
            idx = order[start:start + config["batch_size"]]
            optimizer.zero_grad()
            loss_fn(model(X_train[idx]), y_train[idx]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            logits = model(X_val)
            val_loss = loss_fn(logits, y_val).item()
            val_acc = (logits.argmax(1) == y_val).float().mean().item()
        tune.report({"val_acc": val_acc, "val_loss": val_loss, "epoch": epoch + 1})


if __name__ == "__main__":
    skate.init(num_cpus=2)
    trainable = tune.with_parameters(train_mlp, data=load_data())
    scheduler = ASHAScheduler(max_t=20, grace_period=1, reduction_factor=3)
    tuner = tune.Tuner(
        trainable,
        param_space={"lr": tune.loguniform(1e-3, 0.3),
                     "hidden": tune.choice([16, 64, 128]),
                     "batch_size": tune.choice([32, 128])},
        tune_config=tune.TuneConfig(metric="val_acc", mode="max", scheduler=scheduler,
                                    num_samples=16,
                                    search_alg=tune.search.BasicVariantGenerator(
                                        random_state=1)),
        run_config=tune.RunConfig(name="asha_mlp", storage_path=tempfile.mkdtemp(), verbose=0))
    results = tuner.fit()

    epochs = [r.metrics["training_iteration"] for r in results]
    print(f"{len(results)} trials; epochs run: {sum(epochs)} of {20 * len(results)} "
          f"({sum(e < 20 for e in epochs)} trials stopped early by ASHA)")
    df = results.get_dataframe().sort_values("val_acc", ascending=False)
    print(df[["config/lr", "config/hidden", "config/batch_size", "training_iteration",
              "val_acc"]].head(6).to_string(index=False))
    best = results.get_best_result()
    print(f"best: lr={best.config['lr']:.4f} hidden={best.config['hidden']} "
          f"batch_size={best.config['batch_size']} -> val_acc={best.metrics['val_acc']:.4f} "
          f"after {best.metrics['training_iteration']} epochs")
    skate.shutdown()

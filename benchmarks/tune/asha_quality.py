"""ASHA vs FIFO on a real (small) PyTorch MLP: does early stopping keep the best config?

  python benchmarks/tune/asha_quality.py             # print the table
  python benchmarks/tune/asha_quality.py --check     # exit 1 if a target is missed
  python benchmarks/tune/asha_quality.py --orders 3  # fewer ASHA runs (faster)

The same 27 configs (learning rate x hidden size x batch size, 3 values each)
are trained on scikit-learn's digits (1,797 8x8 images, 70/30 split, no
download) for up to ``max_t`` = 20 epochs, reporting validation accuracy
after each epoch. Every trial is deterministic (fixed torch seed, one
thread), so a config has the same learning curve in every run, and both
schedulers see exactly the same configs (one ``grid_search`` dimension):

* FIFO: every config trains for all 20 epochs (the exhaustive answer);
* ASHA: ``ASHAScheduler(grace_period=1, reduction_factor=3, max_t=20)``, rungs
  at epochs 1, 3 and 9, stops trials outside the top third at each rung.

Asynchronous successive halving judges early arrivals at a rung against few
peers (the first always passes), so what it saves depends on the order the
configs start in: started worst-first, every later trial beats the recorded
ones and is promoted. So ASHA runs once per start order, ``--orders`` seeded
shuffles (seeds 0, 1, ...), and the table gives each and their mean. FIFO's
outcome does not depend on the order; it runs once.

Reported: the best final validation accuracy, the relative gap to FIFO's
(target: ASHA within 1%, for the mean over orders), and the training
iterations (epochs) spent, the sum of ``training_iteration`` over trials
(target: ASHA's mean at most 1/3 of FIFO's), with wall-clock times. Two
trials run at a time (2 CPUs).
"""

import argparse
import random
import statistics
import sys
import tempfile
import time

import numpy as np

import skate
from skate import tune
from skate.tune.schedulers import ASHAScheduler, FIFOScheduler

MAX_T = 20
CONFIGS = [{"lr": lr, "hidden": hidden, "batch_size": batch_size}
           for lr in (0.003, 0.03, 0.3) for hidden in (16, 64, 256)
           for batch_size in (16, 64, 256)]


def space(seed: int) -> dict:
    """The 27 configs as one grid dimension, in a seeded shuffled order."""
    configs = list(CONFIGS)
    random.Random(seed).shuffle(configs)
    return {"net": tune.grid_search(configs)}


def load_data():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


def train_mlp(config, data=None):
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    X_train, X_val, y_train, y_val = (torch.tensor(a) for a in data)
    config = config["net"]
    model = torch.nn.Sequential(torch.nn.Linear(64, config["hidden"]), torch.nn.ReLU(),
                                torch.nn.Linear(config["hidden"], 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)
    for _ in range(MAX_T):
        model.train()
        order = torch.randperm(len(X_train), generator=generator)
        for start in range(0, len(X_train), config["batch_size"]):
            idx = order[start:start + config["batch_size"]]
            optimizer.zero_grad()
            loss_fn(model(X_train[idx]), y_train[idx]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            val_acc = (model(X_val).argmax(1) == y_val).float().mean().item()
        tune.report({"val_acc": val_acc})


def run(trainable, scheduler, storage, name, seed):
    start = time.perf_counter()
    analysis = tune.run(trainable, config=space(seed), scheduler=scheduler, metric="val_acc",
                        mode="max", stop={"training_iteration": MAX_T}, storage_path=storage,
                        name=name, verbose=0)
    elapsed = time.perf_counter() - start
    trials = analysis.trials
    best = analysis.best_trial
    return {"best_acc": best.last_result["val_acc"], "best_config": best.config["net"],
            "iterations": sum(t.last_result["training_iteration"] for t in trials),
            "full_length": sum(t.last_result["training_iteration"] == MAX_T for t in trials),
            "trials": len(trials), "seconds": elapsed}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=5,
                        help="ASHA runs, one per seeded start order (default 5)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 unless ASHA (mean over orders) is within 1%% of FIFO's "
                             "best accuracy with at most 1/3 of its training iterations")
    args = parser.parse_args()

    skate.init(num_cpus=2)
    trainable = tune.with_parameters(train_mlp, data=load_data())
    storage = tempfile.mkdtemp(prefix="tune-asha-quality-")
    fifo = run(trainable, FIFOScheduler(), storage, "fifo", seed=0)
    ashas = [run(trainable, ASHAScheduler(max_t=MAX_T, grace_period=1, reduction_factor=3),
                 storage, f"asha_{seed}", seed) for seed in range(args.orders)]
    skate.shutdown()

    def gap(r):
        return (fifo["best_acc"] - r["best_acc"]) / fifo["best_acc"]

    print(f"{'run':<14}{'trials':>7}{'best val_acc':>14}{'gap':>8}{'iterations':>12}"
          f"{'ratio':>7}{'to max_t':>10}{'wall s':>8}   best config")
    for name, r in [("FIFO", fifo)] + [(f"ASHA order {i}", a) for i, a in enumerate(ashas)]:
        print(f"{name:<14}{r['trials']:>7}{r['best_acc']:>14.4f}{gap(r):>8.2%}"
              f"{r['iterations']:>12}{r['iterations'] / fifo['iterations']:>7.3f}"
              f"{r['full_length']:>10}{r['seconds']:>8.1f}   {r['best_config']}")
    mean_gap = statistics.mean(gap(a) for a in ashas)
    mean_ratio = statistics.mean(a["iterations"] for a in ashas) / fifo["iterations"]
    print(f"ASHA mean over {len(ashas)} orders: accuracy gap to FIFO {mean_gap:+.2%} "
          f"(target <= 1%), iterations ASHA/FIFO {mean_ratio:.3f} (target <= 0.333), "
          f"wall {statistics.mean(a['seconds'] for a in ashas):.1f} s vs {fifo['seconds']:.1f} s")
    if args.check:
        failed = []
        if mean_gap > 0.01:
            failed.append(f"ASHA's best accuracy is {mean_gap:.2%} below FIFO's (> 1%)")
        if mean_ratio > 1 / 3:
            failed.append(f"ASHA used {mean_ratio:.3f} of FIFO's iterations (> 1/3)")
        if failed:
            sys.exit("check failed: " + "; ".join(failed))
        print("check passed")


if __name__ == "__main__":
    main()

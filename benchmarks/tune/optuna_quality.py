"""OptunaSearch through Tune vs Optuna used directly: same sampler, same answers?

  python benchmarks/tune/optuna_quality.py            # Branin, 5 seeds x 30 trials
  python benchmarks/tune/optuna_quality.py --check    # exit 1 if sequential runs differ
  python benchmarks/tune/optuna_quality.py --function rosenbrock --trials 50

For each seed ``s`` the same objective is minimised three ways, ``N`` trials each:

* optuna: ``optuna.create_study(sampler=TPESampler(seed=s)).optimize(objective, N)``;
* tune, 1 at a time: ``tune.run`` with ``OptunaSearch(seed=s)`` and
  ``max_concurrent_trials=1``. Each trial's result reaches the study before
  the next config is asked for, exactly as in ``study.optimize``, so the
  sequence of configs, and so every value, must be *identical* to Optuna's;
* tune, 2 at a time: ``ConcurrencyLimiter(OptunaSearch(seed=s), 2)``. TPE then
  suggests some configs without the result of the trial still running, and
  the order of completions depends on timing, so runs are not reproducible;
  their outcomes should be comparable in distribution.

Objectives (both minimised): Branin (2-D, x in [-5, 10], y in [0, 15], global
minimum 0.397887) and a shifted 3-D Rosenbrock (each coordinate in [-2, 2],
minimum 0 at (1.1, 1.21, 1.4641)).

Reported: the best value per seed for each, their mean and median over
seeds, and whether the sequential Tune run reproduced Optuna's values
exactly (every trial, not only the best).
"""

import argparse
import math
import statistics
import sys
import tempfile
import time

import optuna

import skate
from skate import tune
from skate.tune.search import ConcurrencyLimiter
from skate.tune.search.optuna import OptunaSearch


def branin(p):
    x, y = p["x"], p["y"]
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (y - b * x ** 2 + c * x - 6) ** 2 + 10 * (1 - t) * math.cos(x) + 10


def rosenbrock(p):
    # Shifted by 0.1 so the optimum is not at a "round" point of the box.
    z = [p["x0"] - 0.1, p["x1"] - 0.1 * 2.1, p["x2"] - 0.1 * 4.641]
    return sum(100 * (z[i + 1] - z[i] ** 2) ** 2 + (1 - z[i]) ** 2 for i in range(2))


FUNCTIONS = {
    "branin": (branin, {"x": (-5.0, 10.0), "y": (0.0, 15.0)}),
    "rosenbrock": (rosenbrock, {"x0": (-2.0, 2.0), "x1": (-2.0, 2.0), "x2": (-2.0, 2.0)}),
}


def optuna_direct(fn, bounds, seed, n):
    def objective(trial):
        return fn({k: trial.suggest_float(k, lo, hi) for k, (lo, hi) in bounds.items()})

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=n)
    return [t.value for t in study.trials]


def tune_run(fn, bounds, seed, n, concurrency, storage):
    def trainable(config):
        tune.report({"value": fn(config)})

    space = {k: tune.uniform(lo, hi) for k, (lo, hi) in bounds.items()}
    searcher = OptunaSearch(seed=seed)
    if concurrency > 1:
        searcher = ConcurrencyLimiter(searcher, max_concurrent=concurrency)
    analysis = tune.run(trainable, config=space, search_alg=searcher, num_samples=n,
                        metric="value", mode="min", max_concurrent_trials=concurrency,
                        storage_path=storage, name=f"seed{seed}_c{concurrency}", verbose=0)
    return [t.last_result["value"] for t in analysis.trials]  # in suggestion order


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--function", choices=sorted(FUNCTIONS), default="branin")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 unless the sequential Tune runs reproduce Optuna's values")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fn, bounds = FUNCTIONS[args.function]

    skate.init(num_cpus=2)
    storage = tempfile.mkdtemp(prefix="tune-optuna-quality-")
    rows, identical, seconds = [], [], {"optuna": 0.0, "seq": 0.0, "c2": 0.0}
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        direct = optuna_direct(fn, bounds, seed, args.trials)
        t1 = time.perf_counter()
        seq = tune_run(fn, bounds, seed, args.trials, 1, storage)
        t2 = time.perf_counter()
        par = tune_run(fn, bounds, seed, args.trials, 2, storage)
        t3 = time.perf_counter()
        seconds["optuna"] += t1 - t0
        seconds["seq"] += t2 - t1
        seconds["c2"] += t3 - t2
        same = len(seq) == len(direct) and all(
            math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12) for a, b in zip(seq, direct))
        identical.append(same)
        rows.append((seed, min(direct), min(seq), min(par), same))
    skate.shutdown()

    print(f"{args.function}, {args.trials} trials per run, TPE (seeded), minimising")
    print(f"{'seed':>4}{'optuna direct':>16}{'tune, 1 at a time':>20}{'tune, 2 at a time':>20}"
          f"   sequence identical")
    for seed, d, s, p, same in rows:
        print(f"{seed:>4}{d:>16.6f}{s:>20.6f}{p:>20.6f}   {'yes' if same else 'NO'}")
    for name, agg in (("mean", statistics.mean), ("median", statistics.median)):
        print(f"{name:>6}{agg(r[1] for r in rows):>14.6f}{agg(r[2] for r in rows):>20.6f}"
              f"{agg(r[3] for r in rows):>20.6f}")
    print(f"wall s {seconds['optuna']:>12.1f}{seconds['seq']:>20.1f}{seconds['c2']:>20.1f}"
          f"   (all seeds)")
    if args.check:
        if not all(identical):
            bad = [seed for seed, *_, same in rows if not same]
            sys.exit(f"check failed: sequential Tune runs differ from Optuna for seeds {bad}")
        print("check passed: every sequential run reproduced Optuna's values exactly")


if __name__ == "__main__":
    main()

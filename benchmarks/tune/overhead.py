"""Tune overhead: many trivial trials, and many fast results, vs Ray Tune in the same run.

  python benchmarks/tune/overhead.py                      # Skate only
  python benchmarks/tune/overhead.py --compare /work/ray-venv/bin/python

Two workloads (from the tune issue), each on a 2-CPU local cluster:
  trials:  200 trials of a trivial function trainable (one report each, 1 CPU per trial),
           total fit() time; Ray with reuse_actors=True (its best setting).
  results: 4 trials each reporting 2,000 results as fast as they can; results per second.
The same code runs on both backends (``import skate as ray`` / ``import ray``).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def bench(backend: str, trials: int, results: int) -> dict:
    if backend == "ray":
        import ray
        from ray import tune
    else:
        import skate as ray
        from skate import tune
    ray.init(num_cpus=2, include_dashboard=False) if backend == "ray" else ray.init(num_cpus=2)
    out = {}
    storage = tempfile.mkdtemp(prefix=f"tune-bench-{backend}-")

    def trivial(config):
        tune.report({"score": config["i"]})

    start = time.perf_counter()
    grid = tune.Tuner(trivial, param_space={"i": tune.grid_search(list(range(trials)))},
                      tune_config=tune.TuneConfig(reuse_actors=True),
                      run_config=tune.RunConfig(storage_path=storage, name="trials",
                                                verbose=0)).fit()
    out["trials_s"] = time.perf_counter() - start
    assert len(grid) == trials and not grid.errors, grid.errors

    def chatty(config):
        for i in range(config["n"]):
            tune.report({"i": i})

    start = time.perf_counter()
    grid = tune.Tuner(chatty, param_space={"n": results, "k": tune.grid_search([0, 1, 2, 3])},
                      tune_config=tune.TuneConfig(reuse_actors=True),
                      run_config=tune.RunConfig(storage_path=storage, name="results",
                                                verbose=0)).fit()
    elapsed = time.perf_counter() - start
    assert all(r.metrics["training_iteration"] == results for r in grid), \
        [r.metrics.get("training_iteration") for r in grid]
    out["results_per_s"] = 4 * results / elapsed
    ray.shutdown()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="skate", choices=["skate", "ray"])
    parser.add_argument("--compare", metavar="RAY_PYTHON",
                        help="also run Ray Tune with this interpreter and print ratios")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--results", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json:
        print(json.dumps(bench(args.backend, args.trials, args.results)))
        return
    rows = {}
    runs = [("skate", sys.executable)] + ([("ray", args.compare)] if args.compare else [])
    for backend, python in runs:
        env = dict(os.environ, RAY_AIR_NEW_OUTPUT="0", TUNE_DISABLE_AUTO_CALLBACK_LOGGERS="0")
        proc = subprocess.run([python, __file__, "--json", "--backend", backend, "--trials",
                               str(args.trials), "--results", str(args.results)],
                              capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            sys.exit(f"{backend} failed:\n{proc.stderr[-3000:]}")
        rows[backend] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{'':28}" + "".join(f"{b:>12}" for b in rows) + ("   skate/ray" if args.compare else ""))
    trials_line = f"{args.trials} trivial trials (s)".ljust(28)
    trials_line += "".join(f"{r['trials_s']:12.2f}" for r in rows.values())
    results_line = f"4x{args.results} results (res/s)".ljust(28)
    results_line += "".join(f"{r['results_per_s']:12.0f}" for r in rows.values())
    if args.compare:
        trials_line += f"   {rows['ray']['trials_s'] / rows['skate']['trials_s']:8.1f}x faster"
        results_line += f"   {rows['skate']['results_per_s'] / rows['ray']['results_per_s']:8.1f}x"
    print(trials_line)
    print(results_line)


if __name__ == "__main__":
    main()

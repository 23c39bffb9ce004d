"""Tune's driver kill -9'd again and again: ``resume="AUTO"`` finishes the experiment with
every trial's history complete and no iteration run twice past its checkpoint.

    python benchmarks/chaos/tune_driver_kills.py [--kill-every 30] [--trials 4]
        [--iterations 40] [--step-s 0.25] [--deadline 900]

The driver (this file with ``--child``) runs ``tune.run`` of ``--trials``
trials, each ``--iterations`` steps of ``--step-s`` seconds, checkpointing
every step, under a fixed name and storage path with ``resume="AUTO"``. The
parent starts it, ``kill -9``s its whole process group (the driver and the
cluster it started) every ``--kill-every`` seconds, and starts it again,
until a run ends on its own. Checked from the files: every trial TERMINATED,
its result.json holds every iteration 1..N, and an iteration appears twice
only when a kill interrupted it (at most one repeat per kill and trial: a
resumed trial goes back to its last checkpoint, which is the step before).
Printed: kills, wall time, repeats, and the time of the same experiment run
without kills.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def child(storage: str, trials: int, iterations: int, step_s: float) -> None:
    if REPO_ROOT not in sys.path:
        sys.path.insert(0, REPO_ROOT)
    import skate
    from skate import tune

    def trainable(config):
        start = 0
        ckpt = tune.get_checkpoint()
        if ckpt is not None:
            with open(os.path.join(ckpt.to_directory(), "step")) as f:
                start = int(f.read())
        for step in range(start, config["n"]):
            time.sleep(config["step_s"])
            d = tempfile.mkdtemp()
            with open(os.path.join(d, "step"), "w") as f:
                f.write(str(step + 1))
            tune.report({"score": config["x"] * (step + 1)},
                        checkpoint=tune.Checkpoint.from_directory(d))

    skate.init(num_cpus=2)
    tune.run(trainable, config={"x": tune.grid_search(list(range(trials))), "n": iterations,
                                "step_s": step_s},
             storage_path=storage, name="chaos", resume="AUTO", verbose=0)
    print("FINISHED", flush=True)
    skate.shutdown()


def check(storage: str, trials: int, iterations: int, kills: int) -> dict:
    exp = os.path.join(storage, "chaos")
    dirs = [os.path.join(exp, d) for d in sorted(os.listdir(exp))
            if os.path.isdir(os.path.join(exp, d)) and d.startswith("trainable")]
    failures, repeats = [], 0
    if len(dirs) != trials:
        failures.append(f"{len(dirs)} trial folders, expected {trials}")
    for d in dirs:
        with open(os.path.join(d, "result.json")) as f:
            its = [json.loads(line)["training_iteration"] for line in f if line.strip()]
        if sorted(set(its)) != list(range(1, iterations + 1)):
            failures.append(f"{os.path.basename(d)}: iterations {sorted(set(its))[:5]}... "
                            f"not 1..{iterations}")
        extra = len(its) - len(set(its))
        repeats += extra
        if extra > kills:
            failures.append(f"{os.path.basename(d)}: {extra} repeated iterations for "
                            f"{kills} kills")
    if REPO_ROOT not in sys.path:
        sys.path.insert(0, REPO_ROOT)
    from skate.tune.experiment_state import load_state

    statuses = sorted(t.status for t in load_state(exp)[0])
    if statuses != ["TERMINATED"] * trials:
        failures.append(f"trial statuses {statuses}")
    return {"repeats": repeats, "failures": failures}


def run(args, kill_every: float | None) -> dict:
    storage = tempfile.mkdtemp(prefix="skate-tune-chaos-")
    cmd = [sys.executable, os.path.abspath(__file__), "--child", storage, "--trials",
           str(args.trials), "--iterations", str(args.iterations), "--step-s",
           str(args.step_s)]
    kills, t0, finished = 0, time.monotonic(), False
    while time.monotonic() - t0 < args.deadline:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, start_new_session=True, cwd=REPO_ROOT)
        try:
            out, _ = proc.communicate(timeout=kill_every or args.deadline)
            finished = "FINISHED" in out
            break
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the driver and the cluster it started
            proc.wait()
            kills += 1
    result = {"kills": kills, "seconds": round(time.monotonic() - t0, 1),
              "finished": finished}
    result.update(check(storage, args.trials, args.iterations, kills) if finished
                  else {"failures": ["the experiment never finished"], "repeats": None})
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--kill-every", type=float, default=30)
    p.add_argument("--trials", type=int, default=4)
    p.add_argument("--iterations", type=int, default=40)
    p.add_argument("--step-s", type=float, default=0.25)
    p.add_argument("--deadline", type=float, default=900)
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args.trials, args.iterations, args.step_s)
        return 0
    quiet = run(args, None)
    chaos = run(args, args.kill_every)
    report = {"date": time.strftime("%Y-%m-%d"), "quiet": quiet, "chaos": chaos}
    print(json.dumps(report, indent=2))
    return 1 if quiet["failures"] or chaos["failures"] or not chaos["kills"] else 0


if __name__ == "__main__":
    sys.exit(main())

"""Continue an interrupted experiment with ``Tuner.restore``.

The first ``Tuner.fit()`` runs in a child process (a driver of its own), which
this script interrupts with SIGINT (what Ctrl-C sends) while trials are
half-way: Tune saves the experiment state and exits, leaving unfinished
trials resumable. ``Tuner.restore(path, trainable)`` then rebuilds the
experiment from its folder (``tuner.pkl``, ``experiment_state.json``,
``trial-journal.jsonl``): finished trials are kept as they are, unfinished
ones restart from their latest checkpoint (``tune.get_checkpoint()``), and
trials never started are started. The same works after ``kill -9`` of the
driver, since the state file is rewritten atomically as the run goes.

Run: python examples/tune/tuner_restore.py
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import skate
from skate import tune

STEPS = 8


def slow_counter(config):
    """Counts to STEPS, 0.25 s a step, checkpointing its count every step."""
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with open(os.path.join(checkpoint.path, "count.json")) as f:
            start = json.load(f)["count"]
    for count in range(start + 1, STEPS + 1):
        time.sleep(0.25)
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "count.json"), "w") as f:
                json.dump({"count": count}, f)
            tune.report({"count": count * config["scale"], "resumed_at": start},
                        checkpoint=tune.Checkpoint.from_directory(d))


def first_run(storage):
    """The driver that gets interrupted: 4 trials, 2 at a time."""
    skate.init(num_cpus=2)
    tuner = tune.Tuner(
        slow_counter, param_space={"scale": tune.grid_search([1, 2, 3, 4])},
        tune_config=tune.TuneConfig(metric="count", mode="max"),
        run_config=tune.RunConfig(name="interrupted", storage_path=storage, verbose=0))
    tuner.fit()
    skate.shutdown()


def wait_for_checkpoints(experiment, count, timeout=60):
    """Wait until the trials hold ``count`` checkpoints in all (they are mid-run then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = 0
        if os.path.isdir(experiment):
            for trial_dir in os.listdir(experiment):
                path = os.path.join(experiment, trial_dir)
                if os.path.isdir(path):
                    found += sum(n.startswith("checkpoint_") for n in os.listdir(path))
        if found >= count:
            return
        time.sleep(0.1)
    raise TimeoutError(f"no {count} checkpoints in {experiment} after {timeout} s")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--first-run":
        first_run(sys.argv[2])
        sys.exit(0)

    storage = tempfile.mkdtemp(prefix="skate-tune-example-")
    experiment = os.path.join(storage, "interrupted")
    child = subprocess.Popen([sys.executable, __file__, "--first-run", storage])
    wait_for_checkpoints(experiment, count=STEPS + 3)  # two trials well past half-way
    child.send_signal(signal.SIGINT)
    child.wait(timeout=60)
    print(f"first driver interrupted (exit code {child.returncode})")
    with open(os.path.join(experiment, "experiment_state.json")) as f:
        state = json.load(f)
    for trial in state["trials"]:
        print(f"  {trial['trial_id']}: {trial['status']:<10} "
              f"iteration {trial['last_result'].get('training_iteration', 0)}")

    skate.init(num_cpus=2)
    assert tune.Tuner.can_restore(experiment)
    results = tune.Tuner.restore(experiment, trainable=slow_counter).fit()
    print("after Tuner.restore(...).fit():")
    for result in sorted(results, key=lambda r: r.config["scale"]):
        m = result.metrics
        print(f"  scale={result.config['scale']}: iterations={m['training_iteration']} "
              f"count={m['count']} (this run resumed it at count {m['resumed_at']})")
        assert m["training_iteration"] == STEPS and m["count"] == STEPS * result.config["scale"]
    print(f"best: scale={results.get_best_result().config['scale']}, errors={results.num_errors}")
    skate.shutdown()

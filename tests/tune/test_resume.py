"""Resume after the driver is killed (kill -9) or interrupted (Ctrl-C): nothing lost.

The experiment runs in a separate driver process, which the test kills; the
test process then resumes it (``tune.run(resume=True)`` / ``Tuner.restore``).
"""

import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from skate import tune

pytestmark = pytest.mark.skate_only

TRAINABLE = '''
import fcntl, json, os, time
from skate import tune

def trainable(config):
    step = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as d:
            step = json.load(open(os.path.join(d, "s.json")))["step"]
    # The Ctrl-C test holds trials x >= 3 while it keeps an exclusive lock on a "hold" file in
    # the storage folder, so they are still running when it interrupts the driver.
    hold = os.path.join(os.path.dirname(os.path.dirname(tune.get_context().get_trial_dir())),
                        "hold")
    if config["x"] >= 3 and os.path.exists(hold):
        with open(hold) as f:
            fcntl.flock(f, fcntl.LOCK_SH)  # blocks until the test lets go
    while step < 8:
        step += 1
        time.sleep(0.12)
        d = os.path.join(tune.get_context().get_trial_dir(), "tmp")
        os.makedirs(d, exist_ok=True)
        json.dump({"step": step}, open(os.path.join(d, "s.json"), "w"))
        tune.report({"score": config["x"] * step}, checkpoint=tune.Checkpoint.from_directory(d))
'''

DRIVER = TRAINABLE + '''
import sys
import skate
skate.init(num_cpus=2)
space = {"x": tune.grid_search([1, 2, 3, 4, 5, 6])}
if sys.argv[2] == "run":
    tune.run(trainable, config=space, name="exp", storage_path=sys.argv[1], metric="score",
             mode="max", verbose=0)
else:
    tune.Tuner(trainable, param_space=space,
               tune_config=tune.TuneConfig(metric="score", mode="max"),
               run_config=tune.RunConfig(name="exp", storage_path=sys.argv[1], verbose=0)).fit()
print("driver finished")
'''

namespace: dict = {"__name__": "resume_trainable"}  # not importable: pickled by value
exec(compile(TRAINABLE, "<trainable>", "exec"), namespace)
trainable = namespace["trainable"]


def _journal_lines(exp):
    path = os.path.join(exp, "trial-journal.jsonl")
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return sum(1 for line in f if line.strip())


def _result_counts(exp):
    counts = {}
    for name in os.listdir(exp):
        path = os.path.join(exp, name, "result.json")
        if os.path.exists(path):
            with open(path) as f:
                counts[name] = [json.loads(line)["training_iteration"] for line in f
                                if line.strip()]
    return counts


def _run_driver_until(tmp_path, mode, finished_trials, sig):
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(DRIVER))
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    exp = str(tmp_path / "exp")
    descendants = []
    try:
        deadline = time.monotonic() + 90
        while _journal_lines(exp) < finished_trials:
            assert proc.poll() is None, f"driver exited early:\n{proc.stdout.read()}"
            assert time.monotonic() < deadline, "no trial finished in time"
            try:
                descendants = psutil.Process(proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
            time.sleep(0.05)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
        return exp, proc.returncode, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        # What the killed driver started must go away on its own (the node's processes
        # watch their parent); kill any straggler so the test leaves nothing behind.
        gone, alive = psutil.wait_procs(descendants, timeout=20)
        for p in alive:
            p.kill()
        assert not alive, f"processes outlived their killed driver: {alive}"


@pytest.mark.parametrize("mode", ["run", "tuner"])
def test_resume_after_kill_9_finishes_and_loses_nothing(start_regular, tmp_path, mode):
    exp, rc, _ = _run_driver_until(tmp_path, mode, finished_trials=2, sig=signal.SIGKILL)
    assert rc == -signal.SIGKILL
    before = _result_counts(exp)
    finished_before = {n: its for n, its in before.items() if its and its[-1] == 8}
    assert len(finished_before) >= 2

    if mode == "run":
        analysis = tune.run(trainable, config={"x": tune.grid_search([1, 2, 3, 4, 5, 6])},
                            name="exp", storage_path=str(tmp_path), metric="score",
                            mode="max", resume=True, verbose=0)
        trials = analysis.trials
        assert analysis.best_config == {"x": 6}
    else:
        assert len(tune.Tuner.restore(exp, trainable).get_results()) == 6  # as it stands
        grid = tune.Tuner.restore(exp, trainable).fit()
        assert grid.num_errors == 0 and grid.get_best_result().config == {"x": 6}
        trials = [r for r in grid]
    assert len(trials) == 6
    after = _result_counts(exp)
    assert len(after) == 6
    for name, iterations in after.items():
        assert sorted(set(iterations)) == list(range(1, 9)), (name, iterations)
        assert iterations[-1] == 8
    for name, iterations in finished_before.items():
        assert after[name] == iterations, f"{name} ran again after resume"


def test_ctrl_c_stops_cleanly_and_leaves_a_resumable_experiment(start_regular, tmp_path):
    hold = open(tmp_path / "hold", "w")
    try:
        fcntl.flock(hold, fcntl.LOCK_EX)  # trials x >= 3 wait: surely running at the Ctrl-C
        exp, rc, out = _run_driver_until(tmp_path, "run", finished_trials=2, sig=signal.SIGINT)
    finally:
        hold.close()  # lets go of the lock
    os.unlink(tmp_path / "hold")
    assert rc == 0, out
    assert "interrupted" in out.lower()
    with open(os.path.join(exp, "experiment_state.json")) as f:
        statuses = [t["status"] for t in json.load(f)["trials"]]
    assert statuses[:2] == ["TERMINATED"] * 2 and "RUNNING" not in statuses
    assert any(s == "PENDING" for s in statuses)
    analysis = tune.run(trainable, config={"x": tune.grid_search([1, 2, 3, 4, 5, 6])},
                        name="exp", storage_path=str(tmp_path), metric="score", mode="max",
                        resume=True, verbose=0)
    assert [t.status for t in analysis.trials] == ["TERMINATED"] * 6
    assert all(t.last_result["training_iteration"] == 8 for t in analysis.trials)


def test_resume_without_state_is_a_clear_error(start_regular, tmp_path):
    with pytest.raises(ValueError, match="holds no experiment state"):
        tune.run(trainable, name="missing", storage_path=str(tmp_path), resume=True, verbose=0)
    with pytest.raises(ValueError, match="not a Tuner experiment folder"):
        tune.Tuner.restore(str(tmp_path / "missing"), trainable)


def test_resume_modes_decide_what_runs_again():
    from skate.tune.trial import Trial
    from skate.tune.tune import _prepare_for_resume

    def trials():
        out = []
        for status in ("RUNNING", "PAUSED", "TERMINATED", "ERROR"):
            t = Trial(status, {})
            t.status = status
            t.checkpoints = [(f"/ck-{status}", {})]
            out.append(t)
        return out

    ts = trials()
    _prepare_for_resume(ts, "AUTO")
    assert [(t.status, t.restore_path) for t in ts] == [
        ("PENDING", "/ck-RUNNING"), ("PENDING", "/ck-PAUSED"), ("TERMINATED", None),
        ("ERROR", None)]
    ts = trials()
    _prepare_for_resume(ts, "AUTO+RESTART_ERRORED", unfinished=False)
    assert [(t.status, t.restore_path) for t in ts] == [
        ("TERMINATED", None), ("TERMINATED", None), ("TERMINATED", None), ("PENDING", None)]
    ts = trials()
    _prepare_for_resume(ts, "AUTO+ERRORED")
    assert (ts[3].status, ts[3].restore_path) == ("PENDING", "/ck-ERROR")

"""Short runs of the chaos suite's serve, tune, rllib, sgd and head scenarios
(benchmarks/chaos/): each script checks its own figures and exits 1 on a failed check
(slow stage)."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = [pytest.mark.skate_only, pytest.mark.slow]


def _run(script, *args, timeout=600):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "chaos", script),
                           *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    report = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    return report


def test_serve_keeps_answering_while_replicas_die_and_a_version_rolls_out():
    r = _run("serve_kills.py", "--seconds", "20", "--kill-every", "5")
    assert r["kills"] >= 2 and r["failures_elsewhere"] == 0
    assert r["new_version_share_last_5s"] == 1.0


def test_tune_finishes_with_whole_histories_after_driver_kills():
    r = _run("tune_driver_kills.py", "--kill-every", "10", "--trials", "2", "--iterations",
             "60", "--step-s", "0.25")
    assert r["chaos"]["kills"] >= 1 and r["chaos"]["failures"] == []


def test_ppo_solves_cartpole_while_runners_die():
    pytest.importorskip("gymnasium")
    r = _run("rllib_runner_kills.py", "--kill-every", "3", "--target", "400", "--deadline",
             "150", "--skip-quiet")
    assert r["chaos"]["solved"] and r["chaos"]["kills"] >= 1


def test_training_resumes_after_a_worker_kill_on_the_same_loss_curve():
    pytest.importorskip("torch")
    r = _run("sgd_worker_kill.py", "--epochs", "6", "--kill-epoch", "3")
    assert r["killed"]["resumed_from"] == 3 and r["killed"]["losses"] == r["quiet"]["losses"]


def test_a_restarted_control_store_loses_none_of_the_running_work():
    r = _run("head_restart.py", "--tasks", "6000", "--calls", "1000", "--kills", "1",
             "--port", "6396")
    assert r["kills"] == 1 and r["ok"]
    assert all(r["chaos"][k] for k in ("tasks_ok", "detached_calls_ok", "own_calls_ok"))

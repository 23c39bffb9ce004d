"""Every example runs to completion (each in its own process, as a user would run it)."""

import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = sorted(
    os.path.relpath(p, ROOT)
    for p in glob.glob(os.path.join(ROOT, "examples", "**", "*.py"), recursive=True)
)

pytestmark = pytest.mark.skate_only

# Examples whose behaviour the library's own tests already cover end to end, and that
# take 6-25 s each: they run in the slow stage, keeping the default one near 15 min.
SLOW = {"examples/sgd/resume_after_failure.py", "examples/sgd/tune_asha.py",
        # DQN's and SAC's learning runs: tests/rllib/test_dqn.py and test_sac.py learn too
        "examples/rllib/dqn_cartpole.py", "examples/rllib/sac_pendulum.py",
        # tests/tune (ASHA, Tuner.restore), tests/sgd (the CNN), tests/rllib (two learners)
        "examples/tune/asha_torch.py", "examples/tune/tuner_restore.py",
        "examples/sgd/cnn.py", "examples/rllib/two_learners.py"}


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.slow) if p in SLOW else p
                                  for p in EXAMPLES])
def test_example_runs(path):
    proc = subprocess.run([sys.executable, path], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"{path} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert proc.stdout.strip(), f"{path} printed nothing"

"""A driver the dashboard started for a submitted job: init() takes the submission's id and
runtime_env from the environment (SKATE_JOB_SUBMISSION_ID, RAY_JOB_CONFIG_JSON_ENV_VAR)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skate_only

DRIVER = textwrap.dedent("""
    import json, os, skate
    from skate.util.state import list_jobs
    skate.init(num_cpus=1)
    @skate.remote
    def env():
        return os.environ.get("JOBVAR")
    print(json.dumps({"task_env": skate.get(env.remote()),
                      "config": [j.config for j in list_jobs()][0]}))
    skate.shutdown()
""")


def _run(**env):
    proc = subprocess.run([sys.executable, "-c", DRIVER], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **env})
    return proc


def test_the_submission_reaches_the_job_and_its_tasks():
    proc = _run(SKATE_JOB_SUBMISSION_ID="raysubmit_7",
                RAY_JOB_CONFIG_JSON_ENV_VAR=json.dumps(
                    {"runtime_env": {"env_vars": {"JOBVAR": "from-submission"}}}))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["task_env"] == "from-submission"
    assert out["config"]["metadata"] == {"job_submission_id": "raysubmit_7"}


def test_a_malformed_job_config_is_a_clear_error():
    proc = _run(RAY_JOB_CONFIG_JSON_ENV_VAR="{not json")
    assert proc.returncode != 0 and "RAY_JOB_CONFIG_JSON_ENV_VAR must be a JSON object" in \
        proc.stderr

"""A job submission's JSON body (Ray's ``POST /api/jobs/`` fields), checked into a JobSpec.

Every fault is an ``InvalidRequest`` whose message names the field and what
it should be; the HTTP layer answers it with 400.

>>> spec = parse_submission({"entrypoint": "python x.py", "submission_id": "train-1",
...                          "runtime_env": {"env_vars": {"LR": "0.1"}}})
>>> spec.submission_id, spec.env_vars
('train-1', {'LR': '0.1'})
>>> parse_submission({"entrypoint": ""})
Traceback (most recent call last):
...
skate.dashboard.jobs.lifecycle.InvalidRequest: 'entrypoint' must be a non-empty shell command ...
"""

from __future__ import annotations

import os
import re
import secrets

from skate.dashboard.jobs.lifecycle import InvalidRequest, JobSpec

FIELDS = ("entrypoint", "submission_id", "job_id", "runtime_env", "metadata",
          "entrypoint_num_cpus", "entrypoint_num_gpus", "entrypoint_memory",
          "entrypoint_resources")
#: what a job's runtime_env may hold here: env_vars reach the entrypoint's process,
#: working_dir is where it runs (a directory on the head; nothing is uploaded)
RUNTIME_ENV_KEYS = ("env_vars", "working_dir")
#: ids become file names (job-driver-<id>.log): letters, digits and ._- only
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def new_submission_id() -> str:
    """A fresh id, in the shape of Ray's (``raysubmit_<16 letters and digits>``)."""
    return "skatesubmit_" + secrets.token_hex(8)


def parse_submission(body) -> JobSpec:
    """The JobSpec of a submission body, or InvalidRequest saying what is wrong."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object such as "
                             '{"entrypoint": "python script.py"}.')
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise InvalidRequest(f"Unknown field(s) {', '.join(map(repr, unknown))}; a submission "
                             f"takes {', '.join(FIELDS)}.")
    entrypoint = body.get("entrypoint")
    if not isinstance(entrypoint, str) or not entrypoint.strip():
        raise InvalidRequest("'entrypoint' must be a non-empty shell command string, e.g. "
                             '"python script.py".')
    sid = body.get("submission_id") or body.get("job_id")  # job_id: Ray's older name
    if sid is None:
        sid = new_submission_id()
    elif not isinstance(sid, str) or not ID_PATTERN.fullmatch(sid):
        raise InvalidRequest(f"'submission_id' must be 1-128 letters, digits, '.', '_' or '-' "
                             f"(starting with a letter or digit); got {sid!r}.")
    runtime_env = _runtime_env(body.get("runtime_env"))
    env = runtime_env or {}
    return JobSpec(
        submission_id=sid, entrypoint=entrypoint, env_vars=dict(env.get("env_vars") or {}),
        working_dir=env.get("working_dir"), runtime_env=runtime_env,
        metadata=_str_dict(body.get("metadata"), "metadata"),
        entrypoint_num_cpus=_amount(body.get("entrypoint_num_cpus"), "entrypoint_num_cpus"),
        entrypoint_num_gpus=_amount(body.get("entrypoint_num_gpus"), "entrypoint_num_gpus"),
        entrypoint_memory=_memory(body.get("entrypoint_memory")),
        entrypoint_resources=_resources(body.get("entrypoint_resources")))


def _runtime_env(value) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest("'runtime_env' must be a JSON object, e.g. "
                             '{"env_vars": {"KEY": "value"}, "working_dir": "/path"}.')
    unsupported = sorted(set(value) - set(RUNTIME_ENV_KEYS))
    if unsupported:
        raise InvalidRequest(f"runtime_env field(s) {', '.join(map(repr, unsupported))} are not "
                             f"supported here: a job's runtime_env holds env_vars and "
                             f"working_dir (install packages on the cluster's machines).")
    _str_dict(value.get("env_vars"), "runtime_env['env_vars']")
    wd = value.get("working_dir")
    if wd is not None:
        if not isinstance(wd, str) or "://" in wd:
            raise InvalidRequest(f"runtime_env['working_dir'] must be a directory path on the "
                                 f"head (remote URIs are not supported); got {wd!r}.")
        if not os.path.isabs(wd) or not os.path.isdir(wd):
            raise InvalidRequest(f"runtime_env['working_dir'] {wd!r} is not an absolute path "
                                 f"of a directory on the head.")
    return dict(value)


def _str_dict(value, name: str) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in value.items()):
        raise InvalidRequest(f"{name} must be a JSON object of strings to strings; got "
                             f"{value!r:.200}.")
    return dict(value)


def _amount(value, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise InvalidRequest(f"{name} must be a number >= 0; got {value!r}.")
    return float(value)


def _memory(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequest(f"entrypoint_memory must be a whole number of bytes >= 0; got "
                             f"{value!r}.")
    return value


def _resources(value) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest(f"entrypoint_resources must be a JSON object of name -> amount; "
                             f"got {value!r:.200}.")
    return {str(k): _amount(v, f"entrypoint_resources[{k!r}]") for k, v in value.items()}

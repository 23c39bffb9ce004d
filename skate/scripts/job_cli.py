"""``skate job``: submit programs to the cluster and manage them (Ray's ``ray job``).

    skate job submit [--address URL] [--submission-id ID] [--runtime-env-json JSON]
                     [--working-dir DIR] [--no-wait] -- python script.py ...
    skate job status ID      skate job logs ID [--follow]
    skate job stop ID        skate job delete ID        skate job list

The dashboard to talk to: ``--address``, else the one of the head this
machine started (``skate start --head``), else ``SKATE_ADDRESS`` /
``RAY_ADDRESS`` when it is an http URL. The token: ``SKATE_TOKEN``, else the
head's session directory. ``submit`` waits for the job and streams its
output (exit status 0 only if it SUCCEEDED) unless ``--no-wait``. A user
mistake prints one line and exits 1 (2 for malformed arguments).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

ACTIONS = ("submit", "status", "logs", "stop", "delete", "list")


def add_parser(sub) -> None:
    job = sub.add_parser("job", help="submit and manage jobs (the dashboard's jobs API)")
    actions = job.add_subparsers(dest="job_action", metavar="|".join(ACTIONS))
    s = actions.add_parser("submit", help="run a command on the head as a job")
    s.add_argument("--submission-id", default=None, help="the job's id (default: a new one)")
    s.add_argument("--runtime-env-json", default=None,
                   help='the job\'s runtime_env as JSON, e.g. \'{"env_vars": {"K": "v"}}\'')
    s.add_argument("--working-dir", default=None,
                   help="directory (on the head) the job runs in; relative to here")
    s.add_argument("--metadata-json", default=None, help="metadata as a JSON object")
    s.add_argument("--entrypoint-num-cpus", type=float, default=None)
    s.add_argument("--no-wait", action="store_true", help="return once the job is submitted")
    s.add_argument("entrypoint", nargs=argparse.REMAINDER,
                   help="the command, after --: skate job submit -- python script.py")
    for name, text in (("status", "a job's status"), ("stop", "stop a job"),
                       ("delete", "forget an ended job and its logs")):
        a = actions.add_parser(name, help=text)
        a.add_argument("job_id")
    lg = actions.add_parser("logs", help="a job's output")
    lg.add_argument("job_id")
    lg.add_argument("--follow", "-f", action="store_true", help="stream it until the job ends")
    actions.add_parser("list", help="every job")
    for a in actions.choices.values():
        a.add_argument("--address", default=None, help="the dashboard, e.g. http://HOST:8265")


def run(args) -> int:
    """Run one ``skate job`` action; its exit status."""
    from skate.job_submission import JobRequestError

    if args.job_action is None:
        print(f"Give an action: skate job {'|'.join(ACTIONS)} (see --help).", file=sys.stderr)
        return 2
    try:
        client = _client(args.address)
        return _ACTIONS[args.job_action](client, args)
    except _UsageError as e:
        print(e, file=sys.stderr)
        return 2
    except (ConnectionError, JobRequestError) as e:
        print(e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted; the job goes on (skate job stop ID stops it).", file=sys.stderr)
        return 130


class _UsageError(Exception):
    pass


def _client(address: str | None):
    from skate.core.node import read_current, read_token
    from skate.job_submission import JobSubmissionClient
    from skate.job_submission.client import default_address

    head = read_current()
    local = head.get("dashboard_url") if head else None
    if address is None:
        address = local
    if address is None:
        address = default_address()
        if address == "http://127.0.0.1:8265" and not any(
                os.environ.get(v, "").startswith("http") for v in ("SKATE_ADDRESS",
                                                                     "RAY_ADDRESS")):
            raise ConnectionError("No dashboard found: this machine runs no head with one "
                                  "(skate start --head), and no --address or http "
                                  "SKATE_ADDRESS was given.")
    token = os.environ.get("SKATE_TOKEN")
    if token is None and head is not None and address.rstrip("/") == (local or "").rstrip("/"):
        token = read_token(head["session_dir"])
    return JobSubmissionClient(address, token=token)


def _json_arg(raw: str | None, flag: str):
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError as e:
        raise _UsageError(f"{flag} must be JSON: {e}") from None
    if not isinstance(value, dict):
        raise _UsageError(f"{flag} must be a JSON object, e.g. '{{\"env_vars\": {{}}}}'.")
    return value


def _submit(client, args) -> int:
    entrypoint = list(args.entrypoint)
    if entrypoint[:1] == ["--"]:
        entrypoint = entrypoint[1:]
    if not entrypoint:
        raise _UsageError("Give the command after --: skate job submit -- python script.py")
    runtime_env = _json_arg(args.runtime_env_json, "--runtime-env-json") or {}
    if args.working_dir is not None:
        if not os.path.isdir(args.working_dir):
            raise _UsageError(f"--working-dir {args.working_dir!r} is not a directory.")
        runtime_env["working_dir"] = os.path.abspath(args.working_dir)
    import shlex

    command = entrypoint[0] if len(entrypoint) == 1 else shlex.join(entrypoint)
    sid = client.submit_job(entrypoint=command, submission_id=args.submission_id,
                            runtime_env=runtime_env or None,
                            metadata=_json_arg(args.metadata_json, "--metadata-json"),
                            entrypoint_num_cpus=args.entrypoint_num_cpus)
    print(f"Job '{sid}' submitted.")
    if args.no_wait:
        print(f"  Status: skate job status {sid}\n  Logs:   skate job logs {sid} --follow\n"
              f"  Stop:   skate job stop {sid}")
        return 0
    _follow(client, sid)
    info = client.get_job_info(sid)
    while not info.status.is_terminal():  # the stream ends as the job does; a moment more
        time.sleep(0.1)
        info = client.get_job_info(sid)
    print(f"Job '{sid}' {info.status.value}: {info.message}")
    return 0 if info.status.value == "SUCCEEDED" else 1


def _follow(client, sid: str) -> None:
    async def tail():
        async for text in client.tail_job_logs(sid):
            sys.stdout.write(text)
            sys.stdout.flush()

    asyncio.run(tail())


def _status(client, args) -> int:
    info = client.get_job_info(args.job_id)
    code = "" if info.driver_exit_code is None else f" (exit code {info.driver_exit_code})"
    print(f"Job '{args.job_id}': {info.status.value}{code}")
    if info.message:
        print(f"  {info.message}")
    return 0


def _logs(client, args) -> int:
    if args.follow:
        _follow(client, args.job_id)
    else:
        sys.stdout.write(client.get_job_logs(args.job_id))
    return 0


def _stop(client, args) -> int:
    if client.stop_job(args.job_id):
        print(f"Stopping job '{args.job_id}' (SIGTERM, then SIGKILL after a grace period).")
    else:
        print(f"Job '{args.job_id}' had already ended.")
    return 0


def _delete(client, args) -> int:
    client.delete_job(args.job_id)
    print(f"Deleted job '{args.job_id}' and its logs.")
    return 0


def _list(client, args) -> int:
    jobs = client.list_jobs()
    rows = [("ID", "TYPE", "STATUS", "STARTED", "ENTRYPOINT")]
    for j in jobs:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(j.start_time / 1000)) \
            if j.start_time else "-"
        rows.append((j.submission_id or j.job_id or "-", j.type.value, j.status.value, started,
                     (j.entrypoint or "-")[:60]))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[4])
    return 0


_ACTIONS = {"submit": _submit, "status": _status, "logs": _logs, "stop": _stop,
            "delete": _delete, "list": _list}

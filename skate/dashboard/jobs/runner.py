"""The jobs' I/O shell: starts entrypoints as processes, watches them, carries out stops.

Decisions are ``lifecycle.JobLifecycle``'s; this module feeds it events and
executes its commands. One thread (``skate-job-supervisor``) owns every job
process: it starts them, polls them for exits every 0.1 s and ticks the stop
deadlines. HTTP handlers call ``submit`` / ``stop`` / ``delete`` from other
threads; those only feed the machine under the lock and queue the commands,
so a request never waits for a process to start.

Why one owner thread: each entrypoint is started through a small exec
wrapper that sets ``PR_SET_PDEATHSIG`` (SIGKILL), so a job's process dies
with the dashboard even after ``kill -9``; the kernel sends that signal when
the *thread* that forked the child exits, so the forking thread must live as
long as the process (a thread pool's idle threads do not). The wrapper, not
``preexec_fn``, sets it: ``preexec_fn`` is unsafe in a threaded parent.

Each job runs in a session of its own (its process group), so a stop reaches
the shell and whatever it started; stdout and stderr go to
``<session_dir>/logs/job-driver-<submission_id>.log``.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time

from skate.dashboard.jobs import lifecycle as lc
from skate.dashboard.jobs.request import parse_submission
from skate.dashboard.jobs.store import JobStore
from skate.job_submission.models import JobDetails

log = logging.getLogger(__name__)

POLL_S = 0.1
_SIGNALS = {"TERM": signal.SIGTERM, "KILL": signal.SIGKILL}
# Sets PR_SET_PDEATHSIG (1) to SIGKILL, exits if the parent is already gone, then becomes
# the shell that runs the entrypoint. -I -S: only the standard library, started fast.
_EXEC_WRAPPER = (
    "import ctypes,os,signal,sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)\n"
    "os.getppid() == int(sys.argv[1]) or os._exit(1)\n"
    "os.execv('/bin/sh', ['/bin/sh', '-c', sys.argv[2]])\n")


class JobRunner:
    """Runs the submitted jobs of one cluster; thread-safe."""

    def __init__(self, session_dir: str, cluster_address: str, token: str | None,
                 settings: lc.Settings | None = None, clock=time.time):
        self.session_dir = session_dir
        self.logs_dir = os.path.join(session_dir, "logs")
        self.cluster_address = cluster_address  # what SKATE_ADDRESS tells the drivers
        self.token = token
        self.clock = clock
        self.machine = lc.JobLifecycle(settings)
        self.store = JobStore(os.path.join(session_dir, "jobs.json"))
        self._lock = threading.Lock()  # guards machine, _pending, _procs
        self._wake = threading.Condition(self._lock)
        self._pending: collections.deque = collections.deque()  # Spawn commands to run
        self._procs: dict[str, subprocess.Popen] = {}  # live job processes, by submission id
        self._closing = False
        self._thread: threading.Thread | None = None

    # -- the API the HTTP layer calls ---------------------------------------------------
    def start(self) -> None:
        """Load the records a previous dashboard saved, then start the supervisor thread."""
        os.makedirs(self.logs_dir, exist_ok=True)
        with self._lock:
            self._apply(lc.Recover(tuple(self.store.load()), self.clock()))
        self._thread = threading.Thread(target=self._loop, name="skate-job-supervisor",
                                        daemon=True)
        self._thread.start()

    def submit(self, body) -> str:
        """Start a job from a submission body; its submission id (InvalidRequest if bad)."""
        spec = parse_submission(body)
        with self._lock:
            self._apply(lc.Submit(spec, self.clock()))
        return spec.submission_id

    def stop(self, submission_id: str) -> bool:
        """Ask a job to stop; False if it had already ended (UnknownJob if there is none)."""
        with self._lock:
            self._apply(lc.StopRequested(submission_id, self.clock()))
            return self.machine.jobs[submission_id].status in lc.LIVE

    def delete(self, submission_id: str) -> bool:
        """Forget an ended job and remove its log (InvalidRequest if it is still live)."""
        with self._lock:
            self._apply(lc.DeleteRequested(submission_id))
        return True

    def get(self, submission_id: str) -> JobDetails:
        with self._lock:
            return self.machine.details(submission_id)

    def list(self) -> list[JobDetails]:
        with self._lock:
            return [self.machine.details(sid) for sid in self.machine.jobs]

    def log_path(self, submission_id: str) -> str:
        """The job's log file (UnknownJob if there is no such job)."""
        self.get(submission_id)
        return os.path.join(self.logs_dir, f"job-driver-{submission_id}.log")

    def close(self, timeout: float | None = None) -> None:
        """Stop every live job (TERM, KILL after the grace period) and wait for them."""
        with self._lock:
            for sid in self.machine.live():
                self._apply(lc.StopRequested(sid, self.clock()))
            self._closing = True
            self._wake.notify()
        limit = timeout if timeout is not None else self.machine.settings.stop_grace_s + 2
        if self._thread is not None:
            self._thread.join(limit)

    # -- the machine and its commands (called with the lock held) ----------------------
    def _apply(self, event) -> None:
        for cmd in self.machine.handle(event):
            if isinstance(cmd, lc.Spawn):
                self._pending.append(cmd)
                self._wake.notify()
            elif isinstance(cmd, lc.Signal):
                _signal_group(cmd.pid, _SIGNALS[cmd.signal])
            elif isinstance(cmd, lc.RemoveLog):
                try:
                    os.unlink(os.path.join(self.logs_dir, f"job-driver-{cmd.submission_id}.log"))
                except FileNotFoundError:
                    pass
            elif isinstance(cmd, lc.Persist):
                self.store.save(self.machine.records())
        self.machine.validate()

    # -- the supervisor thread ----------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._wake.wait(POLL_S)
                spawns = list(self._pending)
                self._pending.clear()
            for cmd in spawns:  # outside the lock: starting a process takes milliseconds
                self._spawn(cmd)
            with self._lock:
                for sid, proc in list(self._procs.items()):
                    code = proc.poll()
                    if code is not None:
                        del self._procs[sid]
                        self._apply(lc.Exited(sid, code, self.clock()))
                self._apply(lc.Tick(self.clock()))
                if self._closing and not self._procs and not self._pending:
                    return

    def _spawn(self, cmd: lc.Spawn) -> None:
        spec = cmd.spec
        path = os.path.join(self.logs_dir, f"job-driver-{spec.submission_id}.log")
        env = dict(os.environ, PYTHONUNBUFFERED="1", SKATE_ADDRESS=self.cluster_address,
                   SKATE_JOB_SUBMISSION_ID=spec.submission_id, **spec.env_vars)
        env.pop("RAY_ADDRESS", None)  # SKATE_ADDRESS is the one this job joins
        # "python" in an entrypoint is the interpreter the cluster runs on, as in a shell
        # where its virtualenv is active
        env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
        if self.token:
            env["SKATE_TOKEN"] = self.token
        # Ray's variable for the job's runtime_env, which skate.init() in the driver applies;
        # without working_dir, applied here already (the cwd), which init() would refuse
        rest = {k: v for k, v in (spec.runtime_env or {}).items() if k != "working_dir"}
        if rest:
            env["RAY_JOB_CONFIG_JSON_ENV_VAR"] = json.dumps({"runtime_env": rest})
        try:
            with open(path, "ab") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", _EXEC_WRAPPER, str(os.getpid()),
                     spec.entrypoint],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                    cwd=spec.working_dir or self.session_dir, start_new_session=True)
        except OSError as e:
            with self._lock:
                self._apply(lc.SpawnFailed(spec.submission_id, str(e), self.clock()))
            return
        with self._lock:
            self._procs[spec.submission_id] = proc
            self._apply(lc.Spawned(spec.submission_id, proc.pid, self.clock()))


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the job leads its own session: pgid == pid
    except ProcessLookupError:
        pass  # it already exited; its exit is reported by the poll
    except PermissionError:
        log.warning("could not signal job process group %d", pid)

"""A submitted job's life, as a pure state machine: events in, commands out.

Design. The dashboard runs each submitted job's entrypoint as a process on the
head. What to do and when is decided here; the I/O shell (``runner.py``)
starts and signals processes, watches them exit, reads the clock and saves
the records, telling this machine what happened (an *event*) and carrying out
what comes back (*commands*), in order::

    Submit ----------> PENDING --Spawned--> RUNNING --Exited(0)------> SUCCEEDED
                          |                    |    --Exited(other)--> FAILED
                          +--SpawnFailed-------+-----------------------> FAILED
    StopRequested: a live job is marked; RUNNING gets Signal(TERM) at once and
    Signal(KILL) on the first Tick past ``stop_grace_s``; its exit makes it STOPPED.

Rules, each one line so the tests can name them:

* a job whose stop was requested ends STOPPED, whatever happens after (its
  exit code is still recorded);
* a stop that arrives while the process is being started is carried out when
  ``Spawned`` comes (Signal(TERM) then), so no process escapes a stop;
* KILL is sent at most once, and only after TERM and the grace period;
* only an ended job can be deleted (its log goes with it);
* records loaded from a previous dashboard (``Recover``) whose job was still
  live become FAILED: their supervisor is gone, and with it their process
  (drivers die with the dashboard that started them).

Requests that cannot be honoured raise ``UnknownJob`` (no such id) or
``InvalidRequest`` (a duplicate id, deleting a live job); the HTTP layer turns
those into 404 and 400. No clocks, processes or files here: ``now`` arrives
with each event, so every path is unit-tested by feeding events
(tests/dashboard/test_lifecycle.py), and ``validate()`` checks the invariants
after each one.

>>> m = JobLifecycle()
>>> m.handle(Submit(JobSpec("j1", "python x.py"), now=10.0))
[Spawn(spec=JobSpec(submission_id='j1', entrypoint='python x.py', ...)), Persist()]
>>> m.handle(Spawned("j1", pid=4242, now=10.1)); m.jobs["j1"].status
[Persist()]
<JobStatus.RUNNING: 'RUNNING'>
>>> m.handle(Exited("j1", exit_code=0, now=12.0)); m.jobs["j1"].status.value
[Persist()]
'SUCCEEDED'
"""

from __future__ import annotations

from dataclasses import dataclass, field

from skate.job_submission.models import JobDetails, JobStatus, JobType

PENDING, RUNNING, STOPPED, SUCCEEDED, FAILED = (
    JobStatus.PENDING, JobStatus.RUNNING, JobStatus.STOPPED, JobStatus.SUCCEEDED,
    JobStatus.FAILED)
LIVE = frozenset({PENDING, RUNNING})


class UnknownJob(KeyError):
    """No job has this submission id."""

    def __str__(self) -> str:
        return f"No job with submission_id {self.args[0]!r}."


class InvalidRequest(ValueError):
    """A request this job's state does not allow (the message says why and what to do)."""


# -- what a job is asked to run -----------------------------------------------------------
@dataclass(frozen=True)
class JobSpec:
    """A validated submission (``request.py`` builds it from the HTTP body)."""

    submission_id: str
    entrypoint: str  #: a shell command
    env_vars: dict = field(default_factory=dict)  #: runtime_env["env_vars"]
    working_dir: str | None = None  #: runtime_env["working_dir"]: a directory on the head
    runtime_env: dict | None = None  #: as submitted, for the record
    metadata: dict | None = None
    entrypoint_num_cpus: float | None = None
    entrypoint_num_gpus: float | None = None
    entrypoint_memory: int | None = None
    entrypoint_resources: dict | None = None


# -- events -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Submit:
    spec: JobSpec
    now: float


@dataclass(frozen=True)
class Spawned:
    submission_id: str
    pid: int
    now: float


@dataclass(frozen=True)
class SpawnFailed:
    submission_id: str
    error: str
    now: float


@dataclass(frozen=True)
class Exited:
    submission_id: str
    exit_code: int  #: -N when killed by signal N (as Popen.returncode)
    now: float


@dataclass(frozen=True)
class StopRequested:
    submission_id: str
    now: float


@dataclass(frozen=True)
class DeleteRequested:
    submission_id: str


@dataclass(frozen=True)
class Tick:
    now: float


@dataclass(frozen=True)
class Recover:
    records: tuple  #: JobDetails dicts saved by an earlier dashboard
    now: float


# -- commands -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Spawn:
    """Start the entrypoint's process; answer Spawned or SpawnFailed."""

    spec: JobSpec


@dataclass(frozen=True)
class Signal:
    """Send ``signal`` ("TERM" or "KILL") to the job's process group."""

    submission_id: str
    pid: int
    signal: str


@dataclass(frozen=True)
class RemoveLog:
    submission_id: str


@dataclass(frozen=True)
class Persist:
    """Save ``records()``: a record changed."""


# -- the machine ----------------------------------------------------------------------------
@dataclass
class Job:
    """One job's mutable record; invariants in ``JobLifecycle.validate``."""

    spec: JobSpec
    status: JobStatus
    start_time: int  #: ms, at submission
    message: str
    end_time: int | None = None  #: set exactly when the status is terminal
    pid: int | None = None  #: set once Spawned; kept after the exit, for the record
    exit_code: int | None = None
    stop_requested: bool = False  #: a stop was asked; the job will end STOPPED
    stop_deadline: float | None = None  #: when KILL follows TERM; only while RUNNING
    kill_sent: bool = False  #: only while RUNNING, after the deadline


@dataclass(frozen=True)
class Settings:
    stop_grace_s: float = 3.0  #: TERM to KILL (Ray's RAY_JOB_STOP_WAIT_TIME_S default)
    dashboard_address: str | None = None  #: recorded as driver_agent_http_address
    node_id: str | None = None  #: the head's node id, recorded as driver_node_id


class JobLifecycle:
    """Every submitted job of this dashboard; see the module docstring for the protocol."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings()
        self.jobs: dict[str, Job] = {}  # submission id -> record, in submission order

    def handle(self, event) -> list:
        """Apply one event; the commands to carry out, in order."""
        try:
            on = _HANDLERS[type(event)]
        except KeyError:
            raise TypeError(f"not a job event: {event!r}") from None
        return on(self, event)

    def _submit(self, e: Submit) -> list:
        sid = e.spec.submission_id
        if sid in self.jobs:
            raise InvalidRequest(f"Job with submission_id {sid!r} already exists; pick "
                                 f"another id or delete the old job first.")
        self.jobs[sid] = Job(e.spec, PENDING, _ms(e.now), "Job is starting.")
        return [Spawn(e.spec), Persist()]

    def _spawned(self, e: Spawned) -> list:
        job = self._job(e.submission_id)
        if job.status is not PENDING:
            return []  # a stale report: the job already ended
        job.status, job.pid, job.message = RUNNING, e.pid, "Job is running."
        if job.stop_requested:
            return self._terminate(job, e.now) + [Persist()]
        return [Persist()]

    def _spawn_failed(self, e: SpawnFailed) -> list:
        job = self._job(e.submission_id)
        if job.status is not PENDING:
            return []
        why = f"The entrypoint could not be started: {e.error}"
        if job.stop_requested:
            self._end(job, STOPPED, f"Job was stopped. ({why})", e.now)
        else:
            self._end(job, FAILED, why, e.now)
        return [Persist()]

    def _exited(self, e: Exited) -> list:
        job = self._job(e.submission_id)
        if job.status is not RUNNING:
            return []
        job.exit_code = e.exit_code
        if job.stop_requested:
            self._end(job, STOPPED, "Job was stopped.", e.now)
        elif e.exit_code == 0:
            self._end(job, SUCCEEDED, "Job finished successfully.", e.now)
        else:
            how = f"was killed by signal {-e.exit_code}" if e.exit_code < 0 \
                else f"exited with code {e.exit_code}"
            self._end(job, FAILED, f"The entrypoint {how}; see its logs.", e.now)
        return [Persist()]

    def _stop(self, e: StopRequested) -> list:
        job = self._job(e.submission_id)
        if job.status not in LIVE or job.stop_requested:
            return []
        job.stop_requested, job.message = True, "Job is stopping."
        if job.status is RUNNING:
            return self._terminate(job, e.now) + [Persist()]
        return [Persist()]  # PENDING: TERM as soon as the process exists

    def _delete(self, e: DeleteRequested) -> list:
        job = self._job(e.submission_id)
        if job.status in LIVE:
            raise InvalidRequest(f"Job {e.submission_id!r} is {job.status.value}: only an "
                                 f"ended job can be deleted; stop it first.")
        del self.jobs[e.submission_id]
        return [RemoveLog(e.submission_id), Persist()]

    def _tick(self, e: Tick) -> list:
        out = []
        for sid, job in self.jobs.items():
            if job.stop_deadline is not None and not job.kill_sent and \
                    e.now >= job.stop_deadline:
                assert job.pid is not None  # a deadline is set only while RUNNING
                job.kill_sent = True
                out.append(Signal(sid, job.pid, "KILL"))
        return out

    def _recover(self, e: Recover) -> list:
        changed = False
        for data in e.records:
            details = JobDetails.from_dict(data)
            if details.submission_id is None or details.submission_id in self.jobs:
                continue
            job = _job_from_details(details)
            if job.status in LIVE:
                self._end(job, FAILED, f"The dashboard that ran this job exited while it was "
                                       f"{job.status.value}; its process ended with it.", e.now)
                changed = True
            self.jobs[details.submission_id] = job
        return [Persist()] if changed else []

    # -- helpers ------------------------------------------------------------------------
    def _job(self, sid: str) -> Job:
        try:
            return self.jobs[sid]
        except KeyError:
            raise UnknownJob(sid) from None

    def _terminate(self, job: Job, now: float) -> list:
        assert job.pid is not None
        job.stop_deadline = now + self.settings.stop_grace_s
        return [Signal(job.spec.submission_id, job.pid, "TERM")]

    @staticmethod
    def _end(job: Job, status: JobStatus, message: str, now: float) -> None:
        job.status, job.message, job.end_time = status, message, _ms(now)
        job.stop_deadline, job.kill_sent = None, False

    # -- reading ------------------------------------------------------------------------
    def details(self, sid: str) -> JobDetails:
        """The public record of one job (``UnknownJob`` if there is none)."""
        job = self._job(sid)
        s = job.spec
        return JobDetails(
            type=JobType.SUBMISSION, submission_id=sid, entrypoint=s.entrypoint,
            status=job.status, message=job.message, start_time=job.start_time,
            end_time=job.end_time, metadata=s.metadata, runtime_env=s.runtime_env,
            entrypoint_num_cpus=s.entrypoint_num_cpus, entrypoint_num_gpus=s.entrypoint_num_gpus,
            entrypoint_memory=s.entrypoint_memory, entrypoint_resources=s.entrypoint_resources,
            driver_agent_http_address=self.settings.dashboard_address,
            driver_node_id=self.settings.node_id, driver_exit_code=job.exit_code,
            driver_info=None if job.pid is None else {"pid": job.pid})

    def records(self) -> list[dict]:
        """Every job's record as JSON-ready dicts, in submission order (what Persist saves)."""
        return [self.details(sid).to_dict() for sid in self.jobs]

    def live(self) -> list[str]:
        """Submission ids of the jobs that have not ended."""
        return [sid for sid, j in self.jobs.items() if j.status in LIVE]

    def validate(self) -> None:
        """Assert the invariants every event must keep."""
        for sid, j in self.jobs.items():
            assert j.spec.submission_id == sid, sid
            assert (j.end_time is not None) == j.status.is_terminal(), (sid, j)
            assert (j.status is PENDING) <= (j.pid is None), (sid, j)
            assert (j.status is RUNNING) <= (j.pid is not None), (sid, j)
            assert (j.status is STOPPED) == (j.stop_requested and j.status.is_terminal()), \
                (sid, j)
            assert (j.stop_deadline is not None) <= (j.status is RUNNING and j.stop_requested), \
                (sid, j)
            assert j.kill_sent <= (j.stop_deadline is not None), (sid, j)


def _ms(now: float) -> int:
    return int(now * 1000)


def _job_from_details(d: JobDetails) -> Job:
    assert d.submission_id is not None  # checked by the caller
    env = d.runtime_env or {}
    spec = JobSpec(d.submission_id, d.entrypoint, dict(env.get("env_vars") or {}),
                   env.get("working_dir"), d.runtime_env, d.metadata, d.entrypoint_num_cpus,
                   d.entrypoint_num_gpus, d.entrypoint_memory, d.entrypoint_resources)
    pid = (d.driver_info or {}).get("pid")
    job = Job(spec, d.status, d.start_time or 0, d.message or "", d.end_time, pid,
              d.driver_exit_code, stop_requested=d.status is STOPPED)
    if job.status.is_terminal() and job.end_time is None:
        job.end_time = job.start_time  # a record saved by hand without one
    return job


_HANDLERS = {
    Submit: JobLifecycle._submit, Spawned: JobLifecycle._spawned,
    SpawnFailed: JobLifecycle._spawn_failed, Exited: JobLifecycle._exited,
    StopRequested: JobLifecycle._stop, DeleteRequested: JobLifecycle._delete,
    Tick: JobLifecycle._tick, Recover: JobLifecycle._recover,
}

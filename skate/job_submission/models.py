"""The records of the jobs API, with Ray's names (``ray.job_submission``).

A *submission* job is an entrypoint (a shell command) the dashboard runs on the
head; a *driver* job is any program that called ``skate.init()`` (the state
API's jobs). Times are milliseconds since the epoch, as in Ray.

>>> from skate.job_submission import JobDetails, JobStatus
>>> d = JobDetails(type="SUBMISSION", submission_id="s1", entrypoint="echo hi",
...                status=JobStatus.SUCCEEDED, driver_exit_code=0)
>>> d.status.is_terminal(), JobDetails.from_dict(d.to_dict()) == d
(True, True)
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass


class JobStatus(str, enum.Enum):
    """Where a job is in its life (Ray's ``JobStatus``)."""

    PENDING = "PENDING"  #: submitted; its entrypoint's process is not started yet
    RUNNING = "RUNNING"  #: its entrypoint's process runs
    STOPPED = "STOPPED"  #: stopped by a user (``stop_job``)
    SUCCEEDED = "SUCCEEDED"  #: its entrypoint exited with 0
    FAILED = "FAILED"  #: its entrypoint exited with another code, or could not start

    def __str__(self) -> str:
        return self.value

    def is_terminal(self) -> bool:
        """Whether the job has ended (and will not change again)."""
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.STOPPED, JobStatus.SUCCEEDED, JobStatus.FAILED})


class JobType(str, enum.Enum):
    """How a job came to be (Ray's ``JobType``)."""

    SUBMISSION = "SUBMISSION"  #: through the jobs API
    DRIVER = "DRIVER"  #: a program that called skate.init() itself

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, kw_only=True)
class JobInfo:
    """A submitted job (Ray's ``JobInfo``)."""

    status: JobStatus
    entrypoint: str
    message: str | None = None  #: a line on what happened, for people
    error_type: str | None = None  #: JOB_SUPERVISOR_ACTOR_START_FAILURE style, or None
    start_time: int | None = None  #: ms since the epoch, when it was submitted
    end_time: int | None = None  #: ms since the epoch, once it ended
    metadata: dict | None = None
    runtime_env: dict | None = None
    entrypoint_num_cpus: float | None = None
    entrypoint_num_gpus: float | None = None
    entrypoint_memory: int | None = None
    entrypoint_resources: dict | None = None
    driver_agent_http_address: str | None = None  #: the dashboard that runs it
    driver_node_id: str | None = None
    driver_exit_code: int | None = None  #: the entrypoint's exit code; -N: killed by signal N

    def to_dict(self) -> dict:
        """The record as JSON-ready values (the HTTP API's shape)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for k, v in out.items():
            if isinstance(v, enum.Enum):
                out[k] = v.value
        return out

    @classmethod
    def from_dict(cls, data: dict):
        """The record from the HTTP API's JSON (fields it does not know are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["status"] = JobStatus(values["status"])
        if "type" in values:
            values["type"] = JobType(values["type"])
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class JobDetails(JobInfo):
    """A job as ``list_jobs`` / ``get_job_info`` return it (Ray's ``JobDetails``): a
    submitted job, or a driver job (``type="DRIVER"``, ``submission_id`` None)."""

    type: JobType = JobType.SUBMISSION
    job_id: str | None = None  #: the driver's job id, for driver jobs
    submission_id: str | None = None
    driver_info: dict | None = None  #: {"id", "node_ip_address", "pid"} of a driver job


__all__ = ["JobDetails", "JobInfo", "JobStatus", "JobType", "TERMINAL"]

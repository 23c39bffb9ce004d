"""The job lifecycle state machine (skate/dashboard/jobs/lifecycle.py): events in, commands out,
no processes, no clocks; ``validate()`` after every event."""

import pytest

from skate.dashboard.jobs.lifecycle import (
    DeleteRequested,
    Exited,
    InvalidRequest,
    JobLifecycle,
    JobSpec,
    Persist,
    Recover,
    RemoveLog,
    Settings,
    Signal,
    Spawn,
    Spawned,
    SpawnFailed,
    StopRequested,
    Submit,
    Tick,
    UnknownJob,
)
from skate.job_submission.models import JobStatus

pytestmark = pytest.mark.skate_only


class Machine(JobLifecycle):
    """Checks the invariants after every event, as the shell does."""

    def handle(self, event):
        out = super().handle(event)
        self.validate()
        return out


def running(sid="j", pid=100, grace=3.0):
    m = Machine(Settings(stop_grace_s=grace))
    spec = JobSpec(sid, "python x.py")
    assert m.handle(Submit(spec, now=1.0)) == [Spawn(spec), Persist()]
    assert m.jobs[sid].status is JobStatus.PENDING
    assert m.handle(Spawned(sid, pid, now=1.5)) == [Persist()]
    return m


def test_success_failure_and_signal_deaths():
    m = running("ok")
    assert m.handle(Exited("ok", 0, now=4.0)) == [Persist()]
    d = m.details("ok")
    assert (d.status, d.driver_exit_code, d.start_time, d.end_time) == \
        (JobStatus.SUCCEEDED, 0, 1000, 4000)
    m = running("bad")
    m.handle(Exited("bad", 3, now=2.0))
    assert m.details("bad").status is JobStatus.FAILED
    assert "exited with code 3" in m.details("bad").message
    m = running("killed")
    m.handle(Exited("killed", -9, now=2.0))
    assert "killed by signal 9" in m.details("killed").message


def test_spawn_failure_fails_the_job():
    m = Machine()
    m.handle(Submit(JobSpec("j", "nope"), now=0.0))
    assert m.handle(SpawnFailed("j", "No such file", now=0.1)) == [Persist()]
    assert m.jobs["j"].status is JobStatus.FAILED
    assert "could not be started: No such file" in m.jobs["j"].message


def test_stop_sends_term_then_one_kill_after_the_grace_period():
    m = running(pid=77, grace=3.0)
    assert m.handle(StopRequested("j", now=10.0)) == [Signal("j", 77, "TERM"), Persist()]
    assert m.handle(StopRequested("j", now=10.5)) == []  # already stopping
    assert m.handle(Tick(now=12.9)) == []
    assert m.handle(Tick(now=13.0)) == [Signal("j", 77, "KILL")]
    assert m.handle(Tick(now=14.0)) == []  # KILL at most once
    assert m.jobs["j"].status is JobStatus.RUNNING  # until the process is seen to exit
    m.handle(Exited("j", -9, now=13.1))
    assert (m.jobs["j"].status, m.jobs["j"].exit_code) == (JobStatus.STOPPED, -9)


def test_a_stopped_job_ends_stopped_even_if_it_exits_zero():
    m = running()
    m.handle(StopRequested("j", now=2.0))
    m.handle(Exited("j", 0, now=2.1))
    assert m.jobs["j"].status is JobStatus.STOPPED and m.jobs["j"].exit_code == 0
    assert m.handle(Tick(now=100.0)) == []  # no KILL for a process that is gone


def test_stop_while_starting_is_carried_out_when_the_process_exists():
    m = Machine()
    m.handle(Submit(JobSpec("j", "sleep 9"), now=0.0))
    assert m.handle(StopRequested("j", now=0.1)) == [Persist()]
    assert m.jobs["j"].status is JobStatus.PENDING
    assert m.handle(Spawned("j", 55, now=0.2)) == [Signal("j", 55, "TERM"), Persist()]
    m.handle(Exited("j", -15, now=0.3))
    assert m.jobs["j"].status is JobStatus.STOPPED


def test_stop_while_starting_then_spawn_failure_is_stopped():
    m = Machine()
    m.handle(Submit(JobSpec("j", "x"), now=0.0))
    m.handle(StopRequested("j", now=0.1))
    m.handle(SpawnFailed("j", "boom", now=0.2))
    assert m.jobs["j"].status is JobStatus.STOPPED


def test_stopping_an_ended_job_does_nothing():
    m = running()
    m.handle(Exited("j", 0, now=2.0))
    assert m.handle(StopRequested("j", now=3.0)) == []
    assert m.jobs["j"].status is JobStatus.SUCCEEDED


def test_late_and_stale_reports_are_ignored():
    m = running()
    m.handle(Exited("j", 0, now=2.0))
    assert m.handle(Spawned("j", 1, now=3.0)) == []
    assert m.handle(Exited("j", 1, now=3.0)) == []
    assert m.handle(SpawnFailed("j", "x", now=3.0)) == []
    assert m.jobs["j"].status is JobStatus.SUCCEEDED


def test_duplicate_ids_unknown_ids_and_deleting_live_jobs_are_refused():
    m = running()
    with pytest.raises(InvalidRequest, match="already exists"):
        m.handle(Submit(JobSpec("j", "again"), now=5.0))
    with pytest.raises(UnknownJob, match="'nope'"):
        m.handle(StopRequested("nope", now=5.0))
    with pytest.raises(UnknownJob):
        m.details("nope")
    with pytest.raises(InvalidRequest, match="only an ended job can be deleted"):
        m.handle(DeleteRequested("j"))
    m.handle(Exited("j", 0, now=6.0))
    assert m.handle(DeleteRequested("j")) == [RemoveLog("j"), Persist()]
    assert m.jobs == {}
    # the id is free again
    m.handle(Submit(JobSpec("j", "again"), now=7.0))


def test_records_round_trip_and_recovery_fails_the_live_ones():
    m = running("done")
    m.handle(Exited("done", 0, now=3.0))
    m.handle(Submit(JobSpec("live", "sleep 9", metadata={"k": "v"}), now=4.0))
    m.handle(Spawned("live", 9, now=4.1))
    m.handle(Submit(JobSpec("waiting", "x"), now=4.2))
    m.handle(Submit(JobSpec("stopped", "x"), now=4.3))
    m.handle(StopRequested("stopped", now=4.4))
    m.handle(SpawnFailed("stopped", "x", now=4.5))
    records = m.records()
    again = Machine()
    assert again.handle(Recover(tuple(records), now=20.0)) == [Persist()]
    assert {sid: j.status.value for sid, j in again.jobs.items()} == {
        "done": "SUCCEEDED", "live": "FAILED", "waiting": "FAILED", "stopped": "STOPPED"}
    assert "exited while it was RUNNING" in again.jobs["live"].message
    assert again.details("live").metadata == {"k": "v"}
    assert again.details("done") == m.details("done")
    assert again.jobs["live"].end_time == 20000
    # nothing live: recovering the saved records again changes nothing
    assert Machine().handle(Recover(tuple(again.records()), now=30.0)) == []


def test_live_lists_the_jobs_that_have_not_ended():
    m = running("a")
    m.handle(Submit(JobSpec("b", "x"), now=2.0))
    m.handle(Submit(JobSpec("c", "x"), now=2.0))
    m.handle(SpawnFailed("c", "x", now=2.1))
    assert m.live() == ["a", "b"]


def test_unknown_events_are_a_type_error():
    with pytest.raises(TypeError, match="not a job event"):
        Machine().handle("submit")

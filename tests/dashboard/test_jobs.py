"""Jobs end to end: JobSubmissionClient and `skate job` against the dashboard of a head from
`skate start --head`; the jobs' drivers join that cluster."""

import asyncio
import os
import signal
import sys
import textwrap

import psutil
import pytest

from skate.job_submission import JobRequestError, JobStatus, JobSubmissionClient
from tests.dashboard.conftest import started_head, wait_until

pytestmark = pytest.mark.skate_only

TERMINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED)


@pytest.fixture(scope="module")
def client(head):
    return JobSubmissionClient(head.url, token=head.token)


def _watch(client, sid, timeout=30):
    """Every distinct status the job went through, polled until it ended."""
    seen = []

    def ended():
        status = client.get_job_status(sid)
        if not seen or seen[-1] != status:
            seen.append(status)
        return status in TERMINAL

    wait_until(ended, timeout=timeout, interval=0.02)
    return seen


def _gone(pid):
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_job_joins_the_cluster_runs_a_task_and_succeeds(client, tmp_path):
    (tmp_path / "job_script.py").write_text(textwrap.dedent("""
        import os
        import skate
        skate.init()
        @skate.remote
        def double(x):
            return 2 * x
        print("result", skate.get(double.remote(21)))
        print("LR", os.environ["LR"])
    """))
    sid = client.submit_job(entrypoint="python job_script.py", submission_id="e2e-ok",
                            runtime_env={"working_dir": str(tmp_path), "env_vars": {"LR": "0.1"}},
                            metadata={"owner": "tests"})
    assert sid == "e2e-ok"
    seen = _watch(client, sid)
    assert seen[-1] is JobStatus.SUCCEEDED
    assert set(seen) <= {JobStatus.PENDING, JobStatus.RUNNING, JobStatus.SUCCEEDED}
    logs = client.get_job_logs(sid)
    assert "result 42\n" in logs and "LR 0.1\n" in logs
    info = client.get_job_info(sid)
    assert (info.driver_exit_code, info.metadata, info.entrypoint) == \
        (0, {"owner": "tests"}, "python job_script.py")
    assert info.start_time <= info.end_time
    jobs = client.list_jobs()
    assert [j.submission_id for j in jobs if j.type.value == "SUBMISSION"].count(sid) == 1
    # its driver joined the cluster as a job of its own (and the dashboard's own is not shown)
    drivers = [j for j in jobs if j.type.value == "DRIVER"]
    assert drivers and all(j.submission_id is None for j in drivers)


def test_a_failing_job_is_failed_with_its_exit_code(client):
    sid = client.submit_job(
        entrypoint=f"{sys.executable} -c \"import sys; print('about to fail'); sys.exit(7)\"")
    assert _watch(client, sid)[-1] is JobStatus.FAILED
    info = client.get_job_info(sid)
    assert info.driver_exit_code == 7 and "exited with code 7" in info.message
    assert client.get_job_logs(sid) == "about to fail\n"


def test_stopping_a_sleeping_job_ends_its_processes(client):
    sid = client.submit_job(entrypoint="python -c \"import time; print('sleeping', flush=True); "
                                       "time.sleep(60)\" & wait")
    wait_until(lambda: "sleeping" in client.get_job_logs(sid))
    info = client.get_job_info(sid)
    assert info.status is JobStatus.RUNNING
    group = [p for p in psutil.process_iter() if _pgid(p) == info.driver_info["pid"]]
    assert len(group) == 2  # the shell and its background python
    assert client.stop_job(sid) is True
    assert _watch(client, sid)[-1] is JobStatus.STOPPED
    wait_until(lambda: all(_gone(p.pid) for p in group), timeout=10)
    assert client.stop_job(sid) is False  # it had ended
    assert client.delete_job(sid) is True
    with pytest.raises(JobRequestError) as e:
        client.get_job_info(sid)
    assert e.value.status == 404


def _pgid(proc):
    try:
        return os.getpgid(proc.pid)
    except (ProcessLookupError, psutil.Error):
        return None


def test_tail_job_logs_streams_until_the_job_ends(client):
    sid = client.submit_job(entrypoint="for i in 1 2 3 4 5; do echo line $i; sleep 0.1; done")

    async def tail():
        return "".join([chunk async for chunk in client.tail_job_logs(sid)])

    text = asyncio.run(tail())
    assert text == "".join(f"line {i}\n" for i in range(1, 6))
    assert client.get_job_status(sid) is JobStatus.SUCCEEDED


def test_writes_need_the_token_and_mistakes_say_why(head, client):
    anonymous = JobSubmissionClient(head.url)
    assert anonymous.list_jobs()  # reads are open
    with pytest.raises(JobRequestError) as e:
        anonymous.submit_job(entrypoint="echo hi")
    assert e.value.status == 401 and "needs the cluster token" in str(e.value)
    with pytest.raises(JobRequestError) as e:
        JobSubmissionClient(head.url, token="wrong").stop_job("e2e-ok")
    assert e.value.status == 401 and "Wrong cluster token" in str(e.value)
    with pytest.raises(JobRequestError) as e:
        client.submit_job(entrypoint="echo", runtime_env={"pip": ["requests"]})
    assert e.value.status == 400 and "'pip' are not supported" in str(e.value)
    with pytest.raises(JobRequestError) as e:
        client.get_job_status("no-such-job")
    assert e.value.status == 404 and "does not exist" in str(e.value)
    with pytest.raises(ConnectionError, match="Could not reach Skate's dashboard"):
        JobSubmissionClient("http://127.0.0.1:9", timeout=2)


def test_the_job_cli(head):
    ok = head.cli("job", "submit", "--submission-id", "cli-ok", "--",
                  "python", "-c", "print('from the cli')")
    assert "Job 'cli-ok' submitted." in ok.stdout and "from the cli\n" in ok.stdout
    assert ok.stdout.rstrip().endswith("Job 'cli-ok' SUCCEEDED: Job finished successfully.")
    assert "cli-ok" in head.cli("job", "list").stdout
    assert head.cli("job", "status", "cli-ok").stdout.startswith(
        "Job 'cli-ok': SUCCEEDED (exit code 0)")
    assert head.cli("job", "logs", "cli-ok").stdout == "from the cli\n"
    assert head.cli("job", "logs", "cli-ok", "--follow").stdout == "from the cli\n"
    bad = head.cli("job", "submit", "--", "sh", "-c", "exit 4", check=False)
    assert bad.returncode == 1 and "FAILED" in bad.stdout
    assert head.cli("job", "delete", "cli-ok").stdout.startswith("Deleted job 'cli-ok'")
    # user mistakes: one line, no traceback
    for args, code, words in [
            (("job", "status", "cli-ok"), 1, "does not exist"),
            (("job", "submit", "--runtime-env-json", "{bad", "--", "true"), 2, "must be JSON"),
            (("job", "submit"), 2, "Give the command after --"),
            (("job", "submit", "--working-dir", "/no/such", "--", "true"), 2, "not a directory"),
            (("job", "stop", "x", "--address", "http://127.0.0.1:9"), 1, "Could not reach"),
            (("job",), 2, "Give an action")]:
        r = head.cli(*args, check=False)
        assert r.returncode == code and words in r.stderr, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    started = head.cli("job", "submit", "--no-wait", "--", "sleep", "30")
    sid = started.stdout.split("'")[1]
    assert head.cli("job", "stop", sid).stdout.startswith(f"Stopping job '{sid}'")
    wait_until(lambda: "STOPPED" in head.cli("job", "status", sid).stdout)


def test_stop_and_restart_of_the_dashboard_keep_the_records():
    from skate.dashboard import start_dashboard

    with started_head() as h:
        client = JobSubmissionClient(h.url, token=h.token)
        done = client.submit_job(entrypoint="echo done", submission_id="kept")
        _watch(client, done)
        live = client.submit_job(entrypoint="exec sleep 60", submission_id="live")
        wait_until(lambda: client.get_job_status(live) is JobStatus.RUNNING)
        pid = client.get_job_info(live).driver_info["pid"]
        os.kill(h.info["dashboard_pid"], signal.SIGTERM)  # a dashboard stops its jobs first
        wait_until(lambda: _gone(h.info["dashboard_pid"]) and _gone(pid), timeout=15)
        again = start_dashboard(h.session_dir, h.info["gcs_address"], port=0, token=h.token)
        try:
            client = JobSubmissionClient(again.url, token=h.token)
            assert {j.submission_id: j.status for j in client.list_jobs()
                    if j.submission_id} == {"kept": JobStatus.SUCCEEDED,
                                            "live": JobStatus.STOPPED}
            assert client.get_job_logs("kept") == "done\n"
        finally:
            again.stop()


def test_skate_stop_ends_the_dashboards_jobs():
    with started_head() as h:
        client = JobSubmissionClient(h.url, token=h.token)
        sid = client.submit_job(entrypoint="exec sleep 60")
        wait_until(lambda: client.get_job_status(sid) is JobStatus.RUNNING)
        pid = client.get_job_info(sid).driver_info["pid"]
        h.cli("stop")
        wait_until(lambda: _gone(pid) and _gone(h.info["dashboard_pid"]), timeout=15)


@pytest.mark.slow
def test_a_job_that_ignores_sigterm_is_killed_after_the_grace_period(client):
    sid = client.submit_job(entrypoint="trap '' TERM; echo ready; while true; do sleep 0.1; "
                                       "done")
    wait_until(lambda: "ready" in client.get_job_logs(sid))
    client.stop_job(sid)
    assert _watch(client, sid, timeout=15)[-1] is JobStatus.STOPPED
    assert client.get_job_info(sid).driver_exit_code == -signal.SIGKILL

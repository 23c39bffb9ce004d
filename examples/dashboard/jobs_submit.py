"""Submit a program to a cluster as a job, follow its output, stop another (Ray's jobs API).

    python examples/dashboard/jobs_submit.py
    python examples/dashboard/jobs_submit.py --address http://127.0.0.1:8265   # a running head

Without ``--address`` it starts a private cluster and its dashboard (what
``skate start --head`` does for a long-running one). Submitting needs the
cluster's token: the file ``<session_dir>/token``, or ``SKATE_TOKEN``.
"""

import argparse
import asyncio
import os
import tempfile
import textwrap
import time

import skate
from skate.dashboard import start_dashboard
from skate.job_submission import JobStatus, JobSubmissionClient

# The job's own program: skate.init() joins the cluster the job runs on (the dashboard
# sets SKATE_ADDRESS for it), so its tasks run there.
JOB = textwrap.dedent("""
    import os
    import skate

    skate.init()

    @skate.remote
    def square(x):
        return x * x

    print("squares:", skate.get([square.remote(i) for i in range(8)]))
    print("learning rate from the runtime_env:", os.environ["LEARNING_RATE"])
""")


def run(client: JobSubmissionClient) -> None:
    with tempfile.TemporaryDirectory(prefix="skate-job-") as workdir:
        with open(os.path.join(workdir, "job.py"), "w") as f:
            f.write(JOB)
        follow_one(client, workdir)
    stop_one(client)
    print("jobs:", [(j.submission_id or j.job_id, j.status.value) for j in client.list_jobs()])


def follow_one(client: JobSubmissionClient, workdir: str) -> None:
    sid = client.submit_job(entrypoint="python job.py",
                            runtime_env={"working_dir": workdir,
                                         "env_vars": {"LEARNING_RATE": "0.01"}},
                            metadata={"example": "jobs_submit"})
    print(f"submitted {sid}")

    async def follow():
        async for lines in client.tail_job_logs(sid):  # until the job ends
            print(lines, end="")

    asyncio.run(follow())
    info = client.get_job_info(sid)
    print(f"{sid}: {info.status.value} (exit code {info.driver_exit_code})")


def stop_one(client: JobSubmissionClient) -> None:
    sleeper = client.submit_job(entrypoint="python -c 'import time; time.sleep(600)'")
    while client.get_job_status(sleeper) is not JobStatus.RUNNING:
        time.sleep(0.05)
    client.stop_job(sleeper)  # SIGTERM, then SIGKILL after a grace period
    while not client.get_job_status(sleeper).is_terminal():
        time.sleep(0.05)
    print(f"{sleeper}: {client.get_job_status(sleeper).value}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--address", help="a running dashboard, e.g. http://127.0.0.1:8265")
    args = p.parse_args()
    if args.address:
        run(JobSubmissionClient(args.address))  # the token from SKATE_TOKEN
        return
    ctx = skate.init(num_cpus=2)
    dashboard = start_dashboard(ctx["session_dir"], ctx["gcs_address"], port=0)
    try:
        with open(os.path.join(ctx["session_dir"], "token")) as f:
            token = f.read().strip()
        print(f"dashboard at {dashboard.url}")
        run(JobSubmissionClient(dashboard.url, token=token))
    finally:
        dashboard.stop()
        skate.shutdown()


if __name__ == "__main__":
    main()

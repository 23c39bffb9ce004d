"""Submit programs to a cluster and manage them, with Ray's names (``ray.job_submission``).

>>> from skate.job_submission import JobSubmissionClient, JobStatus
>>> client = JobSubmissionClient("http://127.0.0.1:8265")        # doctest: +SKIP
>>> sid = client.submit_job(entrypoint="python script.py",
...                         runtime_env={"working_dir": "."})     # doctest: +SKIP
>>> client.get_job_status(sid) in (JobStatus.PENDING, JobStatus.RUNNING)  # doctest: +SKIP
True

The server side is the dashboard (``skate start --head`` runs it); see
docs/jobs.md. Importing this module needs nothing beyond the standard library.
"""

from skate.job_submission.client import JobRequestError, JobSubmissionClient
from skate.job_submission.models import JobDetails, JobInfo, JobStatus, JobType

__all__ = ["JobDetails", "JobInfo", "JobRequestError", "JobStatus", "JobSubmissionClient",
           "JobType"]

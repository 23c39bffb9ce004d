"""``JobSubmissionClient``: submit and manage jobs over the dashboard's HTTP API (Ray's).

The standard library's ``urllib`` carries the calls, so the client needs no
package beyond Skate itself. Writes (submit, stop, delete) send the cluster
token: ``token=``, else ``SKATE_TOKEN`` (set in every process the head
starts, a job's driver included), else an ``Authorization`` header you pass.

>>> from skate.job_submission import JobSubmissionClient
>>> client = JobSubmissionClient("http://127.0.0.1:8265")           # doctest: +SKIP
>>> sid = client.submit_job(entrypoint="python -c 'print(42)'")      # doctest: +SKIP
>>> client.get_job_status(sid)                                       # doctest: +SKIP
<JobStatus.SUCCEEDED: 'SUCCEEDED'>
>>> client.get_job_logs(sid)                                         # doctest: +SKIP
'42\\n'
"""

from __future__ import annotations

import asyncio
import codecs
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import AsyncIterator

from skate.job_submission.models import JobDetails, JobStatus

DEFAULT_ADDRESS = "http://127.0.0.1:8265"  # a head started on this machine, Ray's port


class JobRequestError(RuntimeError):
    """The dashboard refused a request (``status``: 400 bad input, 401 token, 404 no such
    job); the message is the dashboard's own. A RuntimeError, as Ray's client raises."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def default_address() -> str:
    """``SKATE_ADDRESS`` or ``RAY_ADDRESS`` when it is an http(s) URL, else Ray's default
    dashboard address on this machine."""
    for name in ("SKATE_ADDRESS", "RAY_ADDRESS"):
        value = os.environ.get(name, "")
        if value.startswith(("http://", "https://")):
            return value
    return DEFAULT_ADDRESS


class JobSubmissionClient:
    """A client of the dashboard at ``address`` (Ray's signature; ``token`` and
    ``timeout`` are Skate's). Raises ConnectionError if nothing answers there."""

    def __init__(self, address: str | None = None, create_cluster_if_needed: bool = False,
                 cookies: dict | None = None, metadata: dict | None = None,
                 headers: dict | None = None, verify=True, *, token: str | None = None,
                 timeout: float = 30.0):
        address = address or default_address()
        if "://" not in address:
            address = "http://" + address
        self.address = address.rstrip("/")
        self.timeout = timeout
        self._metadata = dict(metadata or {})
        self._headers = dict(headers or {})
        if cookies:
            self._headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        token = token or os.environ.get("SKATE_TOKEN")
        if token and not any(k.lower() == "authorization" for k in self._headers):
            self._headers["Authorization"] = f"Bearer {token}"
        self._version = self._request("GET", "/api/version")

    # -- Ray's methods --------------------------------------------------------------------
    def submit_job(self, *, entrypoint: str, job_id: str | None = None,
                   submission_id: str | None = None, runtime_env: dict | None = None,
                   metadata: dict | None = None, entrypoint_num_cpus: float | None = None,
                   entrypoint_num_gpus: float | None = None, entrypoint_memory: int | None = None,
                   entrypoint_resources: dict | None = None) -> str:
        """Run ``entrypoint`` (a shell command) on the head; its submission id. A relative
        ``runtime_env["working_dir"]`` is made absolute here: it names a directory on the
        head's machine, which is this one when the address is local."""
        env = dict(runtime_env) if runtime_env else None
        if env and isinstance(env.get("working_dir"), str) and "://" not in env["working_dir"]:
            env["working_dir"] = os.path.abspath(env["working_dir"])
        body = {"entrypoint": entrypoint, "submission_id": submission_id or job_id,
                "runtime_env": env, "metadata": {**self._metadata, **(metadata or {})} or None,
                "entrypoint_num_cpus": entrypoint_num_cpus,
                "entrypoint_num_gpus": entrypoint_num_gpus,
                "entrypoint_memory": entrypoint_memory,
                "entrypoint_resources": entrypoint_resources}
        reply = self._request("POST", "/api/jobs/", {k: v for k, v in body.items()
                                                      if v is not None})
        return reply["submission_id"]

    def stop_job(self, job_id: str) -> bool:
        """Stop a job (SIGTERM, SIGKILL after a grace period); False if it had ended."""
        return self._request("POST", f"/api/jobs/{_quote(job_id)}/stop")["stopped"]

    def delete_job(self, job_id: str) -> bool:
        """Forget an ended job and its logs (a live one must be stopped first)."""
        return self._request("DELETE", f"/api/jobs/{_quote(job_id)}")["deleted"]

    def get_job_info(self, job_id: str) -> JobDetails:
        return JobDetails.from_dict(self._request("GET", f"/api/jobs/{_quote(job_id)}"))

    def list_jobs(self) -> list[JobDetails]:
        """Every job: submitted ones and drivers that joined by themselves."""
        return [JobDetails.from_dict(d) for d in self._request("GET", "/api/jobs/")]

    def get_job_status(self, job_id: str) -> JobStatus:
        return self.get_job_info(job_id).status

    def get_job_logs(self, job_id: str) -> str:
        """The job's stdout and stderr so far."""
        return self._request("GET", f"/api/jobs/{_quote(job_id)}/logs")["logs"]

    async def tail_job_logs(self, job_id: str) -> AsyncIterator[str]:
        """The job's output as it is written, from the start, ending when the job ends::

            async for lines in client.tail_job_logs(sid):
                print(lines, end="")
        """
        resp = await asyncio.to_thread(self._open, "GET",
                                       f"/api/jobs/{_quote(job_id)}/logs/tail", None, None)
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        try:
            while True:
                chunk = await asyncio.to_thread(resp.read1, 65536)
                if not chunk:
                    break
                text = decoder.decode(chunk)
                if text:
                    yield text
        finally:
            resp.close()

    # -- the wire -------------------------------------------------------------------------
    def _request(self, method: str, path: str, body=None):
        with self._open(method, path, body, self.timeout) as resp:
            return json.loads(resp.read())

    def _open(self, method: str, path: str, body, timeout):
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self._headers, Accept="application/json")
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.address + path, data=data, method=method,
                                     headers=headers)
        try:
            return urllib.request.urlopen(req, timeout=timeout)
        except urllib.error.HTTPError as e:
            raise JobRequestError(e.code, _message(e)) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ConnectionError(f"Could not reach Skate's dashboard at {self.address}: "
                                  f"{reason}. Is the head running (skate start --head) with "
                                  f"its dashboard?") from None


def _message(e: urllib.error.HTTPError) -> str:
    raw = e.read()
    try:
        return f"{json.loads(raw)['error']} (HTTP {e.code})"
    except (ValueError, KeyError, TypeError):
        return f"Request failed with status code {e.code}: {raw[:500].decode(errors='replace')}"


def _quote(job_id: str) -> str:
    if not isinstance(job_id, str) or not job_id:
        raise ValueError(f"A job id is a non-empty str, got {job_id!r}.")
    return urllib.parse.quote(job_id, safe="")

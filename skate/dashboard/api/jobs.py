"""The jobs API, on Ray's REST paths (what ``JobSubmissionClient`` calls).

| method and path | answer |
| --- | --- |
| ``POST /api/jobs/`` (write) | ``{"submission_id", "job_id"}``; body: Ray's submission fields |
| ``GET /api/jobs/`` | every job, submitted and driver, as JobDetails dicts |
| ``GET /api/jobs/{id}`` | one job, by submission id or a driver's job id |
| ``GET /api/jobs/{id}/logs`` | ``{"logs": text}`` (the last 16 MiB) |
| ``GET /api/jobs/{id}/logs/tail`` | the log as a text stream, until the job ends |
| ``POST /api/jobs/{id}/stop`` (write) | ``{"stopped": bool}`` (False: it had ended) |
| ``DELETE /api/jobs/{id}`` (write) | ``{"deleted": true}``; only ended jobs |
"""

from __future__ import annotations

import asyncio
import os

from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from skate.dashboard.api import ask, context, json_body
from skate.dashboard.auth import writes
from skate.dashboard.errors import ApiError, bad_request, not_found
from skate.dashboard.jobs.lifecycle import InvalidRequest, UnknownJob
from skate.job_submission.models import JobDetails, JobStatus, JobType

MAX_LOG_BYTES = 16 << 20
TAIL_CHUNK = 64 << 10
TAIL_POLL_S = 0.2


def driver_details(job) -> JobDetails:
    """A driver job (``skate.state.JobState``) in the jobs API's shape: a finished driver is
    SUCCEEDED, as Ray reports it."""
    return JobDetails(
        type=JobType.DRIVER, job_id=job.job_id, submission_id=None, entrypoint="",
        status=JobStatus.RUNNING if job.status == "RUNNING" else JobStatus.SUCCEEDED,
        start_time=job.start_time, end_time=job.end_time,
        metadata=dict(job.config.get("metadata") or {}),
        runtime_env=job.config.get("runtime_env"),
        driver_info={"id": job.job_id, "address": job.driver_address})


def _runner(request: Request):
    return context(request).jobs


async def _call(fn, *args):
    try:
        return await ask(fn, *args)
    except UnknownJob as e:
        raise not_found(str(e)) from None
    except InvalidRequest as e:
        raise bad_request(str(e)) from None


@writes
async def submit_job(request: Request) -> JSONResponse:
    body = await json_body(request)
    if body is None:
        raise bad_request('Send the job as a JSON body, e.g. {"entrypoint": "python x.py"}.')
    sid = await _call(_runner(request).submit, body)
    return JSONResponse({"submission_id": sid, "job_id": sid})


async def list_jobs(request: Request) -> JSONResponse:
    submitted = await _call(_runner(request).list)
    drivers = await ask(context(request).cluster.driver_jobs)
    return JSONResponse([d.to_dict() for d in submitted] +
                        [driver_details(j).to_dict() for j in drivers])


async def get_job(request: Request) -> JSONResponse:
    job_id = request.path_params["job_id"]
    try:
        return JSONResponse((await _call(_runner(request).get, job_id)).to_dict())
    except ApiError as e:
        if e.status != 404:
            raise
    for job in await ask(context(request).cluster.driver_jobs):
        if job.job_id == job_id:
            return JSONResponse(driver_details(job).to_dict())
    raise not_found(f"Job {job_id!r} does not exist (no submitted job has this submission "
                    f"id and no driver this job id).")


async def job_logs(request: Request) -> JSONResponse:
    path = await _call(_runner(request).log_path, request.path_params["job_id"])
    return JSONResponse({"logs": _read_tail(path)})


async def tail_job_logs(request: Request) -> StreamingResponse:
    runner, sid = _runner(request), request.path_params["job_id"]
    path = await _call(runner.log_path, sid)
    return StreamingResponse(_follow(runner, sid, path), media_type="text/plain; charset=utf-8")


@writes
async def stop_job(request: Request) -> JSONResponse:
    return JSONResponse({"stopped": await _call(_runner(request).stop,
                                                request.path_params["job_id"])})


@writes
async def delete_job(request: Request) -> JSONResponse:
    return JSONResponse({"deleted": await _call(_runner(request).delete,
                                                request.path_params["job_id"])})


def _read_tail(path: str) -> str:
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            skipped = max(0, size - MAX_LOG_BYTES)
            f.seek(skipped)
            data = f.read()
    except FileNotFoundError:
        return ""  # not started yet
    text = data.decode("utf-8", "replace")
    if skipped:
        text = f"[the first {skipped} bytes are not shown; the whole log is {path}]\n" + text
    return text


async def _follow(runner, sid: str, path: str):
    """The log's bytes as they are written, ending once the job has ended and all is sent."""
    offset = 0
    while True:
        try:
            ended = runner.get(sid).status.is_terminal()
        except UnknownJob:
            return  # deleted meanwhile
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                chunk = f.read(TAIL_CHUNK)
        except FileNotFoundError:
            chunk = b""
        if chunk:
            offset += len(chunk)
            yield chunk
        elif ended:
            return
        else:
            await asyncio.sleep(TAIL_POLL_S)


routes = [
    Route("/api/jobs/", submit_job, methods=["POST"]),
    Route("/api/jobs", submit_job, methods=["POST"]),
    Route("/api/jobs/", list_jobs, methods=["GET"]),
    Route("/api/jobs", list_jobs, methods=["GET"]),
    Route("/api/jobs/{job_id}", get_job, methods=["GET"]),
    Route("/api/jobs/{job_id}", delete_job, methods=["DELETE"]),
    Route("/api/jobs/{job_id}/logs", job_logs, methods=["GET"]),
    Route("/api/jobs/{job_id}/logs/tail", tail_job_logs, methods=["GET"]),
    Route("/api/jobs/{job_id}/stop", stop_job, methods=["POST"]),
]

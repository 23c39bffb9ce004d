"""A Skate cluster with serve running on a free port, shared by a test module.

Each test deploys its own applications and deletes them (``app`` helper); the
module's end shuts serve and Skate down, and the root conftest checks that no
process is left.
"""

import contextlib
import socket

import pytest

from tests.conftest import _start_cluster, _stop_cluster

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def serve_url():
    from skate import serve

    _start_cluster(num_cpus=8)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        try:
            serve.shutdown()
        finally:
            _stop_cluster()


@contextlib.contextmanager
def deployed(app, name, route_prefix="/", **kwargs):
    """serve.run(app) for the block; the application is deleted after, even on failure."""
    from skate import serve

    try:
        yield serve.run(app, name=name, route_prefix=route_prefix, **kwargs)
    finally:
        serve.delete(name)

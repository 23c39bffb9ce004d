"""serve.shutdown leaves nothing: no controller, proxy or replica process, and the port free."""

import os
import socket

import httpx
import psutil
import pytest

import skate
from skate import serve
from tests.core.utils import wait_for_condition
from tests.serve.conftest import free_port

pytestmark = pytest.mark.skate_only


@serve.deployment(num_replicas=2, ray_actor_options={"num_cpus": 0})
def ping(request):
    return str(os.getpid())


def _listener(port):
    """The pid of the child process listening on ``port``."""
    for p in psutil.Process().children(recursive=True):
        try:
            if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port
                   for c in p.net_connections(kind="tcp")):
                return p.pid
        except psutil.Error:
            pass
    return None


def test_shutdown_stops_every_serve_process_and_frees_the_port(shutdown_only):
    from skate.util import list_named_actors

    skate.init(num_cpus=2)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(ping.bind())
    replicas: set = set()
    wait_for_condition(lambda: replicas.add(int(httpx.get(f"http://127.0.0.1:{port}/").text))
                       or len(replicas) == 2, timeout=20)
    proxy = _listener(port)
    assert proxy is not None and proxy not in replicas
    assert [a["name"] for a in list_named_actors(all_namespaces=True)] == \
        ["SERVE_CONTROLLER_ACTOR"]
    serve.shutdown()
    wait_for_condition(lambda: not any(psutil.pid_exists(p) and
                                       psutil.Process(p).status() != "zombie"
                                       for p in replicas | {proxy}), timeout=20)
    assert list_named_actors(all_namespaces=True) == []
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # free again
    assert serve.status().applications == {}

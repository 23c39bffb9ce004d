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
    assert sorted(a["name"] for a in list_named_actors(all_namespaces=True)) == \
        ["SERVE_CONTROLLER_ACTOR", "SERVE_PROXY_ACTOR", "SERVE_REPLICA::default#ping#1",
         "SERVE_REPLICA::default#ping#2"]
    serve.shutdown()
    wait_for_condition(lambda: not any(psutil.pid_exists(p) and
                                       psutil.Process(p).status() != "zombie"
                                       for p in replicas | {proxy}), timeout=20)
    assert list_named_actors(all_namespaces=True) == []
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # free again
    assert serve.status().applications == {}


def test_killed_proxy_is_started_again_on_its_port(shutdown_only):
    import signal

    skate.init(num_cpus=2)
    port = free_port()
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(ping.bind())
        url = f"http://127.0.0.1:{port}/"
        assert httpx.get(url).status_code == 200
        proxy = _listener(port)
        os.kill(proxy, signal.SIGKILL)

        def answers_again():
            try:
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
        wait_for_condition(answers_again, timeout=30)
        assert _listener(port) not in (None, proxy)
    finally:
        serve.shutdown()

"""The cluster token, and hostile input on the real ports: refused, logged, never a crash."""

import os
import pickle
import socket
import struct
import subprocess
import sys
import textwrap

import pytest

from skate.cluster_utils import Cluster
from skate.core import rpc

pytestmark = pytest.mark.skate_only


@pytest.fixture
def cluster():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        yield c
    finally:
        c.shutdown()


def _raw(address: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(address[5:])
    return s


def _alive(cluster) -> bool:
    c = rpc.connect(cluster.address, token=cluster.token)
    try:
        return bool(c.call("get_nodes", timeout=5))
    finally:
        c.close()


def test_token_file_is_private(cluster):
    path = os.path.join(cluster._session_dir, "token")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    with open(path) as f:
        assert f.read().strip() == cluster.token


def test_wrong_token_cannot_call_the_control_store(cluster):
    bad = rpc.connect(cluster.address, token="not-the-token")
    try:
        with pytest.raises(rpc.ConnectionClosed):
            bad.call("get_nodes", timeout=5)
    finally:
        bad.close()
    log = os.path.join(cluster._session_dir, "logs", "gcs.log")
    with open(log) as f:
        assert "wrong or missing cluster token" in f.read()
    assert _alive(cluster)


def test_driver_without_the_token_cannot_join(cluster):
    code = textwrap.dedent(f"""
        import skate
        try:
            skate.init(address={cluster.address!r})
        except ConnectionError as e:
            print("refused:", e)
    """)
    env = dict(os.environ, SKATE_TOKEN="wrong")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env=env)
    assert "refused:" in out.stdout and "token" in out.stdout, out.stderr


def test_node_without_the_token_cannot_join(cluster):
    from skate.core.node import start_worker_node
    from skate.exceptions import RaySystemError

    with pytest.raises(RaySystemError, match="did not start"):
        node = start_worker_node(cluster.address, {"CPU": 1}, 64 * 1024 * 1024, "wrong-token",
                                 owner_pid=os.getpid(), parent_dir=cluster._session_dir)
        node.stop()
    assert sum(n["Alive"] for n in cluster._nodes()) == 1


def test_objects_cannot_be_pulled_without_the_token(cluster):
    import grpc

    from skate.core.object_store.transfer import TransferClient

    node = cluster._nodes()[0]
    with pytest.raises(grpc.RpcError) as info:
        TransferClient("wrong").pull(node["transfer_address"], b"\0" * 16, lambda size: None)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("target", ["gcs", "raylet"])
def test_garbage_and_wrong_messages_do_not_crash_servers(cluster, target):
    address = cluster.address if target == "gcs" else cluster.head_node.address
    hello = b"SKATE1 " + cluster.token.encode()
    payloads = [
        os.urandom(64),  # random bytes instead of a hello
        struct.pack("<I", 1 << 30),  # a huge length and nothing after it
        struct.pack("<I", len(hello)) + hello + os.urandom(300),  # garbage after a good hello
        struct.pack("<I", len(hello)) + hello + struct.pack("<I", 3) + b"abc",  # truncated pickle
    ]
    for wrong in [(0, 1, "no_such_method", ()), (0, 2, "get_nodes", (1, 2, 3)), ("x",),
                  (0, 3, 42, None), (5, 4, "ping", ())]:
        body = pickle.dumps(wrong)
        payloads.append(struct.pack("<I", len(hello)) + hello + struct.pack("<I", len(body)) + body)
    for data in payloads:
        s = _raw(address)
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            try:
                s.recv(65536)  # an error reply or EOF: either way the server lives
            except OSError:
                pass
        finally:
            s.close()
    assert _alive(cluster)
    c = rpc.connect(address, token=cluster.token)
    try:
        with pytest.raises(ValueError, match="no method"):
            c.call("no_such_method", timeout=5)
        assert c.call("ping", timeout=5) == "pong"
    finally:
        c.close()

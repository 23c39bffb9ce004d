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
from tests.core.utils import wait_for_condition

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


# ------------------------------------------------- the plain-socket object stream
def _stream_address(cluster) -> str:
    return cluster._nodes()[0]["stream_address"]


def _raylet_log(cluster) -> str:
    logs = os.path.join(cluster._session_dir, "logs")
    return "".join(open(os.path.join(logs, f)).read() for f in os.listdir(logs)
                   if f.startswith("raylet"))


def test_objects_cannot_be_streamed_without_the_token(cluster):
    from skate.core.object_store import stream

    received = []
    for token in ("wrong", ""):
        with pytest.raises(stream.StreamRefused, match="token"):
            stream.pull(_stream_address(cluster), b"\0" * 16, received.append, token)
    assert received == []  # refused before a byte of any object could move
    wait_for_condition(lambda: "wrong or missing cluster token" in _raylet_log(cluster), timeout=10)
    assert _alive(cluster)


def test_garbage_on_the_object_stream_port_does_not_crash_the_node_manager(cluster):
    from skate.core.object_store import stream

    host, port = _stream_address(cluster).rsplit(":", 1)
    tok = cluster.token.encode()
    good = stream.MAGIC + struct.pack("<H", len(tok)) + tok
    payloads = [
        b"",  # connect and leave
        os.urandom(64),  # random bytes instead of a request
        b"NOTSKATE" + struct.pack("<H", 3) + b"abc",  # wrong magic
        stream.MAGIC + struct.pack("<H", 65535),  # a huge token length
        stream.MAGIC + struct.pack("<H", 10) + b"abc",  # truncated token
        good + struct.pack("<H", 0),  # an empty object id
        good + struct.pack("<H", 65535) + os.urandom(100),  # a huge object id length
        good + struct.pack("<H", 16) + b"\0" * 16 + struct.pack("<H", 9999),  # huge node id
        good + struct.pack("<H", 16) + b"\0" * 16 + struct.pack("<H", 2) + b"\xff\xfe",
        good + struct.pack("<H", 16) + b"\0" * 16 + struct.pack("<H", 1) + b"n",  # missing
    ]
    for data in payloads:
        s = socket.create_connection((host, int(port)), timeout=5)
        try:
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                reply = s.recv(65536)  # an error status or EOF: either way the node lives
            except OSError:
                reply = b""  # the node manager hung up first (reset, not connected): fine
            assert reply == b"" or reply[0] != stream.OK
        finally:
            s.close()
    with pytest.raises(stream.StreamMissing):
        stream.pull(_stream_address(cluster), b"\0" * 16, lambda size: None, cluster.token)
    c = rpc.connect(cluster.head_node.address, token=cluster.token)
    try:
        assert c.call("ping", timeout=5) == "pong"
    finally:
        c.close()


def test_stream_and_grpc_fallback_deliver_the_stored_bytes(cluster):
    """The socket path serves exactly the bytes of the stored object; when it cannot be
    reached, the gRPC path delivers the same bytes into the same destination."""
    import numpy as np

    import skate
    from skate.core.object_store.stream import StreamMissing
    from skate.core.object_store.transfer import TransferClient

    node = cluster._nodes()[0]
    data = np.random.default_rng(7).integers(0, 255, 12 * 1024 * 1024 + 3, dtype=np.uint8)
    cluster.connect()
    try:
        ref = skate.put(data)
        client = TransferClient(cluster.token, "test")

        def sealed():
            # put() seals the object with a one-way message: wait until the node serves it.
            try:
                client.pull(node["transfer_address"], ref.binary(),
                            lambda size: (memoryview(bytearray(size)), None),
                            stream_address=node["stream_address"])
                return True
            except StreamMissing:
                return False

        wait_for_condition(sealed, timeout=10)
        copies = []
        for stream_address in (node["stream_address"], "127.0.0.1:1"):  # :1 refuses
            buf = bytearray()

            def begin(size, buf=buf):
                buf.extend(bytes(size))
                return memoryview(buf), None

            client.pull(node["transfer_address"], ref.binary(), begin,
                        stream_address=stream_address)
            copies.append(bytes(buf))
        assert copies[0] == copies[1]
        assert data.tobytes() in copies[0]  # the array, behind the object's header
    finally:
        skate.shutdown()

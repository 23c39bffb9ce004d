"""The wire: request/reply, deferred replies, errors, and a peer that goes away."""

import threading

import pytest

from skate.core import rpc

pytestmark = pytest.mark.skate_only


@pytest.fixture
def server(tmp_path):
    deferred = []

    def handle(conn, method, args, rid):
        if method == "echo":
            return args
        if method == "fail":
            raise KeyError("no such thing")
        if method == "later":
            deferred.append((conn, rid))
            return rpc.DEFER
        raise ValueError(method)

    lst = rpc.Listener(f"unix:{tmp_path}/s.sock", handle)
    lst.deferred = deferred
    yield lst
    lst.close()


def test_call_reply_and_remote_error(server):
    c = rpc.connect(server.address)
    try:
        assert c.call("echo", 1, b"x" * 200_000) == (1, b"x" * 200_000)
        with pytest.raises(KeyError, match="no such thing"):
            c.call("fail")
    finally:
        c.close()


def test_deferred_reply_and_async_callback(server):
    c = rpc.connect(server.address)
    got = threading.Event()
    box = []
    try:
        c.call_async("later", callback=lambda ok, v: (box.append((ok, v)), got.set()))
        for _ in range(500):
            if server.deferred:
                break
            threading.Event().wait(0.01)
        conn, rid = server.deferred[0]
        conn.reply(rid, "done")
        assert got.wait(5)
        assert box == [(True, "done")]
    finally:
        c.close()


def test_pending_calls_fail_when_the_peer_closes(server):
    c = rpc.connect(server.address)
    box = []
    done = threading.Event()
    c.call_async("later", callback=lambda ok, v: (box.append((ok, v)), done.set()))
    for _ in range(500):
        if server.deferred:
            break
        threading.Event().wait(0.01)
    server.close()
    assert done.wait(5)
    assert box[0][0] is False and isinstance(box[0][1], rpc.ConnectionClosed)
    assert c.notify("echo") in (True, False)  # never raises


def test_malformed_frame_closes_only_that_connection(server):
    import socket

    s = socket.socket(socket.AF_UNIX)
    s.connect(server.address[5:])
    s.sendall(b"\x05\x00\x00\x00garbage")
    s.close()
    c = rpc.connect(server.address)
    try:
        assert c.call("echo", 2) == (2,)
    finally:
        c.close()

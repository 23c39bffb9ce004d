"""Hostile HTTP against the running dashboard process (`skate start --head`'s): endless
headers, huge declared and streamed bodies, bad JSON, garbage, half-sent requests held
open -- each gets a clear 4xx or a closed connection, other clients are answered
meanwhile, and the dashboard's memory stays within a bound."""

import socket
import struct
import time
import urllib.request

import psutil
import pytest

pytestmark = pytest.mark.skate_only


def _port(head):
    return int(head.url.rsplit(":", 1)[1])


def _ask(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """The first bytes of the answer to ``data`` (b"" if the server just closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered and closed before all of it went
        try:
            return s.recv(64)
        except ConnectionResetError:
            return b""


def _stream(port: int, head: bytes, chunk: bytes, times: int) -> tuple[int, bytes]:
    """Send ``head`` then ``chunk`` up to ``times`` times; (chunks sent, the answer)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head)
        sent = 0
        try:
            for _ in range(times):
                s.sendall(chunk)
                sent += 1
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            return sent, s.recv(64)
        except ConnectionResetError:
            return sent, b""


def test_hostile_requests_get_clear_answers_and_memory_stays_bounded(head):
    port = _port(head)
    dash = psutil.Process(head.info["dashboard_pid"])
    assert head.get("/api/libraries") is not None
    before = dash.memory_info().rss
    auth = f"Authorization: Bearer {head.token}\r\n".encode()

    # an endless header line: refused while it arrives, never buffered
    sent, answer = _stream(port, b"GET /api/libraries HTTP/1.1\r\nHost: x\r\nX-Big: ",
                           b"a" * (1 << 20), 100)
    assert sent < 100 and (answer == b"" or answer.startswith(b"HTTP/1.1 4")), answer
    # a body declared past the limit: 413 before any of it is read
    declared = (b"POST /api/jobs/ HTTP/1.1\r\nHost: x\r\n" + auth +
                b"Content-Type: application/json\r\nContent-Length: 200000000\r\n\r\n")
    assert _ask(port, declared).startswith(b"HTTP/1.1 413")
    # a chunked body past the limit: 413 once past it (the rest is read and dropped)
    _, answer = _stream(port, b"POST /api/jobs/ HTTP/1.1\r\nHost: x\r\n" + auth +
                           b"Transfer-Encoding: chunked\r\n\r\n",
                           b"%x\r\n" % (1 << 20) + b"b" * (1 << 20) + b"\r\n", 100)
    assert answer.startswith(b"HTTP/1.1 413"), answer
    # not JSON, garbage, a wrong token: clear answers
    bad_json = (b"POST /api/jobs/ HTTP/1.1\r\nHost: x\r\n" + auth +
                b"Content-Type: application/json\r\nContent-Length: 9\r\n\r\n{not json")
    assert _ask(port, bad_json).startswith(b"HTTP/1.1 400")
    answer = _ask(port, b"\x00\x01\x02 garbage\r\n\r\n")
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer
    no_token = b"POST /api/jobs/ HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
    assert _ask(port, no_token).startswith(b"HTTP/1.1 401")

    grown = (dash.memory_info().rss - before) / 2**20
    assert grown < 48, f"the dashboard grew {grown:.0f} MiB"
    assert head.get("/api/libraries") is not None  # and it still answers


def test_half_sent_requests_do_not_hold_up_others(head):
    port = _port(head)
    slow = []
    try:
        for _ in range(50):  # each sends half a request, then nothing
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /api/libraries HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            slow.append(s)
        for _ in range(20):
            t = time.monotonic()
            with urllib.request.urlopen(f"{head.url}/api/libraries", timeout=5) as r:
                assert r.status == 200
            assert time.monotonic() - t < 2.0
    finally:
        for s in slow:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()

"""Hostile HTTP on the serve proxy's port: clear 4xx answers, nothing held up, no harm done."""

import socket
import struct
import time

import httpx
import psutil
import pytest

from skate import serve
from tests.serve.conftest import deployed

pytestmark = pytest.mark.skate_only
LIGHT = {"num_cpus": 0}


@serve.deployment(ray_actor_options=LIGHT)
async def echo_size(request):
    return str(len(await request.body()))


def _port(serve_url):
    return int(serve_url.rsplit(":", 1)[1])


def _ask(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """The first bytes of the answer to ``data`` (b"" if the server just closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        try:
            return s.recv(64)
        except ConnectionResetError:
            return b""


def test_oversized_malformed_and_hostile_requests_get_clear_answers(serve_url):
    port = _port(serve_url)
    with deployed(echo_size.bind(), "abuse"):
        big_header = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n"
        assert _ask(port, big_header).startswith(b"HTTP/1.1 431")
        many = b"".join(b"X-%d: v\r\n" % i for i in range(20_000))
        assert _ask(port, b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n").startswith(
            b"HTTP/1.1 431")
        declared = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 200000000\r\n\r\n"
        assert _ask(port, declared).startswith(b"HTTP/1.1 413")
        for junk in (b"\x00\x01\x02 garbage\r\n\r\n",
                     b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n"):
            answer = _ask(port, junk)
            assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer

        # a body past the limit sent in chunks (no Content-Length): 413 once it is passed
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"%x\r\n" % (1 << 20) + b"b" * (1 << 20) + b"\r\n"
            try:
                for _ in range(110):
                    s.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # answered and closed before the rest was sent
            assert s.recv(64).startswith(b"HTTP/1.1 413")
        assert httpx.post(f"{serve_url}/", content=b"x" * 1000).text == "1000"


def _listener_pid(port: int) -> int:
    (pid,) = {c.pid for c in psutil.net_connections("tcp")
              if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
    return pid


def test_an_endless_header_is_refused_while_it_arrives(serve_url):
    port = _port(serve_url)
    with deployed(echo_size.bind(), "endless"):
        proxy = psutil.Process(_listener_pid(port))
        before = proxy.memory_info().rss
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: ")
            sent = 0
            try:
                for _ in range(200):  # up to 200 MiB of one header line, never ended
                    s.sendall(b"a" * (1 << 20))
                    sent += 1
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused and closed long before
            assert s.recv(64).startswith(b"HTTP/1.1 431")
        assert sent < 200
        assert (proxy.memory_info().rss - before) / 2**20 < 32  # never buffered it
        assert httpx.post(f"{serve_url}/", content=b"x" * 10).text == "10"


def test_slow_clients_do_not_hold_up_others(serve_url):
    port = _port(serve_url)
    with deployed(echo_size.bind(), "slowloris"):
        slow = []
        try:
            for _ in range(50):  # each sends half a request, then nothing
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                slow.append(s)
            with httpx.Client(timeout=5) as client:
                for _ in range(20):
                    t = time.monotonic()
                    assert client.get(f"{serve_url}/").text == "0"
                    assert time.monotonic() - t < 2.0
        finally:
            for s in slow:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()

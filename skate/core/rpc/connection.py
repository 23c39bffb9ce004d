"""Framed, multiplexed request/reply connections over stream sockets.

Design: one reader thread per connection reads frames through a buffered file
(few syscalls) and either completes the waiter of a reply or calls the
handler with a request. Handlers run on the reader thread, so they must be
quick; one that must wait (a lease that is not free yet, an object not yet
made) returns :data:`DEFER` and answers later with ``conn.reply(id, value)``.
Writers hold a lock and send header and body in one ``sendmsg``.
"""

from __future__ import annotations

import itertools
import logging
import os
import pickle
import socket
import struct
import threading
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from skate.core.rpc.grpc_transport import GrpcListener

log = logging.getLogger(__name__)

REQUEST, REPLY, NOTIFY = 0, 1, 2
DEFER = object()
_HEADER = struct.Struct("<I")
_dumps = pickle.dumps
_loads = pickle.loads
MAX_FRAME = 1 << 28  # 256 MiB: larger values travel through the object store
_HELLO = b"SKATE1 "
_token: bytes = b""


def set_token(token: str | None) -> None:
    """The cluster token this process presents, and that its listeners demand."""
    global _token
    _token = (token or "").encode()


def current_token() -> str:
    return _token.decode()


_sending = threading.local()
_sending.depth = 0


def in_send() -> bool:
    """True while this thread writes a frame: an exception raised now (by a signal
    handler) would cut the frame in half and corrupt the stream for the peer."""
    return getattr(_sending, "depth", 0) > 0


class ConnectionClosed(ConnectionError):
    """The peer went away before answering."""


class _Waiter:
    """One reply awaited: a caller blocks on ``wait`` (a held lock), or a callback runs."""

    __slots__ = ("_lock", "ok", "value", "callback")

    def __init__(self, callback=None):
        self.callback = callback
        self._lock = threading.Lock()
        if callback is None:
            self._lock.acquire()
        self.ok: bool | None = None
        self.value: Any = None

    def set(self, ok, value):
        self.ok = ok
        self.value = value
        if self.callback is not None:
            try:
                self.callback(ok, value)
            except Exception:  # a callback bug must not kill the reader thread
                log.exception("reply callback failed")
        else:
            self._lock.release()

    def wait(self, timeout=None):
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
            raise TimeoutError("no reply in time")
        if self.ok:
            return self.value
        assert isinstance(self.value, BaseException)  # a failed reply carries the exception
        raise self.value


Handler = Callable[["Connection", str, tuple, int], Any]


class Connection:
    """One side of a socket connection; thread-safe for senders."""

    def __init__(self, sock: socket.socket | None, handler: Handler | None = None,
                 on_close: Callable[["Connection"], None] | None = None, name: str = "",
                 expect_token: bytes | None = None):
        self.sock = sock
        self.handler = handler
        self.on_close = on_close
        self.name = name
        self.closed = False
        self.peer_info: dict = {}  # what the peer said about itself (worker id, role, ...)
        self._rfile = sock.makefile("rb", buffering=1 << 16) if sock is not None else None
        self._send_lock = threading.Lock()
        self._waiters: dict[int, _Waiter] = {}
        self._ids = itertools.count(1)
        self._close_lock = threading.Lock()
        self._expect_token = expect_token  # server side: the hello frame must carry it
        self._reader = threading.Thread(target=self._read_loop, name=f"skate-conn-{name}",
                                        daemon=True)
        self._reader.start()

    @property
    def up(self) -> bool:
        """Usable now (as ``ReconnectingConnection.up``: a plain connection never comes back)."""
        return not self.closed

    # -- sending ---------------------------------------------------------
    def _send(self, msg) -> None:
        body = _dumps(msg, 5)
        header = _HEADER.pack(len(body))
        with self._send_lock:
            if self.closed:
                raise ConnectionClosed(f"connection {self.name} is closed")
            _sending.depth = getattr(_sending, "depth", 0) + 1  # see in_send
            try:
                self._write(header, body)
            except OSError as e:
                raise ConnectionClosed(f"connection {self.name} broke: {e}") from e
            finally:
                _sending.depth -= 1

    def _write(self, header: bytes, body: bytes) -> None:
        """Put one frame on the wire (under the send lock)."""
        assert self.sock is not None  # None only for subclasses with their own transport
        if len(body) < 65536:
            self.sock.sendall(header + body)
        else:
            self.sock.sendall(header)
            self.sock.sendall(body)

    def _frames(self):
        """The bodies of incoming frames, until the peer goes (socket transport)."""
        assert self._rfile is not None  # None only for subclasses with their own transport
        read = self._rfile.read
        unpack = _HEADER.unpack
        if self._expect_token is not None and not self._check_hello(read):
            return
        while True:
            header = read(4)
            if len(header) < 4:
                return
            (n,) = unpack(header)
            if n > MAX_FRAME:
                log.warning("dropping %s: a %d-byte frame is over the limit", self.name, n)
                return
            body = read(n)
            if len(body) < n:
                return
            yield body

    def call(self, method: str, *args, timeout: float | None = None):
        """Send a request and wait for its reply; the peer's exception re-raises here."""
        w = _Waiter()
        rid = next(self._ids)
        self._waiters[rid] = w
        try:
            self._send((REQUEST, rid, method, args))
        except ConnectionClosed:
            self._waiters.pop(rid, None)
            raise
        try:
            return w.wait(timeout)
        except TimeoutError:
            self._waiters.pop(rid, None)
            raise

    def call_async(self, method: str, *args, callback: Callable[[bool, Any], None]) -> None:
        """Send a request; ``callback(ok, value)`` runs on the reader thread."""
        w = _Waiter(callback)
        rid = next(self._ids)
        self._waiters[rid] = w
        try:
            self._send((REQUEST, rid, method, args))
        except ConnectionClosed as e:
            self._waiters.pop(rid, None)
            w.set(False, e)

    def notify(self, method: str, *args) -> bool:
        """Send a one-way message; False if the connection is gone (nobody left to tell)."""
        try:
            self._send((NOTIFY, 0, method, args))
        except ConnectionClosed:
            return False
        return True

    def reply(self, rid: int, value=None, ok: bool = True) -> None:
        try:
            self._send((REPLY, rid, ok, value))
        except ConnectionClosed:
            pass  # the asker is gone; nobody to tell
        except Exception as e:  # an unpicklable reply must still answer
            self._send((REPLY, rid, False, RuntimeError(f"cannot send reply: {e!r}")))

    # -- receiving -------------------------------------------------------
    def _check_hello(self, read) -> bool:
        """The first frame must be the raw hello with the token: nothing is unpickled before."""
        header = read(4)
        if len(header) < 4:
            return False
        (n,) = _HEADER.unpack(header)
        if n > 1024:
            log.warning("refused a connection on %s: no hello frame", self.name)
            return False
        body = read(n)
        import hmac

        if not body.startswith(_HELLO) or not hmac.compare_digest(body[len(_HELLO):],
                                                                 self._expect_token):
            log.warning("refused a connection on %s: wrong or missing cluster token", self.name)
            return False
        return True

    def _read_loop(self) -> None:
        try:
            for body in self._frames():
                if not self._on_frame(body):
                    break
        except Exception:  # a broken transport ends the connection, never the process
            pass
        finally:
            self.close()

    def _on_frame(self, body: bytes) -> bool:
        # A method of its own so that the message, its waiter and their callbacks are
        # released as soon as it is handled (loop locals would keep the last one alive).
        try:
            kind, rid, a, b = _loads(body)
        except Exception:
            log.warning("dropping a malformed frame on %s", self.name)
            return False
        if kind == REPLY:
            w = self._waiters.pop(rid, None)
            if w is not None:
                w.set(a, b)
        else:
            self._dispatch(kind, rid, a, b)
        return True

    def _close_transport(self) -> None:
        assert self.sock is not None  # None only for subclasses with their own transport
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def _dispatch(self, kind, rid, method, args) -> None:
        handler = self.handler
        try:
            if handler is None:
                raise RuntimeError(f"no handler for {method!r}")
            result = handler(self, method, args, rid)
        except Exception as e:
            if kind == REQUEST:
                self.reply(rid, e, ok=False)
            else:
                log.exception("notification %s failed", method)
            return
        if kind == REQUEST and result is not DEFER:
            self.reply(rid, result)

    def close(self) -> None:
        with self._close_lock:
            if self.closed:
                return
            self.closed = True
        self._close_transport()
        err = ConnectionClosed(f"connection {self.name} closed")
        for rid in list(self._waiters):
            w = self._waiters.pop(rid, None)
            if w is not None:
                w.set(False, err)
        if self.on_close is not None:
            try:
                self.on_close(self)
            except Exception:
                log.exception("on_close failed")


def unix_path(address: str) -> str | None:
    """The Unix socket path inside an address (plain or dual ``unix:...|grpc:...``), if any."""
    for part in address.split("|"):
        if part.startswith("unix:"):
            return part[5:]
    return None


def _pick(address: str) -> str:
    """Of a dual address, the Unix socket when it is on this machine, else TCP."""
    if "|" not in address:
        return address
    parts = address.split("|")
    for part in parts:
        if part.startswith("unix:") and os.path.exists(part[5:]):
            return part
    return next((p for p in parts if p.startswith(("grpc:", "tcp:"))), parts[0])


def _parse(address: str):
    if address.startswith("unix:"):
        return socket.AF_UNIX, address[5:]
    if address.startswith("tcp:"):
        host, port = address[4:].rsplit(":", 1)
        return socket.AF_INET, (host, int(port))
    raise ValueError(f"bad address {address!r}: expected unix:/path or tcp:host:port")


def connect(address: str, handler: Handler | None = None, on_close=None, name: str = "",
            timeout: float = 10.0, token: str | None = None) -> Connection:
    """Connect and present the cluster token (this process's, or ``token``)."""
    picked = _pick(address)
    if picked.startswith("grpc:"):
        from skate.core.rpc.grpc_transport import connect_grpc

        return connect_grpc(picked[5:], handler, on_close, name or address, timeout,
                            _token if token is None else token.encode())
    family, where = _parse(picked)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(where)
    except OSError:
        sock.close()
        raise
    sock.settimeout(None)
    if family == socket.AF_INET:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    hello = _HELLO + (_token if token is None else token.encode())
    try:
        sock.sendall(_HEADER.pack(len(hello)) + hello)
    except OSError:
        sock.close()
        raise
    return Connection(sock, handler, on_close, name or address)


def listen(address: str, handler: Handler, on_close=None, name: str = "server"):
    """A listener on the Unix socket ``address``, and also on gRPC when this node is reachable
    from other machines (``config.node_tcp_host()``: set by ``skate start``): its address is
    then ``unix:...|grpc:host:port`` and peers pick what they can reach."""
    from skate.core.config import node_tcp_host

    host = node_tcp_host()
    unix = Listener(address, handler, on_close=on_close, name=name)
    if not host:
        return unix
    from skate.core.rpc.grpc_transport import GrpcListener

    return _DualListener(unix, GrpcListener(f"{host}:0", handler, on_close=on_close,
                                            name=name + "-grpc"))


class _DualListener:
    def __init__(self, unix: Listener, tcp: GrpcListener):
        self._parts = (unix, tcp)
        self.address = f"{unix.address}|{tcp.address}"

    @property
    def connections(self):
        return self._parts[0].connections | self._parts[1].connections

    def close(self) -> None:
        for p in self._parts:
            p.close()


class Listener:
    """Accepts connections on ``address`` and gives each the same handler."""

    def __init__(self, address: str, handler: Handler, on_connect=None, on_close=None,
                 name: str = "server"):
        family, where = _parse(address)
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        if family == socket.AF_UNIX:
            try:
                os.unlink(where)
            except FileNotFoundError:
                pass
        else:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(where)
        if family == socket.AF_INET:
            address = f"tcp:{where[0]}:{self.sock.getsockname()[1]}"
        self.address = address
        self.sock.listen(512)
        self.handler = handler
        self.on_connect = on_connect
        self.on_close = on_close
        self.name = name
        self.connections: set[Connection] = set()
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, name=f"skate-accept-{name}",
                                        daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                sock, _ = self.sock.accept()
            except OSError:
                break
            if sock.family == socket.AF_INET:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(sock, self.handler, self._closed_conn, name=f"{self.name}-peer",
                              expect_token=_token)
            self.connections.add(conn)
            if self.on_connect:
                self.on_connect(conn)

    def _closed_conn(self, conn: Connection) -> None:
        self.connections.discard(conn)
        if self.on_close:
            self.on_close(conn)

    def close(self) -> None:
        self._closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for c in list(self.connections):
            c.close()

"""The bulk data path between nodes: an object's bytes over one plain TCP socket.

Python gRPC moves a 4 MiB message at a time through several copies and
thread hand-offs; on this machine it reaches 37-55% of what one loopback
socket does. So the node manager also serves objects on a plain socket, one
object per connection, and the pulling node reads them straight into its
arena. The gRPC path (:mod:`transfer`) stays as the fallback.

The exchange (all integers little-endian)::

    puller -> server   MAGIC (8 bytes) | u16 n | token (n bytes) | u16 m | object id (m bytes)
                       | u16 k | the puller's node id (k bytes, ASCII)
    server -> puller   u8 status | u64 size
                       then, when status is OK, ``size`` bytes
    puller -> server   one byte (ACK), once every byte has arrived

Copies: the server hands the kernel the object's pages with ``sendfile`` from
the arena file (or the spill file), so nothing is copied in user space on
that side; the puller ``recv_into``\\ s a writable view of the block it
reserved in its own arena. One copy in all, by the kernel, into the other
node's separate arena. Because ``sendfile`` passes page references, not
copies, the server keeps the object pinned until the puller's ACK says the
bytes have landed (otherwise the block could be freed and reused while the
kernel still reads from it).

The token is checked before anything else is read, with a constant-time
compare; a peer without it gets status REFUSED and the connection closes.
Every length is bounded and every read has a deadline, so garbage or a
silent peer costs one short-lived thread, never the node manager.
"""

from __future__ import annotations

import hmac
import logging
import socket
import struct
import threading

log = logging.getLogger(__name__)

MAGIC = b"SKATEOB1"
OK, MISSING, REFUSED, BAD_REQUEST = 0, 1, 2, 3
ACK = b"\x01"
MAX_TOKEN = 1024
MAX_OID = 64
MAX_NODE_ID = 128
HEADER_TIMEOUT_S = 10.0  # to send the request / read the reply header
IDLE_TIMEOUT_S = 60.0  # longest wait for progress once bytes flow
MAX_CONNECTIONS = 64  # served at once; more are closed at once (each costs a thread)
SOCKET_BUFFER = 4 * 1024 * 1024
_U16 = struct.Struct("<H")
_REPLY = struct.Struct("<BQ")


class StreamRefused(ConnectionError):
    """The server refused the request (wrong token, malformed request)."""


class StreamMissing(LookupError):
    """The server does not hold the object."""


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise ConnectionError(f"peer closed after {got} of {n} bytes")
        got += k
    return bytes(buf)


class StreamServer:
    """Serves this node's objects over plain TCP, one object per connection.

    ``open_object(oid, node)`` returns ``(fd, offset, size, release)`` for a
    sealed local object (pinned, ``fd`` readable, until ``release()``), or
    None; ``node`` is the puller's node id.
    """

    def __init__(self, host: str, open_object, token: str = ""):
        self._open = open_object
        self._token = token.encode()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.address = f"{host}:{self.port}"
        self._closed = False
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._thread = threading.Thread(target=self._accept_loop, name="skate-stream-accept",
                                        daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                sock, peer = self._sock.accept()
            except OSError:
                break
            if not self._slots.acquire(blocking=False):
                log.warning("refused an object stream from %s: %d already open", peer,
                            MAX_CONNECTIONS)
                sock.close()
                continue
            threading.Thread(target=self._serve, args=(sock, peer), name="skate-stream-send",
                             daemon=True).start()

    def _serve(self, sock: socket.socket, peer) -> None:
        try:
            with sock:
                sock.settimeout(HEADER_TIMEOUT_S)
                request = self._read_request(sock, peer)
                if request is not None:
                    self._send_object(sock, *request)
        except Exception as e:  # noqa: BLE001 - a bad or vanished peer ends only its connection
            log.info("object stream to %s ended: %r", peer, e)
        finally:
            self._slots.release()

    def _read_request(self, sock: socket.socket, peer) -> tuple | None:
        """(object id, puller's node id) of a well-formed request with the token, else None
        (after telling the peer why)."""
        head = _recv_exact(sock, len(MAGIC) + _U16.size)
        (n,) = _U16.unpack_from(head, len(MAGIC))
        if head[:len(MAGIC)] != MAGIC or n > MAX_TOKEN:
            log.warning("refused an object stream from %s: malformed request", peer)
            sock.sendall(_REPLY.pack(BAD_REQUEST, 0))
            return None
        token = _recv_exact(sock, n)
        if not hmac.compare_digest(token, self._token):
            log.warning("refused an object stream from %s: wrong or missing cluster token", peer)
            sock.sendall(_REPLY.pack(REFUSED, 0))
            return None
        (m,) = _U16.unpack(_recv_exact(sock, _U16.size))
        oid = _recv_exact(sock, m) if 0 < m <= MAX_OID else None
        (k,) = _U16.unpack(_recv_exact(sock, _U16.size)) if oid is not None else (-1,)
        node = _recv_exact(sock, k) if 0 <= k <= MAX_NODE_ID else None
        if oid is None or node is None or not node.isascii():
            log.warning("refused an object stream from %s: malformed request", peer)
            sock.sendall(_REPLY.pack(BAD_REQUEST, 0))
            return None
        return oid, node.decode()

    def _send_object(self, sock: socket.socket, oid: bytes, node: str) -> None:
        opened = self._open(oid, node)
        if opened is None:
            sock.sendall(_REPLY.pack(MISSING, 0))
            return
        fd, offset, size, release = opened
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
            sock.sendall(_REPLY.pack(OK, size))
            sock.settimeout(IDLE_TIMEOUT_S)  # per wait for the puller to make room
            with open(fd, "rb", closefd=False) as f:
                sent = sock.sendfile(f, offset, size) if size else 0
            if sent != size:
                raise ConnectionError(f"sent {sent} of {size} bytes")
            # the kernel may still be reading our pages: keep them pinned until the ACK
            if sock.recv(1) != ACK:
                raise ConnectionError("the puller did not confirm the transfer")
        finally:
            release()

    def stop(self) -> None:
        self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()


def pull(address: str, oid: bytes, begin, token: str = "", node_id: str = "",
         connect_timeout: float = HEADER_TIMEOUT_S) -> None:
    """Read object ``oid`` from the stream server at ``address`` ("host:port") into this
    node (``node_id``, which the server remembers so that it can tell us when to drop
    the copy).

    ``begin(size)`` returns ``(view, write)``: a writable memoryview of ``size``
    bytes to receive into, or None and ``write(pos, data)`` to hand chunks to.
    Raises StreamRefused, StreamMissing or OSError; ``begin`` is called only
    once the server has the object and has started to send it.
    """
    host, port = address.rsplit(":", 1)
    tok = token.encode()
    me = node_id.encode()
    request = (MAGIC + _U16.pack(len(tok)) + tok + _U16.pack(len(oid)) + oid
               + _U16.pack(len(me)) + me)
    with socket.create_connection((host, int(port)), timeout=connect_timeout) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
        sock.sendall(request)
        status, size = _REPLY.unpack(_recv_exact(sock, _REPLY.size))
        if status == MISSING:
            raise StreamMissing(f"object {oid.hex()} is not on {address}")
        if status != OK:
            why = "wrong or missing cluster token" if status == REFUSED else "malformed request"
            raise StreamRefused(f"{address} refused to send {oid.hex()}: {why}")
        sock.settimeout(IDLE_TIMEOUT_S)
        view, write = begin(size)
        if view is not None:
            _recv_into(sock, view, size)
        else:
            _recv_chunks(sock, write, size)
        sock.sendall(ACK)


def _recv_into(sock: socket.socket, view: memoryview, size: int) -> None:
    got = 0
    while got < size:
        n = sock.recv_into(view[got:], size - got)
        if n == 0:
            raise ConnectionError(f"the sender closed after {got} of {size} bytes")
        got += n


def _recv_chunks(sock: socket.socket, write, size: int) -> None:
    """Into a file (the object did not fit the arena): through one reused buffer."""
    buf = memoryview(bytearray(min(size, SOCKET_BUFFER)))
    got = 0
    while got < size:
        n = sock.recv_into(buf, min(len(buf), size - got))
        if n == 0:
            raise ConnectionError(f"the sender closed after {got} of {size} bytes")
        write(got, buf[:n])
        got += n

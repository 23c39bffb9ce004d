"""Moving objects between nodes, pulled by the node that needs it.

The bytes take the plain-socket path of :mod:`stream` when the other node
offers one (it moves them with one kernel copy, at close to what a loopback
socket does). This module is the control of a pull and its fallback: a gRPC
stream of chunks. Each node manager serves ``/skate.ObjectTransfer/Pull``:
the request is an object id, the reply a stream whose first message is the
object's size and the rest its bytes in CHUNK-sized pieces, read straight
from the sender's arena (pinned meanwhile). The receiver writes each chunk
into its own arena as it arrives, so a transfer never holds more than a
chunk or two in memory beyond the two stored copies. Calls carry the cluster
token as metadata.
"""

from __future__ import annotations

import logging
import struct
import threading
from concurrent import futures
from typing import Any

from skate.core.object_store import stream

log = logging.getLogger(__name__)

CHUNK = 4 * 1024 * 1024
METHOD = "/skate.ObjectTransfer/Pull"
_SIZE = struct.Struct("<q")


class TransferServer:
    """Serves this node's objects to other nodes.

    ``open_object(oid, node)`` returns ``(memoryview, release)`` for a sealed
    local object (pinned until ``release()``), or None; ``node`` is the
    puller's node id (call metadata ``skate-node``).
    """

    def __init__(self, host: str, open_object, token: str = ""):
        import grpc

        self._open = open_object
        self._token = token
        handler = grpc.method_handlers_generic_handler("skate.ObjectTransfer", {
            "Pull": grpc.unary_stream_rpc_method_handler(self._pull),
        })
        self._server = grpc.server(futures.ThreadPoolExecutor(8, "skate-transfer"),
                                   options=[("grpc.max_send_message_length", CHUNK + 1024)])
        self._server.add_generic_rpc_handlers((handler,))
        self.port = self._server.add_insecure_port(f"{host}:0")
        self.address = f"{host}:{self.port}"
        self._server.start()

    def _pull(self, request: bytes, context):
        import grpc

        metadata = dict(context.invocation_metadata())
        if self._token and metadata.get("skate-token") != self._token:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong cluster token")
        opened = self._open(request, metadata.get("skate-node", ""))
        if opened is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"object {request.hex()} is not on this node")
        view, release = opened
        try:
            yield _SIZE.pack(len(view))
            for pos in range(0, len(view), CHUNK):
                yield bytes(view[pos:pos + CHUNK])
        finally:
            view.release()
            release()

    def stop(self) -> None:
        self._server.stop(grace=0.5)


class TransferClient:
    """Pulls objects from other nodes; one channel per remote node, reused."""

    def __init__(self, token: str = "", node_id: str = ""):
        self._token = token
        self._node_id = node_id  # this node: the sender tells us when to drop our copy
        self._channels: dict = {}
        self._lock = threading.Lock()

    def _stub(self, address: str):
        import grpc

        with self._lock:
            ch = self._channels.get(address)
            if ch is None:
                ch = self._channels[address] = grpc.insecure_channel(
                    address, options=[("grpc.max_receive_message_length", CHUNK + 1024)])
        return ch.unary_stream(METHOD)

    def pull(self, address: str, oid: bytes, begin, timeout: float = 600.0,
             stream_address: str = "") -> None:
        """Copy object ``oid`` here from the node serving gRPC at ``address`` (and plain
        sockets at ``stream_address``, tried first).

        ``begin(size)`` is called once and returns ``(view, write)``: a writable
        memoryview to receive into, or None and ``write(pos, data)``. When the socket
        path cannot connect or breaks part way (not for a refusal, a missing object or
        a silent sender), the gRPC path starts over into the same destination.
        """
        sink = _Sink(begin)
        if stream_address:  # a connection refused or broken part way: the gRPC path
            try:
                stream.pull(stream_address, oid, sink.begin, self._token, self._node_id)
                return
            except (stream.StreamRefused, stream.StreamMissing, TimeoutError):
                raise  # the gRPC path would be refused, miss it, or wait on the same node
            except OSError as e:
                log.warning("socket transfer of %s from %s failed (%r); retrying over gRPC",
                            oid.hex(), stream_address, e)
        call = self._stub(address)(oid, timeout=timeout,
                                   metadata=(("skate-token", self._token),
                                             ("skate-node", self._node_id)))
        started = False
        pos = 0
        for msg in call:
            if not started:
                (size,) = _SIZE.unpack(msg)
                sink.begin(size)
                started = True
                continue
            sink.write(pos, msg)
            pos += len(msg)
        if not started:
            raise ConnectionError(f"empty transfer of {oid.hex()} from {address}")

    def close(self) -> None:
        with self._lock:
            for ch in self._channels.values():
                ch.close()
            self._channels.clear()


class _Sink:
    """Where one pull writes: ``begin`` is called once, even if the pull starts over."""

    def __init__(self, begin):
        self._begin = begin
        self._size: int | None = None
        self._view: Any = None  # a writable view of the destination, or None: use _write
        self._write: Any = None

    def begin(self, size: int):
        if self._size is None:
            self._size = size
            self._view, self._write = self._begin(size)
        elif size != self._size:
            raise ConnectionError(f"the object's size changed from {self._size} to {size}")
        return self._view, self._write

    def write(self, pos: int, data) -> None:
        if self._view is not None:
            self._view[pos:pos + len(data)] = data
        else:
            self._write(pos, data)

"""Moving objects between nodes: a gRPC stream of chunks, pulled by the node that needs it.

Each node manager serves ``/skate.ObjectTransfer/Pull``: the request is an
object id, the reply a stream whose first message is the object's size and
the rest its bytes in CHUNK-sized pieces, read straight from the sender's
arena (pinned meanwhile). The receiver writes each chunk into its own arena
as it arrives, so a transfer never holds more than a chunk or two in memory
beyond the two stored copies. Calls carry the cluster token as metadata.
"""

from __future__ import annotations

import logging
import struct
import threading
from concurrent import futures

log = logging.getLogger(__name__)

CHUNK = 4 * 1024 * 1024
METHOD = "/skate.ObjectTransfer/Pull"
_SIZE = struct.Struct("<q")


class TransferServer:
    """Serves this node's objects to other nodes.

    ``open_object(oid)`` returns ``(memoryview, release)`` for a sealed local
    object (pinned until ``release()``), or None.
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

        if self._token and dict(context.invocation_metadata()).get("skate-token") != self._token:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong cluster token")
        opened = self._open(request)
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

    def __init__(self, token: str = ""):
        self._token = token
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

    def pull(self, address: str, oid: bytes, begin, timeout: float = 600.0) -> None:
        """Stream object ``oid`` from ``address``: ``begin(size)`` returns ``write(pos, data)``."""
        stream = self._stub(address)(oid, timeout=timeout,
                                     metadata=(("skate-token", self._token),))
        write = None
        pos = 0
        for msg in stream:
            if write is None:
                (size,) = _SIZE.unpack(msg)
                write = begin(size)
                continue
            write(pos, msg)
            pos += len(msg)
        if write is None:
            raise ConnectionError(f"empty transfer of {oid.hex()} from {address}")

    def close(self) -> None:
        with self._lock:
            for ch in self._channels.values():
                ch.close()
            self._channels.clear()

"""A bound on what one client can make the proxy hold before its request has headers.

uvicorn's httptools protocol buffers a request's head (its request line and headers)
until the head is complete, with no limit: a client sending an endless header line
makes the proxy's memory grow until it is killed. The proxy checks header sizes once
the headers are in (``proxy.MAX_HEADER_BYTES``: a 431), which is too late for that.
:func:`bounded_head_protocol` makes the protocol count the bytes that arrive while a
head is still incomplete and answer 431 and close the connection past the limit. The
count costs an addition per read, and only until a request's headers are complete.

Example::

    config = uvicorn.Config(app, http=bounded_head_protocol(96 * 1024))
"""

from __future__ import annotations

STATUS_431 = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; "
              b"charset=utf-8\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s")


def bounded_head_protocol(max_head_bytes: int):
    """uvicorn's httptools protocol class, refusing request heads past ``max_head_bytes``;
    None when httptools is missing (uvicorn then picks h11, which has a bound of its own)."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return None

    class BoundedHeadProtocol(HttpToolsProtocol):
        def connection_made(self, transport) -> None:  # type: ignore[override]
            self._in_head, self._head_bytes, self._refused = True, 0, False
            super().connection_made(transport)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            super().data_received(data)
            if self._in_head:  # none of it completed a head: it is all head bytes
                self._head_bytes += len(data)
                if self._head_bytes > max_head_bytes:
                    self._refuse()

        def on_headers_complete(self) -> None:
            self._in_head = False
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_head, self._head_bytes = True, 0  # the next request's head begins

        def send_400_response(self, msg: str) -> None:
            if not self._refused:
                super().send_400_response(msg)

        def _refuse(self) -> None:
            self._refused = True
            msg = b"Request headers larger than %d KiB." % (max_head_bytes // 1024)
            self.transport.write(STATUS_431 % (len(msg), msg))
            self.transport.close()

    return BoundedHeadProtocol

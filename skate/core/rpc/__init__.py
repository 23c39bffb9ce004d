"""The wire: length-prefixed pickle frames over sockets.

Every Skate process talks to others through :class:`Connection` objects. One
frame is ``<u32 length><pickle>``; a message is one of

* ``(REQUEST, id, method, args)``: the peer answers with a REPLY;
* ``(REPLY, id, ok, value)``: ``ok`` False means ``value`` is an exception;
* ``(NOTIFY, 0, method, args)``: one-way.

Inside one machine the sockets are Unix domain sockets (``unix:/path``); TCP
(``tcp:host:port``) works the same way. Measured here: a Unix socket round
trip between two Python processes is ~40 us, a gRPC unary call ~250 us, so
the hot paths (task push, actor calls, object lookups) use this transport.
"""

from skate.core.rpc.client import Client  # noqa: F401
from skate.core.rpc.connection import (  # noqa: F401
    DEFER,
    Connection,
    ConnectionClosed,
    Listener,
    connect,
    current_token,
    in_send,
    listen,
    set_token,
    unix_path,
)

"""The base of the per-role clients: a typed face on one connection.

Each role's ``client.py`` subclasses :class:`Client` with one method per
RPC its server answers, so callers never spell a method name and the type
checker sees the arguments. A client holds no state but its connection, so
making one per call costs an allocation; callers that talk often keep one.
"""

from __future__ import annotations

from typing import Union

from skate.core.rpc import methods
from skate.core.rpc.connection import Connection
from skate.core.rpc.reconnecting import ReconnectingConnection

#: What a client talks through: a connection, or the link to a server that may restart.
Link = Union[Connection, ReconnectingConnection]


class Client:
    """A connection to a server of one role; ``conn`` is shared with other clients."""

    __slots__ = ("conn",)

    def __init__(self, conn: Link):
        self.conn = conn

    @property
    def closed(self) -> bool:
        return self.conn.closed

    def close(self) -> None:
        self.conn.close()

    def ping(self, timeout: float | None = None) -> str:
        return self.conn.call(methods.PING, timeout=timeout)

"""The dashboard's settings, one frozen record validated on construction.

>>> DashboardConfig(session_dir="/tmp/s", cluster_address="unix:/tmp/s/gcs.sock").port
8265
>>> DashboardConfig(session_dir="/tmp/s", cluster_address="x", port=70000)
Traceback (most recent call last):
...
ValueError: port must be 0 (pick a free one) or 1-65535, got 70000.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8265  # Ray's


@dataclass(frozen=True)
class DashboardConfig:
    session_dir: str
    """The head's session directory: its token, its logs (job logs go there too)."""
    cluster_address: str
    """The control store's address: what the dashboard reads and the jobs' drivers join."""
    host: str = DEFAULT_HOST
    """Interface to listen on; 127.0.0.1 unless told otherwise (anyone who reaches the
    port can read the cluster's state, and with the token run code)."""
    port: int = DEFAULT_PORT
    """TCP port; 0 picks a free one."""
    read_token: bool = False
    """Reads (every GET under /api/) need the cluster token too, not only writes."""
    sample_interval_s: float = 2.0
    """How often the resource history is sampled."""
    history_s: float = 600.0
    """How much resource history is kept (a ring buffer: older samples are dropped)."""
    stop_grace_s: float = 3.0
    """A stopped job gets SIGTERM, then SIGKILL after this long."""
    owner_pid: int = 0
    """Exit when this process exits (a private cluster's driver); 0: no owner."""

    def __post_init__(self):
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0 (pick a free one) or 1-65535, got {self.port!r}.")
        for name in ("sample_interval_s", "history_s", "stop_grace_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}.")

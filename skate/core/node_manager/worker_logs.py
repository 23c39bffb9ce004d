"""Workers' output, kept in files: ``<session>/logs/worker-<worker id>-<pid>.out|.err``.

The node manager reads every worker's stdout and stderr from pipes (the
worker pool's pump thread); besides forwarding lines to drivers that asked
for them, it appends them here, so ``skate logs`` and the dashboard can show
what an actor or task printed after the driver is gone. A file past
``max_bytes`` is rotated once (to ``<name>.1``, replacing an older one), so
a chatty worker holds at most twice that much disk.

Reading is by name, restricted to this node's log folder: ``read(name,
offset, length)`` answers a byte range, a negative offset counting from the
end (``tail``), so a follower polls with the offset it got back.
"""

from __future__ import annotations

import os
import re
import threading
from typing import BinaryIO

DEFAULT_MAX_BYTES = 256 * 2**20
MAX_OPEN = 256  # open handles at most (output can arrive after its worker's exit)
MAX_READ = 4 * 2**20  # one reply's bytes at most: larger reads come in pieces
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


class WorkerLogs:
    """Append-only files of the workers' output, in ``folder``.

    Invariant: an open file's size in ``_sizes`` is the bytes this process wrote to
    it since it was (re)opened plus its size then.
    """

    def __init__(self, folder: str, max_bytes: int = DEFAULT_MAX_BYTES):
        self.folder = folder
        self.max_bytes = max_bytes
        self._files: dict[tuple[str, str], BinaryIO] = {}  # (worker id, stream) -> file
        self._sizes: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    @staticmethod
    def file_name(worker_id: str, pid: int, stream: str) -> str:
        return f"worker-{worker_id}-{pid}.{'err' if stream == 'stderr' else 'out'}"

    def write(self, worker_id: str, pid: int, stream: str, lines: list) -> None:
        data = ("\n".join(lines) + "\n").encode("utf-8", "replace")
        key = (worker_id, stream)
        with self._lock:
            f = self._files.get(key)
            if f is None:
                path = os.path.join(self.folder, self.file_name(worker_id, pid, stream))
                if len(self._files) >= MAX_OPEN:  # the oldest goes; a write reopens it
                    old = next(iter(self._files))
                    self._files.pop(old).close()
                    self._sizes.pop(old, None)
                f = self._files[key] = open(path, "ab", buffering=0)  # type: ignore[assignment]
                self._sizes[key] = f.tell()
            if self._sizes[key] + len(data) > self.max_bytes and self._sizes[key]:
                f = self._rotate(key, f)
            f.write(data)
            self._sizes[key] += len(data)

    def _rotate(self, key, f: BinaryIO) -> BinaryIO:
        path = f.name
        f.close()
        os.replace(path, path + ".1")
        f = self._files[key] = open(path, "ab", buffering=0)  # type: ignore[assignment]
        self._sizes[key] = 0
        return f

    def close(self, worker_id: str) -> None:
        """The worker exited: its files stay, their handles go."""
        with self._lock:
            for stream in ("stdout", "stderr"):
                f = self._files.pop((worker_id, stream), None)
                self._sizes.pop((worker_id, stream), None)
                if f is not None:
                    f.close()

    def close_all(self) -> None:
        with self._lock:
            for f in self._files.values():
                f.close()
            self._files.clear()
            self._sizes.clear()

    def list(self) -> list[tuple[str, int]]:
        """Every log file of this node (the node's own logs too): (name, size), by name."""
        out = []
        for entry in os.scandir(self.folder):
            if entry.is_file():
                out.append((entry.name, entry.stat().st_size))
        return sorted(out)

    def read(self, name: str, offset: int, length: int) -> tuple[bytes, int, int]:
        """(data, the offset after it, the file's size) of a file in this node's log folder.
        A negative ``offset`` counts from the end. FileNotFoundError for an unknown name."""
        if not _NAME.match(name) or name.startswith("."):
            raise FileNotFoundError(f"no log file {name!r} on this node")
        try:
            f = open(os.path.join(self.folder, name), "rb")
        except (FileNotFoundError, IsADirectoryError):
            raise FileNotFoundError(f"no log file {name!r} on this node (`skate logs` lists "
                                    f"them)") from None
        with f:
            size = os.fstat(f.fileno()).st_size
            start = max(0, size + offset) if offset < 0 else min(offset, size)
            f.seek(start)
            data = f.read(max(0, min(length, MAX_READ)))
        return data, start + len(data), size

"""Removing what dead sessions left behind: arenas in /dev/shm and session folders.

A session's processes clean up after themselves when they stop, and a private
node whose driver is killed removes its own session. What nobody is left to
clean is what a group of processes dying together leaves (a test runner's
timeout killing a driver, its node manager and its control store with kill -9;
the OOM killer; a container stopped hard): arenas holding real memory in
/dev/shm and session folders with spill files.

Ownership is a lock the kernel drops on any death. Every process that owns a
session folder holds a shared ``flock`` on its ``owners.lock`` for its whole
life; a node manager holds one on its arena file. ``reap()`` tries each lock
exclusively without waiting: getting it proves no owner is alive, and the
thing is removed. Invariants:

- a folder or arena is removed only while ``reap`` holds its lock exclusively,
  so never under a live owner (owners take their lock before they use it);
- an arena has its lock before it has its name: the store creates and locks a
  hidden file, then links it to the arena's name (``reap`` skips hidden names);
- a session started by ``skate start`` (a ``keep`` file in it) keeps its
  folder -- logs, token and the control store's database, for a restart with
  ``--session-dir`` -- and loses only its spill files; as ``skate stop`` does.
- folders made before ownership locks existed (no ``owners.lock``) are removed
  only when the pid in their name is gone, no socket in them answers and they
  have not changed for ``LEGACY_GRACE_S``.

The last owner of a session to stop removes it (``leave_session``); node
managers run ``reap`` once they are up (off the driver's start-up path),
so ``skate.init()`` and ``skate start`` on a machine clean what earlier
sessions left.

Example::

    from skate.core.leftovers import reap
    removed = reap()          # what this machine's dead sessions left
    print(removed.sessions, removed.arenas)
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass, field

from skate.core.pids import alive

log = logging.getLogger(__name__)

LOCK = "owners.lock"
KEEP = "keep"
ARENA_PREFIX = "skate-"
LEGACY_GRACE_S = 60.0
_LEGACY_NAME = re.compile(r"^s\d{10}-p(\d+)-[0-9a-f]{6}$")


def hold_session(session_dir: str) -> int:
    """Take a shared ownership lock on ``session_dir`` for as long as the returned fd is
    open (close it, or exit, to let go). Not inherited by programs this process runs."""
    fd = os.open(os.path.join(session_dir, LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def leave_session(fd: int, session_dir: str) -> bool:
    """Let go of this process's share of ``session_dir`` (``fd`` from ``hold_session``)
    and, if it was the last owner, remove the folder (only its spill files, if it is
    kept); True if this removed it. The last process of a session to stop cleans it, so
    one that stops while another still writes there never races it."""
    os.close(fd)
    out = Reaped()
    try:
        _reap_session(session_dir, out)
    except OSError:
        return False
    return bool(out.sessions)


def create_arena(path: str) -> int:
    """Create the arena file ``path`` (FileExistsError if there is one), owned by this
    process -- locked -- from the moment it has its name, for as long as the returned fd
    is open."""
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        os.link(tmp, path)  # fails if the name is taken, as O_EXCL would
    except BaseException:
        os.close(fd)
        raise
    finally:
        os.unlink(tmp)
    return fd


def mark_kept(session_dir: str) -> None:
    """A session whose folder outlives its processes (``skate start``)."""
    open(os.path.join(session_dir, KEEP), "a").close()


@dataclass
class Reaped:
    sessions: list = field(default_factory=list)  # folders removed
    spills: list = field(default_factory=list)  # kept sessions whose spill files went
    arenas: list = field(default_factory=list)  # arena files removed


def reap(temp_dir: str | None = None, shm_dir: str | None = None,
         keep: tuple = ()) -> Reaped:
    """Remove the session folders under ``temp_dir`` and the arenas under ``shm_dir``
    (default: this machine's, from config) whose owners are all gone. ``keep``: session
    folders to leave alone whatever their state (one being restarted)."""
    from skate.core.config import SHM_DIR, TEMP_DIR

    out = Reaped()
    temp_dir = temp_dir or TEMP_DIR
    keep_real = {os.path.realpath(k) for k in keep}
    for name in _listdir(temp_dir):
        path = os.path.join(temp_dir, name)
        if os.path.realpath(path) in keep_real or not os.path.isdir(path):
            continue
        try:
            _reap_session(path, out)
        except OSError as e:  # another user's folder, a race with its owner: not ours now
            log.debug("could not reap %s: %s", path, e)
    for name in _listdir(shm_dir or SHM_DIR):
        if name.startswith(ARENA_PREFIX):  # not ".skate-…": one being made
            path = os.path.join(shm_dir or SHM_DIR, name)
            try:
                if _reap_arena(path):
                    out.arenas.append(path)
            except OSError as e:
                log.debug("could not reap %s: %s", path, e)
    return out


def _listdir(path: str) -> list:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _reap_session(path: str, out: Reaped) -> None:
    lock = os.path.join(path, LOCK)
    if not os.path.exists(lock):
        if _legacy_dead(path):
            shutil.rmtree(path, ignore_errors=True)
            out.sessions.append(path)
        return
    fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # an owner is alive
        if os.path.exists(os.path.join(path, KEEP)):
            # its own spill folder, and those of the nodes whose folders are inside it
            spills = [os.path.join(path, "spill")] + [
                os.path.join(path, n, "spill") for n in _listdir(path)
                if os.path.isdir(os.path.join(path, n, "spill"))]
            if any(_listdir(sp) for sp in spills):
                for sp in spills:
                    shutil.rmtree(sp, ignore_errors=True)
                out.spills.append(path)
        else:
            shutil.rmtree(path, ignore_errors=True)
            out.sessions.append(path)
    finally:
        os.close(fd)


def _legacy_dead(path: str) -> bool:
    m = _LEGACY_NAME.match(os.path.basename(path))
    if not m or alive(int(m.group(1))):
        return False
    if time.time() - os.stat(path).st_mtime < LEGACY_GRACE_S:
        return False
    for sock in ("gcs.sock", "raylet.sock"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(os.path.join(path, sock))
            return False  # somebody answers
        except OSError:
            pass
        finally:
            s.close()
    return True


def _reap_arena(path: str) -> bool:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        os.unlink(path)
        return True
    finally:
        os.close(fd)

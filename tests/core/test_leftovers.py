"""Nothing left behind, whatever way a session's processes die.

The reaper's rules on folders and files of the test's own (owners are real processes
holding real locks, killed with SIGKILL), then each way of dying end to end: the
driver killed, every process of a session killed at once, its node manager killed, a
`skate start` head killed -- each session's arena and folder are gone afterwards, by
the survivors or at the next ``skate.init()`` on the machine.
"""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

import psutil
import pytest

from skate.core.leftovers import KEEP, create_arena, hold_session, leave_session, reap
from tests.core.utils import REPO_ROOT, wait_for_condition

pytestmark = pytest.mark.skate_only

HOLDER = textwrap.dedent("""
    import sys
    from skate.core.leftovers import create_arena, hold_session
    kind, path = sys.argv[1:]
    fd = hold_session(path) if kind == "session" else create_arena(path)
    print("held", flush=True)
    sys.stdin.read()
""")


class Holder:
    """A process that owns ``path`` (a session folder or an arena) until it is killed."""

    def __init__(self, kind, path):
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, kind, str(path)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     cwd=REPO_ROOT)
        assert self.proc.stdout.readline() == "held\n"

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def close(self):
        if self.proc.poll() is None:
            self.kill()


@pytest.fixture
def holders():
    made = []
    yield lambda kind, path: made.append(Holder(kind, path)) or made[-1]
    for h in made:
        h.close()


def _session(root, name, files=("logs/x.log", "spill/obj")):
    path = root / name
    for f in files:
        (path / f).parent.mkdir(parents=True, exist_ok=True)
        (path / f).write_bytes(b"x" * 10)
    return path


def test_a_folder_goes_only_once_its_last_owner_is_gone(tmp_path, holders):
    temp, shm = tmp_path / "t", tmp_path / "shm"
    shm.mkdir()
    alive_one = _session(temp, "s-alive")
    dead_one = _session(temp, "s-dead")
    two_owners = _session(temp, "s-two")
    holders("session", alive_one)
    holders("session", dead_one).kill()
    first = holders("session", two_owners)
    holders("session", two_owners)
    first.kill()  # one of its two owners died: still owned
    removed = reap(str(temp), str(shm))
    assert removed.sessions == [str(dead_one)]
    assert sorted(os.listdir(temp)) == ["s-alive", "s-two"]


def test_a_kept_session_loses_only_its_spill_files(tmp_path, holders):
    temp, shm = tmp_path / "t", tmp_path / "shm"
    shm.mkdir()
    kept = _session(temp, "s-kept", files=("logs/gcs.log", "token", "gcs.sqlite3",
                                           "spill/a", "n1a2b3c/spill/b", "n1a2b3c/logs/y"))
    (kept / KEEP).touch()
    holders("session", kept).kill()
    removed = reap(str(temp), str(shm))
    assert (removed.sessions, removed.spills) == ([], [str(kept)])
    left = sorted(os.path.relpath(os.path.join(d, f), kept)
                  for d, _, fs in os.walk(kept) for f in fs)
    assert left == sorted([KEEP, "gcs.sqlite3", "logs/gcs.log", "n1a2b3c/logs/y", "owners.lock",
                           "token"])


def test_the_folder_being_restarted_is_left_alone(tmp_path, holders):
    temp, shm = tmp_path / "t", tmp_path / "shm"
    shm.mkdir()
    restarting = _session(temp, "s-restart")
    holders("session", restarting).kill()
    assert reap(str(temp), str(shm), keep=(str(restarting),)).sessions == []
    assert restarting.exists()


def test_the_last_owner_to_leave_removes_the_folder(tmp_path, holders):
    path = _session(tmp_path, "s-leave")
    other = holders("session", path)
    assert leave_session(hold_session(str(path)), str(path)) is False  # the other is alive
    assert path.exists()
    other.kill()
    assert leave_session(hold_session(str(path)), str(path)) is True
    assert not path.exists()


def test_an_arena_goes_once_its_node_manager_is_gone(tmp_path, holders):
    temp, shm = tmp_path / "t", tmp_path / "shm"
    temp.mkdir()
    shm.mkdir()
    holders("arena", shm / "skate-s1-live")
    holders("arena", shm / "skate-s1-dead").kill()
    (shm / ".skate-s1-making.123").touch()  # one being made: hidden until it is locked
    (shm / "other-program").touch()
    removed = reap(str(temp), str(shm))
    assert removed.arenas == [str(shm / "skate-s1-dead")]
    assert sorted(os.listdir(shm)) == [".skate-s1-making.123", "other-program", "skate-s1-live"]


def test_an_arenas_name_is_never_taken_twice(tmp_path):
    fd = create_arena(str(tmp_path / "skate-x"))
    try:
        with pytest.raises(FileExistsError):
            create_arena(str(tmp_path / "skate-x"))
        assert os.listdir(tmp_path) == ["skate-x"]  # no hidden file left either
    finally:
        os.close(fd)


def test_folders_from_before_ownership_locks(tmp_path):
    temp, shm = tmp_path / "t", tmp_path / "shm"
    shm.mkdir()
    dead_pid = _a_dead_pid()
    old = time.time() - 3600
    gone = _session(temp, f"s1202002639-p{dead_pid}-b26768")
    mine = _session(temp, f"s1202002639-p{os.getpid()}-b26769")  # its creator is alive
    fresh = _session(temp, f"s1202002639-p{dead_pid}-b2676a")  # changed a moment ago
    answering = _session(temp, f"s1202002639-p{dead_pid}-b2676b")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(answering / "gcs.sock"))
    listener.listen()
    not_a_session = _session(temp, "results")
    for p in (gone, mine, answering, not_a_session):
        os.utime(p, (old, old))
    try:
        assert reap(str(temp), str(shm)).sessions == [str(gone)]
        assert sorted(os.listdir(temp)) == sorted(p.name for p in (mine, fresh, answering,
                                                                   not_a_session))
    finally:
        listener.close()


def _a_dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- each way of dying, end to end ------------------------------------------------------

DRIVER = textwrap.dedent("""
    import json, sys
    import skate
    from skate.core import api
    skate.init(num_cpus=1, object_store_memory=64 * 1024 * 1024)
    @skate.remote
    def f(x):
        return x
    big = skate.put(b"x" * 1_000_000)
    assert skate.get(f.remote(big)) == b"x" * 1_000_000
    node = api._node
    print(json.dumps({"session": node.session_dir, "arena": node.arena_path,
                      "gcs": node.procs[0].pid, "raylet": node.procs[1].pid}), flush=True)
    sys.stdin.read()
""")


@pytest.fixture
def env():
    short = tempfile.mkdtemp(prefix="skl-", dir="/tmp")  # Unix socket paths: 107 bytes at most
    yield dict(os.environ, SKATE_TEMP_DIR=short, PYTHONPATH=REPO_ROOT)
    shutil.rmtree(short, ignore_errors=True)


@pytest.fixture
def drivers(env):
    started = []

    def start():
        proc = subprocess.Popen([sys.executable, "-c", DRIVER], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, env=env)
        started.append(proc)
        line = proc.stdout.readline()
        assert line, "the driver did not start"
        return proc, json.loads(line)

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _everything(info) -> list:
    """The session's processes: control store, node manager and its zygote and workers."""
    procs = []
    for pid in (info["gcs"], info["raylet"]):
        try:
            p = psutil.Process(pid)
            procs += [p] + p.children(recursive=True)
        except psutil.NoSuchProcess:
            pass
    return procs


def _gone(*paths):
    return not any(os.path.exists(p) for p in paths)


def _next_init_cleans(env):
    """Another driver starting on the machine, and stopping."""
    out = subprocess.run([sys.executable, "-c", "import skate; skate.init(num_cpus=1); "
                          "skate.get(skate.put(1)); print('ok')"], env=env, timeout=60,
                         capture_output=True, text=True)
    assert out.stdout == "ok\n", out.stderr


def test_the_driver_killed_its_node_removes_the_session(drivers):
    proc, info = drivers()
    procs = _everything(info)
    proc.kill()
    proc.wait()
    wait_for_condition(lambda: _gone(info["session"], info["arena"]), timeout=20)
    psutil.wait_procs(procs, timeout=20)
    assert not [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_everything_killed_at_once_the_next_init_removes_it(drivers, env):
    proc, info = drivers()
    procs = _everything(info) + [psutil.Process(proc.pid)]
    for p in procs:
        p.send_signal(signal.SIGKILL)
    psutil.wait_procs(procs, timeout=20)
    proc.wait()
    assert os.path.exists(info["session"]) and os.path.exists(info["arena"])  # left behind
    _next_init_cleans(env)
    wait_for_condition(lambda: _gone(info["session"], info["arena"]), timeout=20)


def test_the_node_manager_killed_its_arena_goes_and_then_its_session(drivers, env):
    proc, info = drivers()
    os.kill(info["raylet"], signal.SIGKILL)
    _next_init_cleans(env)  # the arena has no owner now; the session still has its driver
    wait_for_condition(lambda: _gone(info["arena"]), timeout=20)
    assert os.path.exists(info["session"])
    proc.stdin.close()  # the driver stops normally: its session goes with it
    assert proc.wait(30) == 0
    wait_for_condition(lambda: _gone(info["session"]), timeout=20)


def test_a_killed_skate_start_head_keeps_its_folder_not_its_memory(env):
    session = pathlib.Path(env["SKATE_TEMP_DIR"]) / "head"
    start = subprocess.run([sys.executable, "-m", "skate.scripts.skate_cli", "start", "--head",
                            "--port", "0", "--num-cpus", "1", "--include-dashboard", "false",
                            "--object-store-memory", str(64 * 1024 * 1024),
                            "--session-dir", str(session)],
                           env=env, capture_output=True, text=True, timeout=60)
    assert start.returncode == 0, start.stderr
    info = json.load(open(os.path.join(env["SKATE_TEMP_DIR"], "current.json")))
    procs = [psutil.Process(pid) for pid in info["pids"]]
    procs += [c for p in procs for c in p.children(recursive=True)]
    try:
        (session / "spill" / "leftover-object").write_bytes(b"x")
        for p in procs:
            p.send_signal(signal.SIGKILL)
        psutil.wait_procs(procs, timeout=20)
        _next_init_cleans(env)
        wait_for_condition(lambda: _gone(info["arena_path"], session / "spill" /
                                         "leftover-object"), timeout=20)
        assert (session / "token").exists() and (session / "gcs.sqlite3").exists()
    finally:
        for p in procs:
            if p.is_running():
                p.kill()

"""The node's log files (worker_logs.py), the tail search of get_log, and the gatherer of
the objects listing: plain files and threads, no cluster."""

import threading

import pytest

from skate.core.node_manager import introspection, worker_logs
from skate.core.node_manager.worker_logs import WorkerLogs
from skate.core.node_state import _tail_offset

pytestmark = pytest.mark.skate_only


class _Node:
    """A node manager client answering read_log from a real WorkerLogs."""

    def __init__(self, logs):
        self.logs = logs

    def read_log(self, name, offset, length, timeout=None):
        return self.logs.read(name, offset, length)


def test_lines_appended_per_worker_and_stream(tmp_path):
    logs = WorkerLogs(str(tmp_path))
    logs.write("w1", 11, "stdout", ["a", "b"])
    logs.write("w1", 11, "stderr", ["oops"])
    logs.write("w1", 11, "stdout", ["c"])
    logs.close("w1")
    logs.write("w1", 11, "stdout", ["late"])  # output that arrives after the exit
    logs.close_all()
    assert (tmp_path / "worker-w1-11.out").read_text() == "a\nb\nc\nlate\n"
    assert (tmp_path / "worker-w1-11.err").read_text() == "oops\n"
    assert logs.list() == [("worker-w1-11.err", 5), ("worker-w1-11.out", 11)]


def test_rotation_keeps_one_older_file(tmp_path):
    logs = WorkerLogs(str(tmp_path), max_bytes=10)
    for word in ("aaaa", "bbbb", "cccc", "dddd", "eeee"):  # 5 bytes each: two fit
        logs.write("w", 1, "stdout", [word])
    logs.close_all()
    assert (tmp_path / "worker-w-1.out").read_text() == "eeee\n"
    assert (tmp_path / "worker-w-1.out.1").read_text() == "cccc\ndddd\n"


def test_open_handles_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(worker_logs, "MAX_OPEN", 3)
    logs = WorkerLogs(str(tmp_path))
    for i in range(10):
        logs.write(f"w{i}", i, "stdout", ["x"])
    assert len(logs._files) == 3
    logs.write("w0", 0, "stdout", ["y"])  # reopened, appended
    logs.close_all()
    assert (tmp_path / "worker-w0-0.out").read_text() == "x\ny\n"


def test_reads_by_range_and_from_the_end(tmp_path):
    (tmp_path / "f.log").write_bytes(b"0123456789")
    logs = WorkerLogs(str(tmp_path))
    assert logs.read("f.log", 2, 3) == (b"234", 5, 10)
    assert logs.read("f.log", -4, 100) == (b"6789", 10, 10)
    assert logs.read("f.log", -40, 3) == (b"012", 3, 10)
    assert logs.read("f.log", 50, 3) == (b"", 10, 10)
    for bad in ("../f.log", "sub/f.log", ".hidden", "", "missing.log"):
        with pytest.raises(FileNotFoundError):
            logs.read(bad, 0, 1)


@pytest.mark.parametrize("content,tail,want", [
    (b"a\nb\nc\n", 2, b"b\nc\n"),
    (b"a\nb\nc", 2, b"b\nc"),
    (b"a\nb\nc\n", 3, b"a\nb\nc\n"),
    (b"a\nb\nc\n", 10, b"a\nb\nc\n"),
    (b"a\nb\nc\n", -1, b"a\nb\nc\n"),
    (b"", 5, b""),
])
def test_tail_offset(tmp_path, content, tail, want):
    (tmp_path / "f.log").write_bytes(content)
    offset = _tail_offset(_Node(WorkerLogs(str(tmp_path))), "f.log", tail, 1)
    assert content[offset:] == want


def test_tail_of_a_long_file_reads_back_in_growing_steps(tmp_path):
    lines = [b"x" * 1000 + str(i).encode() for i in range(3000)]
    (tmp_path / "f.log").write_bytes(b"\n".join(lines) + b"\n")
    data = (tmp_path / "f.log").read_bytes()
    offset = _tail_offset(_Node(WorkerLogs(str(tmp_path))), "f.log", 5, 1)
    assert data[offset:].splitlines() == lines[-5:]


def test_gather_answers_once_on_the_last_answer_or_at_the_deadline():
    got = []
    g = introspection._Gather(2, lambda answers, missing: got.append((answers, missing)))
    g.add("a")
    g.start(10)
    g.add(None)  # a process that went away
    g.add("late")
    assert got == [(["a"], 1)]

    done = threading.Event()
    slow = introspection._Gather(3, lambda answers, missing: (got.append((answers, missing)),
                                                             done.set()))
    slow.add("b")
    slow.start(0.05)
    assert done.wait(5) and got[-1] == (["b"], 2)
    empty = []
    introspection._Gather(0, lambda a, m: empty.append((a, m))).start(10)
    assert empty == [([], 0)]

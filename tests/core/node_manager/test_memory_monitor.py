"""The memory monitor without processes: the reader on fake /proc and cgroup files, the pure
kill policy fed readings and candidates, and the monitor's shell over real lease books with
a fake worker pool and a fake reader. No sleeps: time is passed in."""

import itertools
import threading

import pytest

from skate.core import resources as res
from skate.core.config import (
    MemoryMonitorConfig,
    memory_monitor_refresh_ms,
    memory_usage_threshold,
)
from skate.core.node_manager import leases as ls
from skate.core.node_manager.memory_monitor import (
    EXIT_CAUSES_KEPT,
    OUT_OF_MEMORY,
    Candidate,
    MemoryMonitor,
    MemoryReader,
    MemoryReading,
    OomKillPolicy,
)

pytestmark = pytest.mark.skate_only

GiB = 2**30


# -- the reader ------------------------------------------------------------------------------

def meminfo(tmp_path, total_kb, available_kb=None, **extra):
    lines = [f"MemTotal:       {total_kb} kB", f"MemFree:        {extra.get('free', 0)} kB"]
    if available_kb is not None:
        lines.append(f"MemAvailable:   {available_kb} kB")
    for k in ("Buffers", "Cached"):
        if k in extra:
            lines.append(f"{k}:        {extra[k]} kB")
    path = tmp_path / "meminfo"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def cgroup_v2(tmp_path, limit, current, inactive_file):
    root = tmp_path / "cg"
    root.mkdir()
    (root / "memory.max").write_text(f"{limit}\n")
    (root / "memory.current").write_text(f"{current}\n")
    (root / "memory.stat").write_text(f"anon 123\nfile 456\ninactive_file {inactive_file}\n"
                                      f"active_file 7\n")
    return str(root)


def test_reader_uses_meminfo_without_a_cgroup_limit(tmp_path):
    r = MemoryReader(str(tmp_path / "none"), meminfo(tmp_path, 8 * 2**20, 6 * 2**20)).read(5.0)
    assert (r.used, r.limit, r.taken_at, r.source) == (2 * GiB, 8 * GiB, 5.0, "meminfo")
    assert r.fraction == pytest.approx(0.25)


def test_reader_without_memavailable_counts_free_buffers_and_cache(tmp_path):
    path = meminfo(tmp_path, 4 * 2**20, None, free=2**20, Buffers=2**19, Cached=2**19)
    r = MemoryReader(str(tmp_path / "none"), path).read(0.0)
    assert r.used == 2 * GiB and r.limit == 4 * GiB


def test_reader_prefers_a_cgroup_v2_limit_less_inactive_files(tmp_path):
    root = cgroup_v2(tmp_path, 2 * GiB, GiB + 100, 100)
    r = MemoryReader(root, meminfo(tmp_path, 8 * 2**20, 7 * 2**20)).read(1.0)
    assert (r.used, r.limit, r.source) == (GiB, 2 * GiB, "cgroup v2")


def test_reader_ignores_cgroup_v2_without_a_limit(tmp_path):
    root = cgroup_v2(tmp_path, "max", GiB, 0)
    r = MemoryReader(root, meminfo(tmp_path, 8 * 2**20, 7 * 2**20)).read(1.0)
    assert r.source == "meminfo" and r.limit == 8 * GiB


def test_reader_ignores_a_cgroup_limit_above_the_machine(tmp_path):
    root = cgroup_v2(tmp_path, 64 * GiB, GiB, 0)
    r = MemoryReader(root, meminfo(tmp_path, 8 * 2**20, 7 * 2**20)).read(1.0)
    assert r.source == "meminfo"


def test_reader_reads_cgroup_v1(tmp_path):
    folder = tmp_path / "cg" / "memory"
    folder.mkdir(parents=True)
    (folder / "memory.limit_in_bytes").write_text(f"{3 * GiB}\n")
    (folder / "memory.usage_in_bytes").write_text(f"{GiB + 50}\n")
    (folder / "memory.stat").write_text("cache 10\ntotal_inactive_file 50\n")
    r = MemoryReader(str(tmp_path / "cg"), meminfo(tmp_path, 8 * 2**20, 7 * 2**20)).read(1.0)
    assert (r.used, r.limit, r.source) == (GiB, 3 * GiB, "cgroup v1")


def test_reader_v1_no_limit_is_a_huge_number(tmp_path):
    folder = tmp_path / "cg" / "memory"
    folder.mkdir(parents=True)
    (folder / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (folder / "memory.usage_in_bytes").write_text(f"{GiB}\n")
    r = MemoryReader(str(tmp_path / "cg"), meminfo(tmp_path, 8 * 2**20, 7 * 2**20)).read(1.0)
    assert r.source == "meminfo"


def test_reader_without_meminfo_raises(tmp_path):
    with pytest.raises(OSError):
        MemoryReader(str(tmp_path), str(tmp_path / "missing")).read(0.0)


def test_the_real_machine_reads():
    r = MemoryReader().read(0.0)
    assert 0 < r.used < r.limit


# -- configuration ---------------------------------------------------------------------------

def test_config_defaults_are_rays(monkeypatch):
    for name in ("SKATE_MEMORY_USAGE_THRESHOLD", "RAY_memory_usage_threshold",
                 "SKATE_MEMORY_MONITOR_REFRESH_MS", "RAY_memory_monitor_refresh_ms"):
        monkeypatch.delenv(name, raising=False)
    assert memory_usage_threshold() == 0.95 and memory_monitor_refresh_ms() == 250
    assert MemoryMonitorConfig.from_env().enabled


def test_config_from_env_skate_before_ray(monkeypatch):
    monkeypatch.setenv("RAY_memory_usage_threshold", "0.5")
    monkeypatch.setenv("SKATE_MEMORY_USAGE_THRESHOLD", "0.8")
    monkeypatch.setenv("RAY_memory_monitor_refresh_ms", "0")
    monkeypatch.delenv("SKATE_MEMORY_MONITOR_REFRESH_MS", raising=False)
    cfg = MemoryMonitorConfig.from_env()
    assert cfg.usage_threshold == 0.8 and cfg.refresh_ms == 0 and not cfg.enabled


@pytest.mark.parametrize("threshold, refresh", [(1.5, 250), (-0.1, 250), (0.9, -1)])
def test_config_refuses_bad_values(threshold, refresh):
    with pytest.raises(ValueError, match="SKATE_MEMORY"):
        MemoryMonitorConfig(threshold, refresh)


def test_config_refuses_text(monkeypatch):
    monkeypatch.setenv("SKATE_MEMORY_USAGE_THRESHOLD", "lots")
    with pytest.raises(ValueError, match="SKATE_MEMORY_USAGE_THRESHOLD must be a float"):
        memory_usage_threshold()


# -- the policy ------------------------------------------------------------------------------

def task(worker, owner="driver", started=0.0, retriable=True):
    return Candidate(worker, owner, retriable, started)


def actor(worker, started=0.0):
    return Candidate(worker, "gcs", False, started, actor=True)


def at(t, fraction=0.97):
    return MemoryReading(int(fraction * 1000), 1000, t)


def live(candidates):
    return {c.worker_id for c in candidates}


def test_below_the_threshold_nothing_dies():
    p = OomKillPolicy(0.95)
    ws = [task("a")]
    assert p.check(at(1.0, 0.95), ws, live(ws), 1.0) is None
    assert p.check(at(1.0, 0.5), ws, live(ws), 1.0) is None


def test_nothing_to_kill_without_leased_workers():
    assert OomKillPolicy(0.9).check(at(1.0), [], {"idle-worker"}, 1.0) is None


def test_the_most_recently_started_task_dies_first():
    ws = [task("old", started=1.0), task("new", started=3.0), task("mid", started=2.0)]
    kill = OomKillPolicy(0.9).check(at(4.0), ws, live(ws), 4.0)
    assert kill.worker.worker_id == "new" and kill.retry and kill.group_size == 3


def test_retriable_tasks_die_before_non_retriable_ones_and_actors():
    ws = [task("keep", started=9.0, retriable=False), actor("actor", started=8.0),
          task("retriable", started=1.0)]
    assert OomKillPolicy(0.9).check(at(10.0), ws, live(ws), 10.0).worker.worker_id == \
        "retriable"


def test_non_retriable_then_newest_group_of_one():
    ws = [task("t", started=1.0, retriable=False), actor("a", started=2.0)]
    kill = OomKillPolicy(0.9).check(at(10.0), ws, live(ws), 10.0)
    # both are groups of one: the one whose earliest worker started latest
    assert kill.worker.worker_id == "a" and not kill.retry


def test_the_caller_with_most_tasks_running_loses_one():
    ws = [task("x1", "x", 1.0), task("x2", "x", 2.0), task("y1", "y", 5.0)]
    kill = OomKillPolicy(0.9).check(at(10.0), ws, live(ws), 10.0)
    assert kill.worker.worker_id == "x2" and kill.retry  # y's only task is newer: kept


def test_equal_groups_the_one_that_started_last_loses():
    ws = [task("x1", "x", 1.0), task("x2", "x", 4.0), task("y1", "y", 2.0),
          task("y2", "y", 3.0)]
    assert OomKillPolicy(0.9).check(at(10.0), ws, live(ws), 10.0).worker.worker_id == "y2"


def test_the_last_task_of_a_caller_is_not_retried():
    ws = [task("only", started=1.0)]
    kill = OomKillPolicy(0.9).check(at(2.0), ws, live(ws), 2.0)
    assert kill.worker.worker_id == "only" and not kill.retry and kill.group_size == 1


def test_one_victim_at_a_time_until_memory_is_read_after_its_death():
    p = OomKillPolicy(0.9)
    ws = [task("a", started=1.0), task("b", started=2.0)]
    assert p.check(at(3.0), ws, live(ws), 3.0).worker.worker_id == "b"
    assert p.victim == "b"
    # still dying (the lease is returned already, the process not reaped yet): nothing
    assert p.check(at(3.25), ws[:1], {"a", "b"}, 3.25) is None
    assert p.check(at(3.5), ws[:1], {"a", "b"}, 3.5) is None
    # gone now, but this reading may have been taken while it still held its memory
    assert p.check(at(3.75), ws[:1], {"a"}, 3.8) is None
    assert p.victim is None and p.cleared_at == 3.8
    # a reading from before that moment still does not count
    assert p.check(at(3.8), ws[:1], {"a"}, 3.9) is None
    # a fresh one past the threshold: the next victim
    assert p.check(at(4.0), ws[:1], {"a"}, 4.0).worker.worker_id == "a"


def test_after_the_victim_died_memory_back_under_the_threshold_kills_nobody():
    p = OomKillPolicy(0.9)
    ws = [task("a", started=1.0), task("b", started=2.0)]
    p.check(at(3.0), ws, live(ws), 3.0)
    p.check(at(3.25), ws[:1], {"a"}, 3.25)
    assert p.check(at(3.5, 0.6), ws[:1], {"a"}, 3.5) is None
    assert p.victim is None


def test_the_policy_over_a_random_history_keeps_its_invariants():
    import random

    rng = random.Random(7)
    p = OomKillPolicy(0.8)
    alive: dict = {}
    ids = itertools.count()
    last_cleared = p.cleared_at
    dying = None
    now = 0.0
    for _ in range(2000):
        now += 0.25
        if rng.random() < 0.3:
            w = f"w{next(ids)}"
            alive[w] = task(w, rng.choice("xyz"), now, rng.random() < 0.7)
        if dying is not None and rng.random() < 0.5:
            alive.pop(dying, None)
            dying = None
        frac = rng.uniform(0.5, 1.0)
        kill = p.check(MemoryReading(int(frac * 1000), 1000, now), list(alive.values()),
                       set(alive), now + 0.01)
        assert p.cleared_at >= last_cleared
        last_cleared = p.cleared_at
        if kill is not None:
            assert dying is None, "a second victim while the first was alive"
            assert frac > 0.8 and kill.worker.worker_id in alive
            dying = kill.worker.worker_id
            same = [c for c in alive.values() if c.owner == kill.worker.owner
                    and c.retriable == kill.worker.retriable]
            assert kill.worker.started_at == max(c.started_at for c in same)
            if any(c.retriable for c in alive.values()):
                assert kill.worker.retriable
        assert p.victim == dying


# -- the shell over real lease books ---------------------------------------------------------

class FakeProc:
    def __init__(self, pid):
        self.pid = pid


class FakePool:
    def __init__(self):
        self.workers = {}
        self.killed = []

    def kill(self, w):
        self.killed.append(w.pid)


class FakeReader:
    def __init__(self, fraction):
        self.fraction = fraction

    def read(self, now):
        return MemoryReading(int(self.fraction * 1000), 1000, now)


class FakeCfg:
    node_ip = "10.0.0.1"
    node_id = "node-abc"


class FakeNode:
    def __init__(self):
        ids = itertools.count()
        self.lock = threading.RLock()
        self.sched = ls.Leases("here", res.to_units({"CPU": 4}), 0, pool_size=4,
                               prestart_workers=0, idle_timeout_s=10.0,
                               new_worker_id=lambda: f"w{next(ids)}")
        self.pool = FakePool()
        self.stopping = threading.Event()
        self.cfg = FakeCfg()

    def lease(self, requester, now, retriable=True, dedicated=False):
        """A worker registered and leased at ``now``; returns its id."""
        out = self.sched.handle(ls.RequestLease(requester, 1, res.to_units({"CPU": 1}), None,
                                                dedicated, None, None, False, now,
                                                retriable=retriable))
        for c in out:
            if isinstance(c, ls.StartWorker):
                self.pool.workers[c.worker_id] = FakeProc(1000 + len(self.pool.workers))
                out = self.sched.handle(ls.WorkerRegistered(c.worker_id, "addr", False, now))
        grant = next(c for c in out if isinstance(c, ls.Grant))
        self.sched.validate()
        return grant.grant.worker_id


def monitor(node, fraction, clock):
    return MemoryMonitor(node, MemoryMonitorConfig(0.9, 100), FakeReader(fraction),
                         clock=lambda: clock[0])


def test_the_monitor_kills_the_newest_lease_and_records_why():
    node, clock = FakeNode(), [10.0]
    first = node.lease("driver", 1.0)
    newest = node.lease("driver", 2.0)
    mon = monitor(node, 0.97, clock)
    kill = mon.check()
    assert kill.worker.worker_id == newest and kill.retry
    assert node.pool.killed == [node.pool.workers[newest].pid]
    kind, message, retry = mon.exit_cause(newest)
    assert kind == OUT_OF_MEMORY and retry
    for part in ("running low on memory", "10.0.0.1", "node-abc", "(0.970)",
                 "threshold of 0.9", newest, "SKATE_MEMORY_USAGE_THRESHOLD",
                 f"skate logs --pid {node.pool.workers[newest].pid}"):
        assert part in message, part
    assert mon.exit_cause(first) is None
    # the victim has not exited yet: nobody else dies however often it checks
    clock[0] = 10.25
    assert mon.check() is None and len(node.pool.killed) == 1


def test_the_monitor_waits_for_the_victims_exit_then_reads_again():
    node, clock = FakeNode(), [10.0]
    node.lease("driver", 1.0)
    newest = node.lease("driver", 2.0)
    mon = monitor(node, 0.97, clock)
    mon.check()
    node.sched.handle(ls.WorkerGone(newest, 10.1))
    del node.pool.workers[newest]
    clock[0] = 10.2
    assert mon.check() is None  # saw it gone: the next reading decides
    clock[0] = 10.3
    kill = mon.check()
    assert kill is not None and not kill.retry  # the caller's last task: not retried
    assert len(node.pool.killed) == 2


def test_the_monitor_kills_actors_after_tasks():
    node, clock = FakeNode(), [10.0]
    a = node.lease("gcs", 5.0, dedicated=True)
    t = node.lease("driver", 1.0, retriable=True)
    mon = monitor(node, 0.97, clock)
    assert mon.check().worker.worker_id == t
    node.sched.handle(ls.WorkerGone(t, 10.1))
    del node.pool.workers[t]
    clock[0] = 10.2
    mon.check()
    clock[0] = 10.3
    kill = mon.check()
    assert kill.worker.worker_id == a and kill.worker.actor and not kill.retry


def test_the_monitor_does_not_kill_idle_workers():
    node, clock = FakeNode(), [10.0]
    w = node.lease("driver", 1.0)
    lease_id = node.sched.workers[w].lease.lease_id
    node.sched.handle(ls.LeaseReturned(lease_id, False, 2.0))  # idle in the pool now
    assert node.sched.idle[""] and monitor(node, 0.99, clock).check() is None
    assert node.pool.killed == []


def test_the_monitor_below_the_threshold_kills_nobody():
    node, clock = FakeNode(), [10.0]
    node.lease("driver", 1.0)
    assert monitor(node, 0.5, clock).check() is None
    assert node.pool.killed == []


def test_the_monitor_keeps_a_bounded_record():
    node, clock = FakeNode(), [0.0]
    mon = monitor(node, 0.97, clock)
    for i in range(EXIT_CAUSES_KEPT + 5):
        mon.causes[f"old{i}"] = (OUT_OF_MEMORY, "m", True)
    node.lease("driver", 1.0)
    kill = mon.check()
    assert len(mon.causes) == EXIT_CAUSES_KEPT
    assert mon.exit_cause("old0") is None and mon.exit_cause(kill.worker.worker_id)


def test_a_disabled_monitor_does_not_start():
    node = FakeNode()
    assert not MemoryMonitor(node, MemoryMonitorConfig(0.9, 0)).start()

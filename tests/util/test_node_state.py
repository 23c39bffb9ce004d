"""skate.util.state, what the nodes know: objects and references, workers, logs, demand."""

import os
import threading

import numpy as np
import pytest

import skate
from skate.util import state
from skate.util.placement_group import placement_group, remove_placement_group
from tests.core.utils import wait_for_condition

pytestmark = pytest.mark.skate_only  # Ray's state API needs its dashboard process


@pytest.fixture
def cluster(start_cluster):
    return start_cluster(num_cpus=2)


@skate.remote
class Holder:
    def __init__(self):
        self.kept = None

    def keep(self, refs):
        self.kept = refs[0]  # borrowed: the driver owns it
        return os.getpid()

    def pid(self):
        return os.getpid()

    def say(self, *lines, err=False):
        import sys

        for line in lines:
            print(line, file=sys.stderr if err else sys.stdout, flush=True)
        return len(lines)


@skate.remote
def make(n):
    return np.zeros(n, dtype=np.uint8)


@skate.remote
def shout(word):
    print(f"shouting {word}", flush=True)
    return os.getpid()


def _rows(oid):
    return state.list_objects(filters=[("object_id", "=", oid)], limit=100)


def test_objects_sizes_owners_borrowers_and_store(cluster):
    big = skate.put(np.zeros(10_000_000, dtype=np.uint8))
    made = make.remote(2_000_000)
    skate.wait([made])
    small = skate.put(7)
    h = Holder.remote()
    worker_pid = skate.get(h.keep.remote([big]))

    (small_row,) = _rows(small.hex())
    assert (small_row.store_state, small_row.call_site, small_row.type) == \
        ("INLINE", "skate.put()", "DRIVER")
    assert small_row.pid == os.getpid() and small_row.is_owner and small_row.local_refs == 1
    (made_row,) = _rows(made.hex())
    assert made_row.call_site == "make.remote()" and made_row.task_status == "FINISHED"
    assert made_row.store_state == "IN_MEMORY" and 2_000_000 <= made_row.object_size < 2_001_000
    by_pid = {r.pid: r for r in _rows(big.hex())}
    assert set(by_pid) == {os.getpid(), worker_pid}
    owner, borrower = by_pid[os.getpid()], by_pid[worker_pid]
    assert owner.is_owner and owner.num_borrowers == 1 and owner.reference_type == \
        "LOCAL_REFERENCE"
    assert not borrower.is_owner and borrower.type == "WORKER" and borrower.task_status == "-"
    assert owner.object_size == borrower.object_size and \
        10_000_000 <= owner.object_size < 10_001_000
    handles = state.list_objects(filters=[("reference_type", "=", "ACTOR_HANDLE")])
    assert [r.call_site for r in handles] == ["actor handle"]

    summary = state.summarize_objects()["cluster"]
    puts = summary["summary"]["skate.put()"]
    assert puts["total_objects"] == 2 and puts["total_num_workers"] == 2
    assert summary["summary"]["make.remote()"]["total_objects"] == 1
    assert summary["total_objects"] == 4 and summary["partial"] == 0  # + the actor's handle

    del made
    wait_for_condition(lambda: not _rows(made_row.object_id))
    with pytest.raises(ValueError, match="no field 'size'"):
        state.list_objects(filters=[("size", "=", 1)])


def test_workers_listed_with_their_actor_and_exit(cluster):
    h = Holder.remote()
    pid = skate.get(h.pid.remote())
    rows = {w.pid: w for w in state.list_workers(limit=1000)}
    assert rows[pid].actor_class_name == "Holder" and rows[pid].state == "LEASED"
    assert rows[pid].is_alive and rows[pid].worker_type == "WORKER"
    (driver,) = [w for w in rows.values() if w.worker_type == "DRIVER"]
    assert driver.pid == os.getpid()
    skate.kill(h)

    def exited():
        dead = state.list_workers(filters=[("pid", "=", pid), ("is_alive", "=", False)])
        return dead and dead[0].state == "DEAD" and dead[0].exit_code is not None

    wait_for_condition(exited, timeout=15)


def test_actor_and_task_output_in_log_files(cluster):
    h = Holder.remote()
    skate.get(h.say.remote(*[f"line {i}" for i in range(5)]))
    skate.get(h.say.remote("oops", err=True))
    aid = h._actor_id_bytes.hex()
    wait_for_condition(lambda: list(state.get_log(actor_id=aid))[-1:] == ["line 4"])
    assert list(state.get_log(actor_id=aid, tail=2)) == ["line 3", "line 4"]
    assert list(state.get_log(actor_id=aid, tail=-1))[-5:] == [f"line {i}" for i in range(5)]
    wait_for_condition(lambda: list(state.get_log(actor_id=aid, suffix="err"))[-1:] == ["oops"])

    pid = skate.get(shout.remote("hey"))
    task_id = next(t.task_id for t in state.list_tasks(filters=[("name", "=", "shout")]))
    wait_for_condition(lambda: state.get_task(task_id).worker_id is not None)
    wait_for_condition(lambda: list(state.get_log(task_id=task_id))[-1:] == ["shouting hey"])
    assert list(state.get_log(pid=pid))[-1] == "shouting hey"

    logs = state.list_logs()
    (kinds,) = logs.values()
    assert any(name.endswith(f"-{pid}.out") for name in kinds["worker_out"])
    assert kinds["raylet"] and kinds["gcs"]
    name = next(n for n in kinds["worker_out"] if n.endswith(f"-{pid}.out"))
    assert list(state.get_log(filename=name))[-1] == "shouting hey"


def test_follow_sees_new_lines(cluster):
    h = Holder.remote()
    skate.get(h.say.remote("first"))
    aid = h._actor_id_bytes.hex()
    # an actor may take an idle task worker: its file can hold that worker's older lines
    wait_for_condition(lambda: list(state.get_log(actor_id=aid))[-1:] == ["first"])
    seen = []
    done = threading.Event()

    def follow():
        for line in state.get_log(actor_id=aid, follow=True, tail=1, interval=0.05):
            seen.append(line)
            if line == "third":
                done.set()
                return

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    wait_for_condition(lambda: seen == ["first"])
    skate.get(h.say.remote("second", "third"))
    assert done.wait(15) and seen == ["first", "second", "third"]
    t.join(5)

    stop = threading.Event()  # another thread ends a follow while the log is quiet
    quiet = state.get_log(actor_id=aid, follow=True, tail=1, interval=0.05, stop=stop)
    assert next(quiet) == "third"
    stopper = threading.Timer(0.2, stop.set)
    stopper.start()
    assert list(quiet) == []  # returned once stop was set
    stopper.join()


def test_log_requests_with_mistakes(cluster):
    with pytest.raises(ValueError, match="Name one log"):
        list(state.get_log())
    with pytest.raises(ValueError, match="Name one log"):
        list(state.get_log(filename="gcs.log", pid=1))
    with pytest.raises(ValueError, match="tail"):
        list(state.get_log(filename="gcs.log", tail=0))
    with pytest.raises(ValueError, match="suffix"):
        list(state.get_log(pid=1, suffix="log"))
    for bad in ("no-such.log", "../token", ".hidden"):
        with pytest.raises(FileNotFoundError):
            list(state.get_log(filename=bad))
    with pytest.raises(ValueError, match="No alive node"):
        list(state.get_log(filename="gcs.log", node_id="ffffffff"))


@pytest.mark.filterwarnings("ignore:A task or actor needs")
def test_status_shows_pending_infeasible_and_groups(cluster):
    @skate.remote(num_cpus=2)
    class Busy:
        def ping(self):
            return 1

    busy = Busy.remote()
    skate.get(busy.ping.remote())
    waiting = make.remote(10)  # no CPU left: it waits for one
    never = make.options(num_cpus=64).remote(10)  # its requester is warned after a while
    pg = placement_group([{"CPU": 8}])

    def demand_seen():
        s = state.cluster_status()
        return ({"shape": {"CPU": 1.0}, "count": 1} in s["demand"]
                and {"shape": {"CPU": 64.0}, "count": 1} in s["infeasible"]
                and [g["placement_group_id"] for g in s["pending_placement_groups"]]
                == [pg.id.hex()])

    wait_for_condition(demand_seen, timeout=15)
    s = state.cluster_status()
    (node,) = s["nodes"]
    assert node["resources_total"]["CPU"] == 2 and node["resources_available"].get("CPU", 0) == 0
    assert node["object_store"]["capacity"] > 0
    remove_placement_group(pg)
    skate.kill(busy)
    assert skate.get(waiting).nbytes == 10
    skate.cancel(never, force=True)
    wait_for_condition(lambda: not state.cluster_status()["demand"], timeout=15)

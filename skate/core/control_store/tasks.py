"""The control store's task history: every task's states with their times, bounded.

Processes record what they see of a task (``worker/task_events.py``) and send
it here in batches, off the hot path: its owner the submission side
(``PENDING_ARGS_AVAIL`` -> ``PENDING_NODE_ASSIGNMENT`` -> ``SUBMITTED_TO_WORKER``
-> ``FINISHED`` / ``FAILED``, with the error's type and message), the worker
that runs it the execution side (``RUNNING``, ``RUNNING_IN_RAY_GET``,
``RUNNING_IN_RAY_WAIT`` and back). Batches from different processes arrive in
any order, so a record keeps each state's first time and its *current* state
is the latest by time, except that an ended attempt stays ended.

An attempt is one record (a retried task has several, as in Ray). The table is
bounded per job (``max_per_job``, default 100,000): when a job is over, its
first *finished* attempts go first (then the oldest of any state), and
``dropped[job]`` counts them -- so memory never grows without bound, and a
listing says how much history it lacks. The last dropped keys are remembered
(``forgotten``, bounded too), so a batch that comes late for one of them (a
worker's RUNNING after its owner's FINISHED) cannot bring back an attempt that
would never end.

Pure and synchronous (no clock, no I/O): the control store calls it under its
lock; tests feed it events.

Invariants (``validate()``): ``order[job]`` lists exactly that job's keys, oldest
first; ``ended[job]`` exactly its ended ones, in the order they ended;
``len(order[job]) <= max_per_job``; each record's ``state`` is one of
``STATES`` and its ``events`` are sorted by time; no kept key is forgotten.
"""

from __future__ import annotations

import collections
import sys

from skate.core.protocol import (  # noqa: F401 - the state names, for this table's users
    FAILED,
    FINISHED,
    PENDING_ARGS_AVAIL,
    PENDING_NODE_ASSIGNMENT,
    RUN_ENDED,
    RUNNING,
    RUNNING_IN_RAY_GET,
    RUNNING_IN_RAY_WAIT,
    SUBMITTED_TO_WORKER,
)
from skate.core.protocol import TASK_STATES as STATES

ENDED = (FINISHED, FAILED)
DEFAULT_MAX_PER_JOB = 100_000

#: the fields an event's ``info`` may set on its record (who saw what)
INFO_FIELDS = ("name", "func_or_class_name", "type", "job_id", "actor_id", "parent_task_id",
               "required_resources", "node_id", "worker_id", "worker_pid", "error_type",
               "error_message")
_INFO = frozenset(INFO_FIELDS)


def _time(event: tuple) -> float:
    return event[1]


class TaskRecord:
    """One attempt of one task, as the state API shows it.

    A plain class whose unset fields read their class-level default: a record is made
    per task attempt at the rate tasks finish, and setting 19 fields in a dataclass's
    ``__init__`` was most of the cost of applying an event."""

    job_id: str = ""
    name: str = ""
    func_or_class_name: str = ""
    type: str = "NORMAL_TASK"  # or ACTOR_TASK
    actor_id: str | None = None
    parent_task_id: str | None = None
    required_resources: dict = {}  # never mutated: replaced by an event's info
    node_id: str | None = None
    worker_id: str | None = None
    worker_pid: int | None = None
    error_type: str | None = None
    error_message: str | None = None

    def __init__(self, task_id: bytes, attempt_number: int, state: str, job_id: str = "",
                 state_t: float = 0.0):
        self.task_id = task_id
        self.attempt_number = attempt_number
        self.state = state
        if job_id:
            self.job_id = job_id
        self.events: list = []  # [(state, time_s)], by time
        self.state_t = state_t  # when the current state began (s)

    def as_dict(self) -> dict:
        events = [(s, t) for s, t in self.events if s != RUN_ENDED]
        times = {s: t for s, t in reversed(events)}  # each state's first time
        running = times.get(RUNNING)
        ended = next((t for s, t in events if s in ENDED), None)
        return {
            "task_id": _hex(self.task_id), "attempt_number": self.attempt_number,
            "state": self.state, "job_id": self.job_id, "name": self.name,
            "func_or_class_name": self.func_or_class_name, "type": self.type,
            "actor_id": self.actor_id, "parent_task_id": self.parent_task_id,
            "required_resources": dict(self.required_resources), "node_id": self.node_id,
            "worker_id": self.worker_id, "worker_pid": self.worker_pid,
            "error_type": self.error_type, "error_message": self.error_message,
            "creation_time_ms": _ms(events[0][1]) if events else None,
            "start_time_ms": None if running is None else _ms(running),
            "end_time_ms": None if ended is None else _ms(ended),
            "events": [{"state": s, "created_ms": _ms(t)} for s, t in events],
        }


class TaskTable:
    """Bounded task history, per job (see the module docstring)."""

    def __init__(self, max_per_job: int = DEFAULT_MAX_PER_JOB):
        if max_per_job < 1:
            raise ValueError(f"max_per_job must be at least 1, got {max_per_job}")
        self.max_per_job = max_per_job
        self.records: dict[tuple, TaskRecord] = {}  # (task id hex, attempt) -> record
        # job -> its keys, oldest first (an ordered set: O(1) removal at both ends)
        # An OrderedDict, not a dict: records leave from the front, and a dict iterated from
        # the front after many deletions there walks every deleted slot (measured: applying
        # an event went from 3 us to 95 us once 300,000 had passed through a 100,000 bound).
        self.order: dict[str, collections.OrderedDict] = collections.defaultdict(
            collections.OrderedDict)
        # job -> its ended attempts, in the order they ended: the first to drop, found without
        # walking the unfinished ones (a nested workload's parents stay open below them, and
        # that walk made every record past the bound cost the whole table)
        self.ended: dict[str, collections.OrderedDict] = collections.defaultdict(
            collections.OrderedDict)
        self.dropped: collections.Counter = collections.Counter()  # job -> records dropped
        # the keys dropped last (bounded): a late batch for one of them (a worker's RUNNING
        # after the owner's FINISHED let it go) must not bring back a ghost that never ends
        self.forgotten: collections.OrderedDict = collections.OrderedDict()
        self.max_forgotten = max(10_000, max_per_job)

    def add(self, events) -> None:
        """Apply events ``(task_id, attempt, state, time_s, info | None)`` as senders batch
        them (``worker/task_events.py``): one tuple each, a sender's ``info`` dict shared by
        the events it describes (pickle keeps them one object), so a batch of 20,000 is
        applied in tens of milliseconds."""
        records = self.records
        prepared: dict[int, tuple] = {}  # id(info) -> its (field, value) pairs, interned
        for task_id, attempt, state, t, info in events:
            key = (task_id, attempt)
            rec = records.get(key)
            if rec is None:
                if key in self.forgotten:
                    continue
                job = info.get("job_id") or "" if info else ""
                rec = records[key] = TaskRecord(task_id, attempt, PENDING_ARGS_AVAIL,
                                                job_id=job, state_t=-1.0)
                self.order[job][key] = None
                if len(self.order[job]) > self.max_per_job:
                    self._bound(job)
                    if key not in records:
                        continue
            if info is not None:
                pairs = prepared.get(id(info))
                if pairs is None:
                    pairs = prepared[id(info)] = tuple(
                        (k, sys.intern(v) if type(v) is str and len(v) < 80 else v)
                        for k, v in info.items() if k in _INFO and v is not None)
                job = rec.job_id
                for k, v in pairs:
                    setattr(rec, k, v)
                if rec.job_id != job:  # first seen without its job (a worker's event came first)
                    del self.order[job][key]
                    self.order[rec.job_id][key] = None
                    if self.ended[job].pop(key, False) is None:
                        self.ended[rec.job_id][key] = None
                    self._bound(rec.job_id)
                    if key not in records:
                        continue
            ev = rec.events
            if ev and ev[-1][1] > t:
                ev.append((state, t))
                ev.sort(key=_time)  # another process's batch came in late
            else:
                ev.append((state, t))
            if state == RUN_ENDED:
                continue  # the worker's end of its run: a time for the timeline, not a state
            if rec.state in ENDED and state not in ENDED:
                continue  # a late RUNNING from the worker does not reopen an ended attempt
            if state in ENDED or t >= rec.state_t:
                if state in ENDED and rec.state not in ENDED:
                    self.ended[rec.job_id][key] = None
                rec.state, rec.state_t = state, t

    def _bound(self, job: str) -> None:
        keys, ended = self.order[job], self.ended[job]
        while len(keys) > self.max_per_job:
            if ended:
                victim = ended.popitem(last=False)[0]
            else:
                victim = next(iter(keys))
            del keys[victim]
            del self.records[victim]
            self.dropped[job] += 1
            self.forgotten[victim] = None
            if len(self.forgotten) > self.max_forgotten:
                self.forgotten.popitem(last=False)

    def select(self, filters=(), limit: int = 100, offset: int = 0) -> list[dict]:
        """Records matching every ``(field, equal, value)`` (values compared as strings),
        newest first, at most ``limit`` after skipping ``offset`` matches; the filtering is
        here so only what is asked for crosses the wire (a page deep in the history builds
        no dict for the records before it)."""
        out = []
        skip = offset
        for key in reversed(self.records):
            d = None
            rec = self.records[key]
            ok = True
            for name, equal, value in filters:
                got = _hex(rec.task_id) if name == "task_id" else getattr(rec, name, None)
                if got is None and name in ("start_time_ms", "end_time_ms", "creation_time_ms"):
                    d = d or rec.as_dict()
                    got = d[name]
                if (str(got) == value) is not equal:
                    ok = False
                    break
            if ok:
                if skip:
                    skip -= 1
                    continue
                out.append(d or rec.as_dict())
                if len(out) >= limit:
                    break
        return out

    def summary(self) -> dict:
        """Counts by function name and state: ``{name: {state: n}}``, and what was dropped."""
        by_name: dict[str, collections.Counter] = {}
        for rec in self.records.values():
            by_name.setdefault(rec.func_or_class_name or rec.name, collections.Counter())[
                rec.state] += 1
        return {"summary": {n: dict(c) for n, c in sorted(by_name.items())},
                "total_tasks": len(self.records), "dropped": dict(self.dropped)}

    def timeline(self) -> list[dict]:
        """Chrome trace events (the Perfetto / chrome://tracing JSON format): one complete
        slice per run of a task on its worker -- RUNNING to the worker's end of the run, or to
        the task's end -- in a row per worker (pid: node, tid: worker pid); an actor task
        (recorded by its caller only, to keep actor calls cheap) from its send to its
        reply, in a row per actor."""
        out = []
        for rec in self.records.values():
            start = None
            # an actor task is seen by its caller only: from its send to its reply; so is a
            # task whose worker's batch has not arrived (yet): from its push
            actor = rec.type == "ACTOR_TASK"
            opens = RUNNING if not actor and any(s == RUNNING for s, _ in rec.events) \
                else SUBMITTED_TO_WORKER
            row = f"actor {(rec.actor_id or '?')[:12]}" if actor else \
                f"worker {rec.worker_pid or rec.worker_id}"
            for state, t in rec.events:
                if state == opens and start is None:
                    start = t
                elif start is not None and state in (RUN_ENDED, FINISHED, FAILED):
                    out.append({
                        "name": rec.func_or_class_name or rec.name or "task", "cat": rec.type,
                        "ph": "X", "ts": start * 1e6, "dur": max(0.0, (t - start) * 1e6),
                        "pid": f"node {(rec.node_id or '?')[:12]}",
                        "tid": row,
                        "args": {"task_id": _hex(rec.task_id), "attempt": rec.attempt_number,
                                 "state": rec.state, "job_id": rec.job_id}})
                    start = None
        out.sort(key=lambda e: e["ts"])
        return out

    def validate(self) -> None:
        seen = set()
        for job, keys in self.order.items():
            assert len(keys) <= self.max_per_job, f"job {job}: {len(keys)} records kept"
            for k in keys:
                assert k in self.records and self.records[k].job_id == job, f"{k}: bad order"
                seen.add(k)
        assert seen == set(self.records), "records and order disagree"
        for job, ended in self.ended.items():
            assert set(ended) == {k for k in self.order.get(job, ()) if
                                  self.records[k].state in ENDED}, f"job {job}: ended set"
        for k, rec in self.records.items():
            assert rec.state in STATES, f"{k}: state {rec.state}"
            times = [t for _, t in rec.events]
            assert times == sorted(times), f"{k}: events out of order"
            assert k not in self.forgotten, f"{k}: dropped, yet kept"
        assert len(self.forgotten) <= self.max_forgotten, "the forgotten keys grew unbounded"


def _hex(task_id) -> str:
    return task_id.hex() if isinstance(task_id, bytes) else str(task_id)


def _ms(t: float) -> int:
    return int(t * 1000.0)

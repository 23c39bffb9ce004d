"""A compact, bounded summary of a running experiment, for the dashboard's Tune pages.

The runner feeds every result to an ``ExperimentSummary`` and, every
``PUBLISH_PERIOD_S`` (when something changed) and once at the end, publishes
it as JSON into the control store's KV (``skate.experimental.internal_kv``,
namespace ``skate_dashboard``, key ``tune/<kind>/<experiment>``; ``kind`` is
``tune``, ``train`` for an sgd trainer's run, ``rllib`` for an algorithm's),
where the dashboard reads it without joining the cluster. What it holds:

- per trial (the first ``MAX_TRIALS``): id, name, status, its config
  (flattened; at most ``MAX_CONFIG_KEYS`` keys, long values cut), the last
  numeric results (at most ``MAX_RESULT_KEYS``), the first line of its error;
- a history of at most ``MAX_METRICS`` numeric metrics, the same for every
  trial (the experiment's ``metric`` first, then common ones, then the
  first reported), for the first ``MAX_HISTORY_TRIALS`` trials: at most
  ``MAX_POINTS`` points per metric. A full history is halved (every other
  point kept) and from then on every second result is kept, so a curve
  always spans the whole run at a coarser step, and memory is bounded
  however long the trial runs. The published histories are thinned further
  to ``MAX_PUBLISHED_POINTS`` numbers in all, so an experiment of many
  trials publishes tens of KB, not MBs.

>>> from types import SimpleNamespace
>>> t = SimpleNamespace(trial_id="t1", status="RUNNING", config={"lr": 0.1},
...                     evaluated_params={}, error_msg=None)  # a stand-in for tune's Trial
>>> s = ExperimentSummary("exp", "tune", metric="loss")
>>> for i in (1, 2, 3):
...     s.on_result(t, {"training_iteration": i, "loss": 1.0 / i, "note": "x"})
>>> trial = s.build([t], finished=False)["trials"][0]
>>> trial["history"]["training_iteration"], trial["history"]["loss"]
([1, 2, 3], [1.0, 0.5, 0.333333])
"""

from __future__ import annotations

import json
import logging
import math
import time

logger = logging.getLogger(__name__)

NAMESPACE = "skate_dashboard"
KEY_PREFIX = "tune/"
PUBLISH_PERIOD_S = 2.0
MAX_TRIALS = 200
MAX_HISTORY_TRIALS = 64
MAX_METRICS = 8
MAX_POINTS = 200
MAX_PUBLISHED_POINTS = 20_000
MAX_RESULT_KEYS = 24
MAX_CONFIG_KEYS = 12
MAX_VALUE_CHARS = 80
X_AXIS = "training_iteration"
#: metrics worth a curve when reported, before any other
PREFERRED = ("loss", "val_loss", "accuracy", "episode_return_mean",
             "env_runners/episode_return_mean", "env_steps_per_s", "mean_accuracy", "score")
#: bookkeeping, not metrics (tune's progress table hides the same)
HIDDEN = {"done", "training_iteration", "time_this_iter_s", "time_total_s", "timestamp", "date",
          "pid", "hostname", "node_ip", "trial_id", "iterations_since_restore",
          "time_since_restore", "config", "experiment_tag"}


def kind_of(trainable_cls) -> str:
    """``train`` for an sgd trainer, ``rllib`` for an algorithm (or a subclass), else
    ``tune`` -- told by the modules the class comes from, so tune imports neither."""
    modules = [c.__module__ or "" for c in getattr(trainable_cls, "__mro__", ())]
    if any(m.startswith("skate.sgd") for m in modules):
        return "train"
    if any(m.startswith("skate.rllib") for m in modules):
        return "rllib"
    return "tune"


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    return value


def _short(value):
    if value is None or isinstance(value, (bool, int, float)):
        return _number(value) if isinstance(value, float) else value
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS - 3] + "..."


def _flat(d: dict, prefix: str = "") -> dict:
    out: dict = {}
    for key, value in d.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(_flat(value, name))
        else:
            out[name] = value
    return out


class _History:
    """One trial's curves: x values and one list per chosen metric, halved when full."""

    def __init__(self):
        self.x: list = []
        self.series: dict = {}
        self.stride = 1
        self.seen = 0

    def add(self, x, values: dict) -> None:
        self.seen += 1
        if (self.seen - 1) % self.stride:
            return
        if len(self.x) >= MAX_POINTS:
            self.x = self.x[::2]
            self.series = {k: v[::2] for k, v in self.series.items()}
            self.stride *= 2
            if (self.seen - 1) % self.stride:
                return
        n = len(self.x)
        self.x.append(x)
        for name, value in values.items():
            self.series.setdefault(name, [None] * n).append(value)
        for name, column in self.series.items():
            if len(column) < n + 1:
                column.append(None)

    def published(self, step: int) -> dict:
        keep = list(range(0, len(self.x), step))
        if self.x and keep[-1] != len(self.x) - 1:
            keep.append(len(self.x) - 1)  # the latest point always
        out = {X_AXIS: [self.x[i] for i in keep]}
        out.update({name: [col[i] for i in keep] for name, col in self.series.items()})
        return out


class ExperimentSummary:
    """What the dashboard shows of one experiment; pure (``publish`` is the runner's)."""

    def __init__(self, name: str, kind: str = "tune", metric: str | None = None,
                 mode: str | None = None, clock=time.time):
        self.name = name
        self.kind = kind
        self.metric = metric
        self.mode = mode
        self.clock = clock
        self.start_time = clock()
        self.metrics: list = []  # the chosen curves, in order
        self._histories: dict = {}  # trial_id -> _History
        self._last: dict = {}  # trial_id -> last numeric results

    @property
    def key(self) -> str:
        return f"{KEY_PREFIX}{self.kind}/{self.name}"

    def on_result(self, trial, result: dict) -> None:
        numbers = {}
        for key, value in _flat(result).items():
            n = _number(value)
            if n is not None and key not in HIDDEN and not key.startswith(("__", "config/")):
                numbers[key] = n
        self._choose(numbers)
        last = dict(list(numbers.items())[:MAX_RESULT_KEYS])
        last[X_AXIS] = result.get(X_AXIS)
        self._last[trial.trial_id] = last
        history = self._histories.get(trial.trial_id)
        if history is None and len(self._histories) < MAX_HISTORY_TRIALS:
            history = self._histories[trial.trial_id] = _History()
        if history is not None:
            x = result.get(X_AXIS)
            history.add(x if isinstance(x, int) else history.seen + 1,
                        {m: numbers.get(m) for m in self.metrics})

    def _choose(self, numbers: dict) -> None:
        if len(self.metrics) >= MAX_METRICS:
            return
        ordered = ([self.metric] if self.metric else []) + list(PREFERRED) + list(numbers)
        for name in ordered:
            if name in numbers and name not in self.metrics:
                self.metrics.append(name)
                if len(self.metrics) >= MAX_METRICS:
                    return

    def build(self, trials: list, finished: bool) -> dict:
        """The summary as a JSON-ready dict."""
        shown = list(trials)[:MAX_TRIALS]
        counts: dict = {}
        for t in trials:
            counts[t.status] = counts.get(t.status, 0) + 1
        with_history = [self._histories[t.trial_id] for t in shown
                        if t.trial_id in self._histories]
        numbers = sum(len(h.x) * (1 + len(h.series)) for h in with_history)
        step = max(1, math.ceil(numbers / MAX_PUBLISHED_POINTS))
        rows = []
        for t in shown:
            config = t.evaluated_params or t.config or {}
            flat = list(_flat(config).items())[:MAX_CONFIG_KEYS]
            history = self._histories.get(t.trial_id)
            error = (t.error_msg or "").strip().splitlines()
            rows.append({"trial_id": t.trial_id, "name": _short(str(t)), "status": t.status,
                         "config": {k: _short(v) for k, v in flat},
                         "last_result": self._last.get(t.trial_id, {}),
                         "error": _short(error[-1]) if error else None,
                         "history": history.published(step) if history else None})
        return {"version": 1, "name": self.name, "kind": self.kind, "metric": self.metric,
                "mode": self.mode, "status": "FINISHED" if finished else "RUNNING",
                "start_time": round(self.start_time, 3), "updated": round(self.clock(), 3),
                "num_trials": len(trials), "trial_counts": counts, "metrics": self.metrics,
                "x_axis": X_AXIS, "trials": rows}


class SummaryPublisher:
    """Publishes a summary every ``period_s`` when it changed (``dirty``), and at the end;
    a failure is logged once and never reaches the experiment."""

    def __init__(self, summary: ExperimentSummary, period_s: float = PUBLISH_PERIOD_S,
                 clock=time.monotonic, put=None):
        self.summary = summary
        self.period_s = period_s
        self.clock = clock
        self._put = put or _kv_put
        self._last = -math.inf
        self.dirty = True
        self._failed = False

    def maybe_publish(self, trials: list, finished: bool = False) -> bool:
        now = self.clock()
        if not finished and (not self.dirty or now - self._last < self.period_s):
            return False
        self._last, self.dirty = now, False
        try:
            body = json.dumps(self.summary.build(trials, finished), separators=(",", ":"),
                              default=str)
            self._put(self.summary.key, body.encode())
        except Exception as e:  # noqa: BLE001 - the dashboard's view must not stop a run
            if not self._failed:
                logger.warning("The experiment's summary for the dashboard was not "
                               "published: %s", e)
                self._failed = True
            return False
        return True


def _kv_put(key: str, value: bytes) -> None:
    from skate.experimental import internal_kv

    internal_kv._internal_kv_put(key, value, namespace=NAMESPACE)

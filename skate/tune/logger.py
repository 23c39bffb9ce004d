"""Per-trial result files: params.json, result.json, progress.csv, TensorBoard events.

These are ordinary callbacks the runner always installs. The runner calls
``flush()`` before each write of the experiment state and a trial's files are
closed when it ends, so every result before a checkpoint that resume would
restore from is on disk, and a finished trial's results are never lost;
``ExperimentAnalysis`` and resume read them back.

>>> from skate import tune
>>> import os, tempfile
>>> def f(config):
...     tune.report({"loss": 1.0})
>>> trial = tune.run(f, storage_path=tempfile.mkdtemp(), verbose=0).trials[0]
>>> sorted(n for n in os.listdir(trial.path) if not n.startswith("events"))
['params.json', 'params.pkl', 'progress.csv', 'result.json']
"""

from __future__ import annotations

import csv
import json
import math
import numbers
import os
import time

import cloudpickle

from skate.tune.callback import Callback
from skate.tune.search.variant_generator import flatten_dict

EXPR_PARAM_FILE = "params.json"
EXPR_PARAM_PICKLE_FILE = "params.pkl"
EXPR_RESULT_FILE = "result.json"
EXPR_PROGRESS_FILE = "progress.csv"
EXPR_ERROR_FILE = "error.txt"


def _json_default(value):
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    return repr(value)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return repr(value)


def write_params(trial) -> None:
    os.makedirs(trial.local_path, exist_ok=True)
    with open(os.path.join(trial.local_path, EXPR_PARAM_FILE), "w") as f:
        json.dump(_jsonable(trial.config), f, indent=2, sort_keys=True)
    with open(os.path.join(trial.local_path, EXPR_PARAM_PICKLE_FILE), "wb") as f:
        cloudpickle.dump(trial.config, f)


class JsonLoggerCallback(Callback):
    """One JSON line per result in result.json (and params.json / params.pkl)."""

    def __init__(self):
        self._files: dict = {}

    def on_trial_start(self, iteration, trials, trial, **info):
        if trial.trial_id not in self._files:
            write_params(trial)
            self._files[trial.trial_id] = open(
                os.path.join(trial.local_path, EXPR_RESULT_FILE), "a")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        f = self._files.get(trial.trial_id)
        if f is None:
            self.on_trial_start(iteration, trials, trial)
            f = self._files[trial.trial_id]
        f.write(json.dumps({**result, "config": trial.config}, default=_json_default) + "\n")

    def flush(self):
        for f in self._files.values():
            f.flush()

    def _close(self, trial):
        f = self._files.pop(trial.trial_id, None)
        if f is not None:
            f.close()

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._close(trial)

    on_trial_error = on_trial_complete

    def on_experiment_end(self, trials, **info):
        for f in self._files.values():
            f.close()
        self._files.clear()


class CSVLoggerCallback(Callback):
    """progress.csv: one row per result, columns fixed by the first result (flattened)."""

    def __init__(self):
        self._writers: dict = {}

    def on_trial_result(self, iteration, trials, trial, result, **info):
        entry = self._writers.get(trial.trial_id)
        flat = flatten_dict({k: v for k, v in result.items() if k != "config"}, delimiter="/")
        if entry is None:
            path = os.path.join(trial.local_path, EXPR_PROGRESS_FILE)
            os.makedirs(trial.local_path, exist_ok=True)
            exists = os.path.exists(path) and os.path.getsize(path) > 0
            columns = _existing_columns(path) if exists else list(flat)
            f = open(path, "a", newline="")
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            if not exists:
                writer.writeheader()
            entry = self._writers[trial.trial_id] = (f, writer)
        entry[1].writerow(flat)

    def flush(self):
        for f, _ in self._writers.values():
            f.flush()

    def _close(self, trial):
        entry = self._writers.pop(trial.trial_id, None)
        if entry is not None:
            entry[0].close()

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._close(trial)

    on_trial_error = on_trial_complete

    def on_experiment_end(self, trials, **info):
        for f, _ in self._writers.values():
            f.close()
        self._writers.clear()


def _existing_columns(path: str) -> list:
    with open(path, newline="") as f:
        return next(csv.reader(f), [])


class TBXLoggerCallback(Callback):
    """TensorBoard event files (tensorboardX): every numeric metric, by training_iteration.

    The events are written by a small actor (no CPU reserved), fed a batch at
    every ``flush()``: tensorboardX imports torch, which would cost the driver more
    than a second, and a summary per scalar in the driver's loop would cost
    more than the rest of a result's handling. The actor starts with the first
    batch, not with the first trial: a trial starting at the same moment would
    otherwise race it for the idle worker a driver may have warmed for the trial.
    """

    def __init__(self):
        self._writer = None
        self._batch: list = []

    def _ensure_writer(self):
        if self._writer is None:
            import skate
            from skate.tune.event_writer import EventWriter

            self._writer = skate.remote(EventWriter).options(num_cpus=0).remote()
        return self._writer

    def on_trial_result(self, iteration, trials, trial, result, **info):
        scalars = {}
        for key, value in flatten_dict({k: v for k, v in result.items() if k != "config"},
                                       delimiter="/").items():
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                continue
            if key not in _TBX_SKIP and not math.isnan(value):
                scalars[key] = float(value)
        self._batch.append((trial.local_path, int(result.get("training_iteration", 0)),
                            time.time(), scalars))

    def flush(self):
        self._send()

    def _send(self):
        if not self._batch:
            return
        self._ensure_writer().write.remote(self._batch)
        self._batch = []

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._send()
        if self._writer is not None:
            self._writer.close.remote(trial.local_path)

    on_trial_error = on_trial_complete

    def on_experiment_end(self, trials, **info):
        self._send()
        if self._writer is not None:
            import skate

            try:
                skate.get(self._writer.close_all.remote(), timeout=30)
            finally:
                skate.kill(self._writer)
            self._writer = None


_TBX_SKIP = {"timestamp", "pid", "training_iteration"}


def default_loggers() -> list:
    return [JsonLoggerCallback(), CSVLoggerCallback(), TBXLoggerCallback()]

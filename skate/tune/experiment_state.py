"""The experiment state file: enough to resume after a crash, written atomically.

``experiment_state.json`` holds every trial's record (status, config, last
result, checkpoints); ``searcher-state.pkl`` and ``scheduler-state.pkl`` hold
the search algorithm and scheduler, so a resumed run continues the same
study; ``tuner.pkl`` holds what was passed to ``tune.run`` / ``Tuner`` so
``Tuner.restore(path)`` can rebuild the experiment.

Writes go to a temporary file and are renamed into place: a ``kill -9`` at any
instant leaves either the previous state or the new one, never half of one.
The full state is rewritten at most every half second; in between, each trial
that finishes appends its record to ``trial-journal.jsonl`` (one flushed
line, cheap however many trials there are), and loading replays the journal
lines newer than the state file over it. So a finished trial is never lost,
and many short trials do not pay for rewriting every trial's record.
"""

from __future__ import annotations

import json
import os
import time

import cloudpickle

from skate.tune.trial import Trial

STATE_FILE = "experiment_state.json"
SEARCHER_FILE = "searcher-state.pkl"
SCHEDULER_FILE = "scheduler-state.pkl"
JOURNAL_FILE = "trial-journal.jsonl"
TUNER_FILE = "tuner.pkl"


def _atomic_write(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def save_state(experiment_dir: str, trials: list, *, searcher_finished: bool,
               id_prefix: str, journal_seq: int = 0, extra: dict | None = None) -> None:
    state = {"timestamp": time.time(), "searcher_finished": searcher_finished,
             "id_prefix": id_prefix, "journal_seq": journal_seq,
             "trials": [t.to_state() for t in trials], **(extra or {})}
    _atomic_write(os.path.join(experiment_dir, STATE_FILE),
                  json.dumps(state, default=repr).encode())


class Journal:
    """Append-only record of finished trials between two state files."""

    def __init__(self, experiment_dir: str, seq: int = 0):
        self._file = open(os.path.join(experiment_dir, JOURNAL_FILE), "a")
        self.seq = seq  # the sequence number of the last line written

    def append(self, trial: Trial) -> None:
        self.seq += 1
        self._file.write(json.dumps({"seq": self.seq, "trial": trial.to_state()},
                                    default=repr) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _replay_journal(experiment_dir: str, after: int, trials: list) -> int:
    by_id = {t.trial_id: i for i, t in enumerate(trials)}
    seq = after
    try:
        with open(os.path.join(experiment_dir, JOURNAL_FILE)) as f:
            lines = f.readlines()
    except FileNotFoundError:
        return seq
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            break  # a line cut short by a crash: everything before it counts
        seq = max(seq, entry["seq"])
        if entry["seq"] <= after:
            continue
        record = Trial.from_state(entry["trial"])
        if record.trial_id in by_id:
            trials[by_id[record.trial_id]] = record
    return seq


def save_pickle(experiment_dir: str, name: str, obj) -> None:
    _atomic_write(os.path.join(experiment_dir, name), cloudpickle.dumps(obj))


def load_pickle(experiment_dir: str, name: str):
    path = os.path.join(experiment_dir, name)
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return cloudpickle.load(f)


def exists(experiment_dir: str) -> bool:
    return os.path.exists(os.path.join(experiment_dir, STATE_FILE))


def load_state(experiment_dir: str) -> tuple[list, dict]:
    """(trials, the rest of the state) from an experiment folder."""
    path = os.path.join(experiment_dir, STATE_FILE)
    try:
        with open(path) as f:
            state = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"No experiment to resume in {experiment_dir!r}: {STATE_FILE} is "
                         f"missing. Pass the folder tune.run printed (storage_path/name).") \
            from None
    trials = [Trial.from_state(s) for s in state.pop("trials")]
    state["journal_seq"] = _replay_journal(experiment_dir, state.get("journal_seq", 0), trials)
    return trials, state

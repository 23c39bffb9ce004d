"""A trial: one configuration of the trainable, and everything known about its run.

A ``Trial`` is plain data owned by the controller; the I/O shell reads it to
start actors and write files, schedulers and searchers read it to decide. It
round-trips through ``to_state``/``from_state`` (JSON), which is what the
experiment state file holds for resume.

>>> t = Trial("0001", {"lr": 0.1}, experiment_tag="0_lr=0.1000")
>>> t.status, Trial.from_state(t.to_state()).config
('PENDING', {'lr': 0.1})
"""

from __future__ import annotations

import os

from skate.tune.checkpoint import Checkpoint


class Trial:
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    TERMINATED = "TERMINATED"
    ERROR = "ERROR"

    def __init__(self, trial_id: str, config: dict, *, experiment_tag: str = "",
                 evaluated_params: dict | None = None, resources: dict | None = None,
                 bundles: list | None = None, strategy: str = "PACK", local_path: str = "",
                 trainable_name: str = ""):
        self.trial_id = trial_id
        self.config = config
        self.experiment_tag = experiment_tag
        self.evaluated_params = evaluated_params or {}
        # resources: flat {"CPU": 1, "GPU": 0.5, ...} the trial holds while running;
        # bundles/strategy are set when the trainable asked for a placement group.
        self.resources = resources or {"CPU": 1}
        self.bundles = bundles
        self.strategy = strategy
        self.local_path = local_path  # the trial's folder in the experiment folder
        self.trainable_name = trainable_name
        self.custom_name: str | None = None  # from tune.run(trial_name_creator=...)
        self.status = Trial.PENDING
        self.last_result: dict = {}
        self.num_results = 0  # results logged (result.json lines)
        self.num_failures = 0
        self.error_file: str | None = None
        self.error_msg: str | None = None
        self.checkpoints: list[tuple[str, dict]] = []  # (path, result at save), oldest first
        self.restore_path: str | None = None  # the checkpoint the next start restores
        self.metric_analysis: dict = {}  # metric -> {"max", "min", "avg", "last"}
        self._metric_n: dict = {}

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The latest persisted checkpoint, or None."""
        return Checkpoint(self.checkpoints[-1][0]) if self.checkpoints else None

    @property
    def path(self) -> str:
        return self.local_path

    @property
    def logdir(self) -> str:
        return self.local_path

    @property
    def error(self) -> str | None:
        return self.error_msg

    def is_finished(self) -> bool:
        return self.status in (Trial.TERMINATED, Trial.ERROR)

    def update_last_result(self, result: dict) -> None:
        self.last_result = result
        self.num_results += 1
        for key, value in result.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            stats = self.metric_analysis.get(key)
            if stats is None:
                self.metric_analysis[key] = {"max": value, "min": value, "avg": value,
                                             "last": value}
                self._metric_n[key] = 1
                continue
            n = self._metric_n[key] = self._metric_n.get(key, 1) + 1
            stats["max"] = max(stats["max"], value)
            stats["min"] = min(stats["min"], value)
            stats["avg"] += (value - stats["avg"]) / n
            stats["last"] = value

    def __repr__(self):
        if self.custom_name:
            return self.custom_name
        return f"{self.trainable_name}_{self.trial_id}" if self.trainable_name else self.trial_id

    def __str__(self):
        return repr(self)

    @property
    def dir_name(self) -> str:
        return os.path.basename(self.local_path)

    def to_state(self) -> dict:
        """JSON-ready state, enough to rebuild the trial on resume."""
        return {
            "trial_id": self.trial_id, "config": self.config,
            "experiment_tag": self.experiment_tag, "evaluated_params": self.evaluated_params,
            "resources": self.resources, "bundles": self.bundles, "strategy": self.strategy,
            "local_path": self.local_path, "trainable_name": self.trainable_name,
            "custom_name": self.custom_name, "status": self.status, "last_result": self.last_result,
            "num_results": self.num_results, "num_failures": self.num_failures,
            "error_file": self.error_file, "error_msg": self.error_msg,
            "checkpoints": self.checkpoints, "restore_path": self.restore_path,
            "metric_analysis": self.metric_analysis, "metric_n": self._metric_n,
        }

    @classmethod
    def from_state(cls, state: dict) -> "Trial":
        t = cls(state["trial_id"], state["config"], experiment_tag=state["experiment_tag"],
                evaluated_params=state["evaluated_params"], resources=state["resources"],
                bundles=state["bundles"], strategy=state["strategy"],
                local_path=state["local_path"], trainable_name=state["trainable_name"])
        t.custom_name = state.get("custom_name")
        t.status = state["status"]
        t.last_result = state["last_result"]
        t.num_results = state["num_results"]
        t.num_failures = state["num_failures"]
        t.error_file = state["error_file"]
        t.error_msg = state["error_msg"]
        t.checkpoints = [tuple(c) for c in state["checkpoints"]]
        t.restore_path = state["restore_path"]
        t.metric_analysis = state["metric_analysis"]
        t._metric_n = state["metric_n"]
        return t

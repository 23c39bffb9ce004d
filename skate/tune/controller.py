"""The Tune controller's decisions, as a pure state machine: events in, commands out.

Design. An experiment is a set of ``Trial`` records. The I/O shell
(``runner.py``) owns actors and files; it tells the controller what happened
(``launch`` when resources may be free, ``on_result``, ``on_error``,
``on_saved``) and executes the commands that come back, in order:

* ``Start(trial, restore)``: run the trial in an actor (restoring a checkpoint);
* ``Train(trial)``: ask the trial for its next result;
* ``Save(trial)``: checkpoint it now (the shell answers with ``on_saved``);
* ``Stop(trial)``: release its actor (the trial's new status is already set);
* ``Restart(trial, source)``: stop and start again from ``source``'s latest
  checkpoint (PBT's exploit; ``source`` is the trial itself after a failure);
* ``DeleteCheckpoint(path)``: a checkpoint fell out of ``keep_checkpoints_num``.

The searcher proposes configs, the scheduler judges results, the stopper
ends trials or the whole experiment; each gets only trials and results. No
clocks, no processes, no randomness here, so every path is unit-tested by
feeding events (tests/tune/test_controller.py).

Invariants: a RUNNING trial holds its resources in ``used_resources()``;
exactly one ``Train`` is outstanding per RUNNING trial (the shell issues it
after ``Start``); a trial leaves RUNNING only through a command that
releases its actor.
"""

from __future__ import annotations

import dataclasses
import math

from skate.tune.schedulers.trial_scheduler import Exploit, TrialScheduler
from skate.tune.search.searcher import Searcher
from skate.tune.trial import Trial


@dataclasses.dataclass(frozen=True)
class Start:
    trial: Trial
    restore: str | None = None


@dataclasses.dataclass(frozen=True)
class Train:
    trial: Trial


@dataclasses.dataclass(frozen=True)
class Save:
    trial: Trial


@dataclasses.dataclass(frozen=True)
class Stop:
    trial: Trial
    failed: bool = False  # the actor is broken: kill it rather than reuse it


@dataclasses.dataclass(frozen=True)
class Restart:
    trial: Trial
    source: Trial


@dataclasses.dataclass(frozen=True)
class DeleteCheckpoint:
    path: str


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the controller needs to know about the run (from tune.run's arguments)."""

    metric: str | None = None
    mode: str | None = None
    num_samples: int = 1
    max_failures: int = 0
    max_concurrent_trials: int = 0  # 0: as many as resources allow
    checkpoint_freq: int = 0
    checkpoint_at_end: bool = False
    keep_checkpoints_num: int | None = None
    checkpoint_score_attr: str | None = None
    fail_fast: bool | str = False  # a trial's final failure ends the experiment
    searcher_counts_samples: bool = True  # False for the variant generator (it counts itself)
    # Trials suggested ahead of free resources. As in Ray: many for the variant generator
    # (so schedulers such as HyperBand see a full population early), one for model-based
    # searchers (a config suggested later is suggested with more results known).
    max_pending_trials: int = 1


class Controller:
    """Holds the trials and decides; see the module docstring for the protocol."""

    def __init__(self, settings: Settings, searcher: Searcher, scheduler: TrialScheduler,
                 stopper, make_trial, id_prefix: str, trials: list | None = None,
                 searcher_finished: bool = False):
        self.settings = settings
        self.searcher = searcher
        self.scheduler = scheduler
        self.stopper = stopper
        self._make_trial = make_trial  # (trial_id, index, config) -> Trial
        self._id_prefix = id_prefix
        self.trials: list[Trial] = list(trials or [])
        self.searcher_finished = searcher_finished
        self.stopped_all = False  # the stopper ended the experiment
        self._checked_metric = False

    # ---- queries ------------------------------------------------------------------------------

    def used_resources(self) -> dict:
        used: dict = {}
        for t in self.trials:
            if t.status == Trial.RUNNING:
                for k, v in t.resources.items():
                    used[k] = used.get(k, 0.0) + v
        return used

    def is_finished(self) -> bool:
        if any(t.status == Trial.RUNNING for t in self.trials):
            return False
        if self.stopped_all:
            return True
        waiting = any(t.status in (Trial.PENDING, Trial.PAUSED) for t in self.trials)
        return self.searcher_finished and not waiting

    # ---- events -------------------------------------------------------------------------------

    def launch(self, total: dict) -> list:
        """Start every trial that fits in ``total`` resources right now."""
        commands = []
        while not self.stopped_all:
            running = sum(1 for t in self.trials if t.status == Trial.RUNNING)
            if self.settings.max_concurrent_trials and \
                    running >= self.settings.max_concurrent_trials:
                break
            free = {k: v - self.used_resources().get(k, 0.0) for k, v in total.items()}
            waiting = [t for t in self.trials
                       if t.status in (Trial.PENDING, Trial.PAUSED) and _fits(t.resources, free)]
            trial = self.scheduler.choose_trial_to_run(waiting) if waiting else None
            if trial is None:
                pending = sum(1 for t in self.trials if t.status == Trial.PENDING)
                if pending >= self.settings.max_pending_trials:
                    break  # enough suggested trials wait for resources already
                trial = self._suggest(total)
                if trial is None:
                    break
                if not _fits(trial.resources, free):
                    continue  # it waits as PENDING; maybe suggest more ahead
            restore, trial.restore_path = trial.restore_path, None
            if restore is None and trial.status == Trial.PAUSED and trial.checkpoint:
                restore = trial.checkpoint.path  # saved when it was paused
            trial.status = Trial.RUNNING
            commands.append(Start(trial, restore))
        return commands

    def on_result(self, trial: Trial, result: dict) -> list:
        """A ``Train`` answered; returns what to do with the trial next."""
        if result.get("__done__"):
            return self._complete(trial)
        checkpoint = result.pop("__checkpoint__", None)
        self._check_metric(result)
        trial.update_last_result(result)
        commands = []
        if checkpoint:
            commands += self.on_saved(trial, checkpoint)
        freq = self.settings.checkpoint_freq
        periodic = bool(freq) and result.get("training_iteration", 0) % freq == 0
        if result.get("done") or self.stopper(trial.trial_id, result):
            return commands + self._complete(trial, save=periodic)
        if self.stopper.stop_all():
            return commands + self._complete(trial) + self._end_experiment(trial)
        self.searcher.on_trial_result(trial.trial_id, result)
        decision = self.scheduler.on_trial_result(trial, result)
        commands += self._scheduler_stops()
        if trial.status != Trial.RUNNING:
            return commands
        if decision == TrialScheduler.STOP:
            return commands + self._complete(trial, save=periodic)
        if decision == TrialScheduler.PAUSE:
            trial.status = Trial.PAUSED
            return commands + [Save(trial), Stop(trial)]
        if isinstance(decision, Exploit):
            return commands + self._exploit(trial, decision)
        if periodic:
            commands.append(Save(trial))
        return commands + [Train(trial)]

    def on_saved(self, trial: Trial, path: str | None) -> list:
        """A checkpoint of ``trial`` now lives at ``path``; apply the retention policy."""
        if not path or (trial.checkpoints and trial.checkpoints[-1][0] == path):
            return []
        trial.checkpoints.append((path, dict(trial.last_result)))
        keep = self.settings.keep_checkpoints_num
        if not keep or len(trial.checkpoints) <= keep:
            return []
        older = trial.checkpoints[:-1]  # the latest is always kept: restarts need it
        worst = min(older, key=self._checkpoint_score)
        trial.checkpoints.remove(worst)
        return [DeleteCheckpoint(worst[0])]

    def on_error(self, trial: Trial, error: str) -> list:
        """The trial's actor raised or died; retry from its checkpoint or mark it ERROR."""
        trial.num_failures += 1
        trial.error_msg = error
        limit = self.settings.max_failures
        if self.stopped_all or not (limit < 0 or trial.num_failures <= limit):
            trial.status = Trial.ERROR
            self.scheduler.on_trial_error(trial)
            self.searcher.on_trial_complete(trial.trial_id, None, error=True)
            commands = [Stop(trial, failed=True)] + self._scheduler_stops()
            if self.settings.fail_fast:
                commands += self._end_experiment(trial)
            return commands
        trial.status = Trial.PENDING
        checkpoint = trial.checkpoint
        trial.restore_path = checkpoint.path if checkpoint else None
        return [Stop(trial, failed=True)]

    def stop_all_trials(self) -> list:
        """Ctrl-C: release every running trial, leaving it resumable (PENDING)."""
        commands = []
        for t in self.trials:
            if t.status == Trial.RUNNING:
                t.status = Trial.PENDING
                checkpoint = t.checkpoint
                t.restore_path = checkpoint.path if checkpoint else None
                commands.append(Stop(t))
        return commands

    # ---- internals ----------------------------------------------------------------------------

    def _suggest(self, total: dict) -> Trial | None:
        if self.searcher_finished:
            return None
        trial_id = f"{self._id_prefix}_{len(self.trials):05d}"
        if self.settings.searcher_counts_samples is False or \
                len(self.trials) < self.settings.num_samples:
            config = self.searcher.suggest(trial_id)
        else:
            config = Searcher.FINISHED
        if config == Searcher.FINISHED:
            self.searcher_finished = True
            return None
        if config is None:
            return None
        trial = self._make_trial(trial_id, len(self.trials), config)
        missing = {k: v for k, v in trial.resources.items() if v > total.get(k, 0.0)}
        if missing:
            raise ValueError(
                f"Trial {trial} asks for {trial.resources} but the whole cluster has "
                f"{_show(total)}: it could never start. Lower resources_per_trial (or the "
                f"PlacementGroupFactory), or add nodes with skate start --address.")
        self.trials.append(trial)
        self.scheduler.on_trial_add(trial)
        return trial

    def _complete(self, trial: Trial, save: bool = False) -> list:
        if trial.status in (Trial.TERMINATED, Trial.ERROR):
            return []
        was_running = trial.status == Trial.RUNNING
        trial.status = Trial.TERMINATED
        trial.last_result = {**trial.last_result, "done": True}
        self.searcher.on_trial_complete(trial.trial_id, trial.last_result)
        self.scheduler.on_trial_complete(trial, trial.last_result)
        commands = []
        if was_running:
            commands = [Save(trial)] if save or self.settings.checkpoint_at_end else []
            commands.append(Stop(trial))
        return commands + self._scheduler_stops()

    def _end_experiment(self, trial: Trial) -> list:
        """Stop suggesting and end every other unfinished trial (stop_all, fail_fast)."""
        self.stopped_all = True
        self.searcher_finished = True
        commands = []
        for other in self.trials:
            if other is not trial and other.status in (Trial.RUNNING, Trial.PENDING,
                                                        Trial.PAUSED):
                commands += self._complete(other)
        return commands

    def _scheduler_stops(self) -> list:
        """Other trials the scheduler decided to end (e.g. HyperBand's losing paused trials)."""
        commands = []
        for trial_id in self.scheduler.pop_trials_to_stop():
            for other in self.trials:
                if other.trial_id == trial_id:
                    commands += self._complete(other)
        return commands

    def _exploit(self, trial: Trial, decision: Exploit) -> list:
        source = decision.source
        trial.config = decision.config
        if source is trial:
            return [Save(trial), Restart(trial, trial)]
        commands = [Save(source)] if source.status == Trial.RUNNING else []
        return commands + [Restart(trial, source)]

    def _check_metric(self, result: dict) -> None:
        metric = self.settings.metric
        if self._checked_metric or metric is None:
            return
        if metric not in result:
            reported = sorted(k for k in result if not k.startswith("__"))
            raise ValueError(
                f"A trial reported a result without the metric {metric!r} that tune.run / "
                f"TuneConfig expects (metric={metric!r}). It reported: {reported}. Report the "
                f"metric with tune.report({{{metric!r}: ...}}) or fix the metric name.")
        self._checked_metric = True

    def _checkpoint_score(self, entry) -> float:
        attr = self.settings.checkpoint_score_attr
        if not attr:
            return _order(entry)
        sign = 1.0
        if attr.startswith("min-"):
            attr, sign = attr[4:], -1.0
        value = entry[1].get(attr)
        if value is None:
            return -math.inf
        return sign * float(value)


def _order(entry) -> float:
    # Without a score attribute the oldest checkpoint goes first.
    return float(entry[1].get("training_iteration", 0))


def _fits(need: dict, free: dict) -> bool:
    return all(v <= free.get(k, 0.0) + 1e-9 for k, v in need.items())


def _show(resources: dict) -> str:
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in sorted(resources.items())) + "}"

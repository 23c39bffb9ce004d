"""The I/O shell around the controller: actors, futures, files, the terminal.

One loop: let the controller launch what fits, wait for any trial's next
result (``skate.wait`` over one outstanding ``train`` call per trial), feed it
to the controller, execute the commands that come back, write state. Actors
are reused between trials when the trainable allows (``reuse_actors``), which
is what makes many short trials cheap: a reused actor costs one method call,
a new one a process.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
import time
import traceback

import skate
from skate.tune import experiment_state
from skate.tune.callback import CallbackList
from skate.tune.controller import Controller, DeleteCheckpoint, Restart, Save, Start, Stop, Train
from skate.tune.experiment_summary import ExperimentSummary, SummaryPublisher, kind_of
from skate.tune.logger import EXPR_ERROR_FILE
from skate.tune.trial import Trial
from skate.tune.trial_actor import TrialActor
from skate.util import metrics

logger = logging.getLogger(__name__)

_RESOURCE_REFRESH_S = 2.0  # how often the cluster's size is re-read (nodes come and go)
_STATE_PERIOD_S = 0.5  # result files are flushed and the state file written this often


class Runner:
    """Runs one experiment's controller to completion (or Ctrl-C)."""

    def __init__(self, controller: Controller, trainable_cls: type, experiment_dir: str,
                 experiment_name: str, loggers: list, callbacks: list, reporter,
                 reuse_actors: bool,
                 state_extra: dict | None = None, journal_seq: int = 0):
        self.controller = controller
        self.trainable_cls = trainable_cls
        self.experiment_dir = experiment_dir
        self.experiment_name = experiment_name
        self._loggers = loggers  # result files: flushed before each state write
        self.callbacks = CallbackList(loggers + callbacks)
        self.reporter = reporter
        self.reuse_actors = reuse_actors
        self.interrupted = False
        self._state_extra = state_extra or {}
        self._journal = experiment_state.Journal(experiment_dir, journal_seq)
        self._actor_cls = skate.remote(TrialActor)
        self._actors: dict = {}  # trial_id -> (actor, placement group or None)
        self._pool: dict = {}  # resources key -> [idle actor, ...] (reuse_actors)
        self._futures: dict = {}  # train ObjectRef -> trial
        self._start_refs: dict = {}  # trial_id -> its latest start() call (errors explain train's)
        self._iteration = 0
        self._total: dict = {}
        self._total_read = -1e9
        self._state_written = -1e9
        self._state_dirty = True
        # what the dashboard shows of the run, published into the KV every ~2 s (docs/dashboard.md)
        self._summary = SummaryPublisher(ExperimentSummary(
            os.path.basename(experiment_dir), kind_of(trainable_cls),
            self._state_extra.get("metric"), self._state_extra.get("mode")))

    # ---- the loop -----------------------------------------------------------------------------

    def run(self) -> None:
        trials = self.controller.trials
        ctrl_c = _CtrlC()
        try:
            while True:
                if ctrl_c.pressed:
                    raise KeyboardInterrupt
                self._iteration += 1
                self.callbacks.on_step_begin(iteration=self._iteration, trials=trials)
                self._execute(self.controller.launch(self._total_resources()))
                if self.controller.is_finished():
                    break
                self._process_ready()
                self.callbacks.on_step_end(iteration=self._iteration, trials=trials)
                self._gauge_trials(trials)
                self._summary.dirty |= self._state_dirty
                self._write_state(force=False)
                self._summary.maybe_publish(trials)
                if self.reporter is not None and self.reporter.should_report(trials):
                    self.reporter.report(trials, done=False)
        except KeyboardInterrupt:
            self.interrupted = True
            self._execute(self.controller.stop_all_trials())
            logger.warning("Experiment interrupted; its state is saved. Resume it with "
                           "tune.run(..., resume=True) or tune.Tuner.restore(%r).",
                           self.experiment_dir)
        finally:
            ctrl_c.restore()
            self._release_everything()
            self._gauge_trials(trials)
            self._write_state(force=True)
            self._summary.maybe_publish(trials, finished=True)
            self._journal.close()
            self.callbacks.on_experiment_end(trials=trials)
        if self.reporter is not None:
            self.reporter.report(trials, done=True)

    def _gauge_trials(self, trials) -> None:
        """Trials by status as a metric (``tune_trials{experiment, status}``)."""
        gauge = getattr(self, "_trials_gauge", None)
        if gauge is None:
            gauge = self._trials_gauge = metrics.Gauge(
                "tune_trials", "Trials of the experiment by status.", ("experiment", "status"))
        counts = dict.fromkeys((Trial.PENDING, Trial.RUNNING, Trial.PAUSED, Trial.TERMINATED,
                                Trial.ERROR), 0)
        for t in trials:
            counts[t.status] = counts.get(t.status, 0) + 1
        name = os.path.basename(self.experiment_dir)
        for status, n in counts.items():
            gauge.set(n, tags={"experiment": name, "status": status})

    def _count_result(self, trial) -> None:
        """``tune_trial_iterations{experiment, trial}``: results (training iterations) per
        trial -- an sgd trainer's iterations too, as its runs are trials. Counted here, in
        the driver, so no iteration is lost with a trial's process."""
        counter = getattr(self, "_results_counter", None)
        if counter is None:
            counter = self._results_counter = metrics.Counter(
                "tune_trial_iterations", "Training iterations reported, per trial.",
                ("experiment", "trial"))
        counter.inc(tags={"experiment": os.path.basename(self.experiment_dir),
                          "trial": os.path.basename(trial.path) if trial.path else
                          trial.trial_id})

    def _process_ready(self) -> None:
        if not self._futures:
            return
        ready, _ = skate.wait(list(self._futures), num_returns=1, timeout=0.5)
        if ready:
            # Take everything else that is already done too: one wait per batch, not per result.
            more, _ = skate.wait(list(self._futures), num_returns=len(self._futures), timeout=0)
            ready = list(dict.fromkeys(ready + more))
        for ref in ready:
            trial = self._futures.pop(ref, None)
            if trial is None or trial.status != Trial.RUNNING:
                continue
            self._state_dirty = True
            try:
                result = skate.get(ref)
            except Exception as e:  # noqa: BLE001 - the trial's failure, handled by policy
                self._fail(trial, self._start_error(trial) or e)
                continue
            done = bool(result.get("__done__"))
            commands = self.controller.on_result(trial, result)
            if not done:
                self._count_result(trial)
                self._summary.summary.on_result(trial, result)
                self._summary.dirty = True
                self.callbacks.on_trial_result(iteration=self._iteration,
                                               trials=self.controller.trials, trial=trial,
                                               result=result)
            self._execute(commands)

    # ---- commands -----------------------------------------------------------------------------

    def _execute(self, commands: list) -> None:
        for command in commands:
            if isinstance(command, Train):
                self._train(command.trial)
            elif isinstance(command, Start):
                self._start(command.trial, command.restore)
            elif isinstance(command, Save):
                self._save(command.trial)
            elif isinstance(command, Stop):
                self._stop(command.trial, command.failed)
            elif isinstance(command, Restart):
                self._restart(command.trial, command.source)
            elif isinstance(command, DeleteCheckpoint):
                shutil.rmtree(command.path, ignore_errors=True)
            else:  # pragma: no cover - a controller bug
                raise AssertionError(f"unknown command {command!r}")

    def _start(self, trial: Trial, restore: str | None) -> None:
        self._state_dirty = True
        actor, pg, reused = self._acquire_actor(trial)
        self._actors[trial.trial_id] = (actor, pg)
        info = {"trial_id": trial.trial_id, "trial_name": str(trial),
                "trial_dir": trial.local_path, "experiment_name": self.experiment_name,
                "resources": trial.resources}
        self._start_refs[trial.trial_id] = actor.start.remote(
            None if reused else self.trainable_cls, trial.config, info, restore)
        self.callbacks.on_trial_start(iteration=self._iteration, trials=self.controller.trials,
                                      trial=trial)
        if restore:
            self.callbacks.on_trial_restore(iteration=self._iteration,
                                            trials=self.controller.trials, trial=trial)
        self._train(trial)

    def _start_error(self, trial: Trial) -> BaseException | None:
        """Why the trial's start() call failed (say, its class would not unpickle), if it did."""
        ref = self._start_refs.get(trial.trial_id)
        if ref is None or not skate.wait([ref], timeout=0)[0]:
            return None
        try:
            skate.get(ref)
        except Exception as e:  # noqa: BLE001
            return e
        return None

    def _train(self, trial: Trial) -> None:
        actor, _ = self._actors[trial.trial_id]
        self._futures[actor.train.remote()] = trial

    def _save(self, trial: Trial) -> None:
        entry = self._actors.get(trial.trial_id)
        if entry is None:
            return
        try:
            path = skate.get(entry[0].save.remote())
        except Exception as e:  # noqa: BLE001
            self._fail(trial, e)
            return
        if path:
            self._execute(self.controller.on_saved(trial, path))
            self.callbacks.on_trial_save(iteration=self._iteration,
                                         trials=self.controller.trials, trial=trial)

    def _stop(self, trial: Trial, failed: bool) -> None:
        self._state_dirty = True
        self._futures = {ref: t for ref, t in self._futures.items() if t is not trial}
        entry = self._actors.pop(trial.trial_id, None)
        if entry is not None:
            self._release_actor(trial, *entry, failed=failed)
        if trial.status == Trial.TERMINATED:
            self.callbacks.on_trial_complete(iteration=self._iteration,
                                             trials=self.controller.trials, trial=trial)
        elif trial.status == Trial.ERROR:
            self.callbacks.on_trial_error(iteration=self._iteration,
                                          trials=self.controller.trials, trial=trial)
        if trial.is_finished():
            self._journal.append(trial)

    def _restart(self, trial: Trial, source: Trial) -> None:
        checkpoint = source.checkpoint or trial.checkpoint
        if source is not trial and source.checkpoint is None:
            logger.warning("%s has no checkpoint to copy into %s; it continues from its own "
                           "with the new config. Report checkpoints for PBT to exploit.",
                           source, trial)
        entry = self._actors.pop(trial.trial_id, None)
        self._futures = {ref: t for ref, t in self._futures.items() if t is not trial}
        if entry is not None:
            self._release_actor(trial, *entry, failed=False)
        self._start(trial, checkpoint.path if checkpoint else None)

    def _fail(self, trial: Trial, error: BaseException) -> None:
        text = _error_text(error)
        os.makedirs(trial.local_path, exist_ok=True)
        trial.error_file = os.path.join(trial.local_path, EXPR_ERROR_FILE)
        with open(trial.error_file, "a") as f:
            f.write(f"Failure # {trial.num_failures + 1} (at {time.strftime('%c')})\n{text}\n")
        logger.warning("Trial %s failed (failure %d):\n%s", trial, trial.num_failures + 1, text)
        self._execute(self.controller.on_error(trial, text))

    # ---- actors -------------------------------------------------------------------------------

    def _pool_key(self, trial: Trial):
        return tuple(sorted(trial.resources.items()))

    def _acquire_actor(self, trial: Trial):
        if trial.bundles is None and self.reuse_actors:
            idle = self._pool.get(self._pool_key(trial))
            if idle:
                return idle.pop(), None, True
        if trial.bundles is not None and any(trial.bundles):
            from skate.util import placement_group
            from skate.util.scheduling_strategies import PlacementGroupSchedulingStrategy

            head = trial.bundles[0]
            # an empty head bundle (Ray's convention): the trial's actor holds nothing and
            # the group is the other bundles, which the trainable's own actors fill
            pg = placement_group(trial.bundles if head else trial.bundles[1:],
                                 strategy=trial.strategy)
            strategy = PlacementGroupSchedulingStrategy(
                pg, placement_group_bundle_index=0 if head else -1,
                placement_group_capture_child_tasks=True)
            actor = self._actor_cls.options(
                num_cpus=head.get("CPU", 0), num_gpus=head.get("GPU", 0),
                resources={k: v for k, v in head.items() if k not in ("CPU", "GPU")},
                scheduling_strategy=strategy).remote()
            return actor, pg, False
        # Evict idle actors of other shapes first: they hold resources this trial may need.
        for key in list(self._pool):
            if key != self._pool_key(trial):
                for idle in self._pool.pop(key):
                    self._terminate(idle)
        res = trial.resources
        actor = self._actor_cls.options(
            num_cpus=res.get("CPU", 0), num_gpus=res.get("GPU", 0),
            memory=res.get("memory") or None,
            resources={k: v for k, v in res.items() if k not in ("CPU", "GPU", "memory")},
        ).remote()
        return actor, None, False

    def _release_actor(self, trial: Trial, actor, pg, failed: bool) -> None:
        if failed or pg is not None or not self.reuse_actors:
            if failed:
                skate.kill(actor)
            else:
                self._terminate(actor)
            if pg is not None:
                from skate.util import remove_placement_group

                remove_placement_group(pg)
            return
        self._pool.setdefault(self._pool_key(trial), []).append(actor)

    def _terminate(self, actor) -> None:
        actor.shutdown.remote()
        actor.__ray_terminate__.remote()

    def _release_everything(self) -> None:
        for trial_id, (actor, pg) in list(self._actors.items()):
            skate.kill(actor)
            if pg is not None:
                from skate.util import remove_placement_group

                remove_placement_group(pg)
        self._actors.clear()
        self._futures.clear()
        for idle in self._pool.values():
            for actor in idle:
                self._terminate(actor)
        self._pool.clear()

    # ---- bookkeeping --------------------------------------------------------------------------

    def _total_resources(self) -> dict:
        now = time.monotonic()
        if now - self._total_read > _RESOURCE_REFRESH_S:
            self._total = {k: float(v) for k, v in skate.cluster_resources().items()}
            self._total_read = now
        return self._total

    def _write_state(self, force: bool) -> None:
        now = time.monotonic()
        if not force and (not self._state_dirty or now - self._state_written < _STATE_PERIOD_S):
            return
        for result_logger in self._loggers:
            result_logger.flush()
        c = self.controller
        experiment_state.save_state(self.experiment_dir, c.trials,
                                    searcher_finished=c.searcher_finished,
                                    id_prefix=c._id_prefix, journal_seq=self._journal.seq,
                                    extra=self._state_extra)
        experiment_state.save_pickle(self.experiment_dir, experiment_state.SEARCHER_FILE,
                                     c.searcher)
        experiment_state.save_pickle(self.experiment_dir, experiment_state.SCHEDULER_FILE,
                                     c.scheduler)
        self._state_written = now
        self._state_dirty = False


def _error_text(error: BaseException) -> str:
    text = str(error)
    if "Traceback" not in text:
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return text


class _CtrlC:
    """The first Ctrl-C is noted, and the loop stops at its next step: a KeyboardInterrupt
    raised wherever the main thread happens to be (inside a core call, say) could leave a
    request half made. A second Ctrl-C interrupts at once. Installed only in place of
    Python's default handler, from the main thread (as Ray Tune does)."""

    def __init__(self):
        self.pressed = False
        self._installed = (threading.current_thread() is threading.main_thread()
                           and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        if self._installed:
            signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum, frame) -> None:
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True

    def restore(self) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self._installed = False

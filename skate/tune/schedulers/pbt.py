"""Population Based Training, Jaderberg et al. 2017, https://arxiv.org/abs/1711.09846.

Every ``perturbation_interval`` of its own progress, a trial is ranked
against the population by the score each trial had at its latest
perturbation point (so trials are compared at comparable moments, not one
at 60 s against another at 119 s). A trial in the bottom
``quantile_fraction`` *exploits*: it is restarted from the latest checkpoint
of a trial drawn from the top quantile, with that trial's config *explored*
(see :func:`explore`). Everyone else continues, or yields (PAUSE) when other
trials wait to run, so that a population larger than the cluster is
time-multiplexed evenly; ``choose_trial_to_run`` resumes the least-trained
waiting trial first.

The scheduler only decides. The controller carries an :class:`Exploit` out:
it makes sure ``source`` has a fresh checkpoint (saving it first if it is
running), replaces the trial's config, and restarts it from that checkpoint.
"""

from __future__ import annotations

import copy
import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from skate.tune.schedulers.trial_scheduler import (
    PAUSED,
    PENDING,
    Decision,
    Exploit,
    TrialScheduler,
    is_finished,
)

logger = logging.getLogger(__name__)


class Perturbation(NamedTuple):
    """One exploit: ``target`` restarted from ``source`` with ``new_config``."""

    target: str  # trial id
    source: str  # trial id
    old_config: dict
    new_config: dict


@dataclass
class _TrialState:
    last_score: float | None = None  # sign * metric at the latest perturbation point
    last_perturbation_time: float = 0.0
    last_train_time: float = 0.0  # time_attr at the latest perturbation point
    finished: bool = False  # completed, errored or removed: out of the ranking
    last_result: dict = field(default_factory=dict)


class PopulationBasedTraining(TrialScheduler):
    """PBT: bottom trials periodically clone a top trial's checkpoint and mutate its config.

    Args:
        time_attr: the result key that measures progress; must grow monotonically.
        metric: the result key to compare trials by.
        mode: "min" or "max": whether a smaller or larger metric is better.
        perturbation_interval: how much progress between two perturbations of a trial.
        burn_in_period: no perturbation before this much progress.
        hyperparam_mutations: ``{key: mutation}``; a mutation is a list of values, a
            callable returning a value, a search-space object with ``.sample()``
            (``tune.uniform(...)``), or a dict of these for a nested config.
        quantile_fraction: the share of the population in the top and in the bottom
            quantile, between 0 and 0.5.
        resample_probability: chance to draw a key afresh instead of perturbing it.
        perturbation_factors: a number is multiplied by one of these, drawn at random.
        custom_explore_fn: ``config -> config``, applied after the mutations.
        log_config: keep ``perturbations``, the history of exploits (in memory).
        require_attrs: a result without ``time_attr`` or ``metric`` raises; if False it
            is ignored with a warning.
        synch: synchronous PBT; not supported.
        seed: seeds every random choice made here. Skate-only.

    >>> from types import SimpleNamespace as T
    >>> pbt = PopulationBasedTraining(time_attr="training_iteration", metric="acc",
    ...                               mode="max", perturbation_interval=2,
    ...                               hyperparam_mutations={"lr": [0.001, 0.01, 0.1]},
    ...                               quantile_fraction=0.5, seed=0)
    >>> good = T(trial_id="good", config={"lr": 0.01}, status="RUNNING", checkpoint="ckpt")
    >>> bad = T(trial_id="bad", config={"lr": 0.1}, status="RUNNING", checkpoint=None)
    >>> pbt.on_trial_add(good); pbt.on_trial_add(bad)
    >>> pbt.on_trial_result(good, {"training_iteration": 2, "acc": 0.9})
    'CONTINUE'
    >>> d = pbt.on_trial_result(bad, {"training_iteration": 2, "acc": 0.1})
    >>> d.source is good, d.config["lr"] in (0.001, 0.01, 0.1)
    (True, True)
    """

    _requires_metric = True
    _transient = ("_trials",)

    def __init__(self, time_attr: str = "time_total_s", metric: str | None = None,
                 mode: str | None = None, perturbation_interval: float = 60.0,
                 burn_in_period: float = 0.0, hyperparam_mutations: dict | None = None,
                 quantile_fraction: float = 0.25, resample_probability: float = 0.25,
                 perturbation_factors: Sequence[float] = (1.2, 0.8),
                 custom_explore_fn: Callable[[dict], dict] | None = None,
                 log_config: bool = True, require_attrs: bool = True, synch: bool = False,
                 seed: int | None = None):
        super().__init__(metric, mode)
        if synch:
            raise NotImplementedError(
                "PopulationBasedTraining(synch=True) is not supported by skate.tune yet; use "
                "the default synch=False (asynchronous PBT).")
        hyperparam_mutations = {} if hyperparam_mutations is None else hyperparam_mutations
        if not isinstance(hyperparam_mutations, dict):
            raise TypeError(
                f"hyperparam_mutations must be a dict of {{key: mutation}}, got "
                f"{type(hyperparam_mutations).__name__}.")
        _validate_mutations(hyperparam_mutations)
        if not hyperparam_mutations and custom_explore_fn is None:
            raise ValueError(
                "PopulationBasedTraining needs something to explore: pass hyperparam_mutations "
                "(e.g. {'lr': tune.loguniform(1e-4, 1e-1)}) and/or custom_explore_fn.")
        if custom_explore_fn is not None and not callable(custom_explore_fn):
            raise TypeError("custom_explore_fn must be a function config -> config.")
        if not 0 <= quantile_fraction <= 0.5:
            raise ValueError(
                f"quantile_fraction must be between 0 and 0.5 (the top and bottom quantiles "
                f"must not overlap), got {quantile_fraction!r}.")
        if not perturbation_interval > 0:
            raise ValueError(
                f"perturbation_interval must be positive, got {perturbation_interval!r}.")
        if not 0 <= resample_probability <= 1:
            raise ValueError(
                f"resample_probability must be between 0 and 1, got {resample_probability!r}.")
        factors = tuple(perturbation_factors)
        if not factors or not all(_is_number(f) for f in factors):
            raise ValueError(
                f"perturbation_factors must be a non-empty sequence of numbers, got "
                f"{perturbation_factors!r}.")
        self._time_attr = time_attr
        self._perturbation_interval = perturbation_interval
        self._burn_in_period = burn_in_period
        self._hyperparam_mutations = hyperparam_mutations
        self._quantile_fraction = quantile_fraction
        self._resample_probability = resample_probability
        self._perturbation_factors = factors
        self._custom_explore_fn = custom_explore_fn
        self._log_config = log_config
        self._require_attrs = require_attrs
        self._rng = random.Random(seed)
        self._state: dict[str, _TrialState] = {}  # trial_id -> its PBT bookkeeping
        self.perturbations: list[Perturbation] = []  # with log_config: every exploit, in order
        self._num_perturbations = 0
        self._warned: set[str] = set()  # missing keys already warned about
        self._trials: dict = {}  # trial_id -> the controller's live trial object (transient)

    # ---- events ---------------------------------------------------------------------------

    def on_trial_add(self, trial) -> None:
        self._check_metric()
        self._trials[trial.trial_id] = trial
        self._state.setdefault(trial.trial_id, _TrialState())
        # Keys to mutate that the search space left out are sampled now, as Ray does.
        added = _fill_config(trial.config, self._hyperparam_mutations, self._rng)
        evaluated = getattr(trial, "evaluated_params", None)
        if added and isinstance(evaluated, dict):
            evaluated.update(added)

    def on_trial_result(self, trial, result: dict) -> Decision:
        self._check_metric()
        trial_id = trial.trial_id
        self._trials[trial_id] = trial
        state = self._state.setdefault(trial_id, _TrialState())
        for key, argument in ((self._time_attr, "time_attr"), (self._metric, "metric")):
            if key not in result:
                if self._require_attrs:
                    self._require(result, key, argument)
                if key not in self._warned:
                    self._warned.add(key)
                    logger.warning("PopulationBasedTraining: a result of %s lacks %r; such "
                                   "results are ignored (require_attrs=False).", trial_id, key)
                return self.CONTINUE
        t = result[self._time_attr]
        if t < self._burn_in_period or t - state.last_perturbation_time < \
                self._perturbation_interval:
            return self.CONTINUE
        state.last_score = self._sign() * float(result[self._metric])
        state.last_train_time = t
        state.last_result = result
        state.last_perturbation_time = t
        lower, upper = self._quantiles()
        if trial_id in lower:
            source_id = self._rng.choice(upper)
            source = self._trials.get(source_id)
            if source is not None:
                return self._exploit(trial, source)
            logger.info("PBT: no live object for trial %s; %s does not exploit.",
                        source_id, trial_id)
        others_wait = any(other.status in (PENDING, PAUSED)
                          for tid, other in self._trials.items() if tid != trial_id)
        return self.PAUSE if others_wait else self.CONTINUE

    def on_trial_complete(self, trial, result: dict) -> None:
        self._finish(trial.trial_id)

    def on_trial_error(self, trial) -> None:
        self._finish(trial.trial_id)

    def on_trial_remove(self, trial) -> None:
        self._finish(trial.trial_id)

    def choose_trial_to_run(self, trials: list):
        """The waiting trial with the least progress, so the population moves evenly."""
        waiting = [t for t in trials if t.status in (PENDING, PAUSED)]
        if not waiting:
            return None
        return min(waiting, key=lambda t: self._state.get(t.trial_id, _TrialState())
                   .last_train_time)

    def debug_string(self) -> str:
        return f"PopulationBasedTraining: {self._num_perturbations} perturbs"

    # ---- internals ------------------------------------------------------------------------

    def _quantiles(self) -> tuple[list[str], list[str]]:
        """(bottom, top) trial ids among live trials ranked at their last perturbation."""
        ranked = []
        for tid, state in self._state.items():
            trial = self._trials.get(tid)
            if state.finished or state.last_score is None or \
                    (trial is not None and is_finished(trial)):
                continue
            ranked.append(tid)
        ranked.sort(key=lambda tid: self._state[tid].last_score)
        if len(ranked) <= 1:
            return [], []
        size = math.ceil(len(ranked) * self._quantile_fraction)
        size = min(size, len(ranked) // 2)
        if size == 0:
            return [], []
        return ranked[:size], ranked[-size:]

    def _exploit(self, trial, source) -> Exploit:
        new_config = explore(source.config, self._hyperparam_mutations, self._rng,
                             self._resample_probability, self._perturbation_factors,
                             self._custom_explore_fn)
        logger.info("PBT: trial %s exploits %s; new config %s", trial.trial_id,
                    source.trial_id, new_config)
        if self._log_config:
            self.perturbations.append(Perturbation(
                trial.trial_id, source.trial_id, copy.deepcopy(trial.config),
                copy.deepcopy(new_config)))
        self._num_perturbations += 1
        # The restarted trial resumes at the source's progress: inherit its clock.
        mine, theirs = self._state[trial.trial_id], self._state[source.trial_id]
        mine.last_perturbation_time = theirs.last_perturbation_time
        mine.last_train_time = theirs.last_train_time
        return Exploit(source=source, config=new_config)

    def _finish(self, trial_id: str) -> None:
        state = self._state.get(trial_id)
        if state is not None:
            state.finished = True


def explore(config: dict, mutations: dict, rng: random.Random, resample_probability: float,
            perturbation_factors: Sequence[float],
            custom_explore_fn: Callable[[dict], dict] | None = None) -> dict:
    """A mutated deep copy of ``config``; ``config`` itself is left alone.

    For each key of ``mutations`` (recursing into dict mutations):

    * a list: with ``resample_probability`` (or if the value is not in the list)
      a random element, else the element next to the current one (clamped);
    * a callable or an object with ``.sample()``: with ``resample_probability``
      (or if the value is not a number) a fresh draw, else the value times a
      random ``perturbation_factors`` entry (an int stays an int).

    Then ``custom_explore_fn(new_config)``, if given, has the last word.

    >>> explore({"lr": 0.1, "bs": 32}, {"lr": lambda: 0.5, "bs": [16, 32, 64]},
    ...         random.Random(1), resample_probability=0.0, perturbation_factors=(2,))
    {'lr': 0.2, 'bs': 64}
    """
    new_config = copy.deepcopy(config)
    _explore_into(new_config, mutations, rng, resample_probability, perturbation_factors)
    if custom_explore_fn is not None:
        explored = custom_explore_fn(new_config)
        if not isinstance(explored, dict):
            raise TypeError(
                f"custom_explore_fn must return the new config dict, but it returned "
                f"{type(explored).__name__}. Mutate the config and `return config`.")
        new_config = explored
    return new_config


def _explore_into(config: dict, mutations: dict, rng: random.Random,
                  resample_probability: float, factors: Sequence[float]) -> None:
    for key, mutation in mutations.items():
        if isinstance(mutation, dict):
            nested = config.get(key)
            if not isinstance(nested, dict):
                nested = config[key] = {}
            _explore_into(nested, mutation, rng, resample_probability, factors)
            continue
        values = _categories(mutation)
        current = config.get(key, _MISSING)
        resample = rng.random() < resample_probability
        if values is not None:
            if resample or current not in values:
                config[key] = rng.choice(values)
            else:
                index = values.index(current) + rng.choice((-1, 1))
                config[key] = values[min(max(index, 0), len(values) - 1)]
        elif resample or not _is_number(current):
            config[key] = _sample(mutation, rng)
        else:
            perturbed = current * rng.choice(factors)
            config[key] = int(perturbed) if isinstance(current, int) else perturbed


_MISSING = object()


def _fill_config(config: dict, mutations: dict, rng: random.Random, prefix: str = "") -> dict:
    """Sample into ``config`` (in place) the mutated keys it lacks; return them, flattened."""
    added = {}
    for key, mutation in mutations.items():
        if isinstance(mutation, dict):
            nested = config.setdefault(key, {})
            if isinstance(nested, dict):
                added.update(_fill_config(nested, mutation, rng, f"{prefix}{key}/"))
        elif key not in config:
            config[key] = _sample(mutation, rng)
            added[f"{prefix}{key}"] = config[key]
    return added


def _categories(mutation) -> list | None:
    """The values of a list mutation (or of a categorical search space), else None."""
    if isinstance(mutation, (list, tuple)):
        return list(mutation)
    categories = getattr(mutation, "categories", None)
    if isinstance(categories, (list, tuple)) and hasattr(mutation, "sample"):
        return list(categories)
    return None


def _sample(mutation, rng: random.Random) -> Any:
    values = _categories(mutation)
    if values is not None:
        return rng.choice(values)
    if hasattr(mutation, "sample") and callable(mutation.sample):
        return mutation.sample()
    return mutation()


def _validate_mutations(mutations: dict, path: str = "") -> None:
    for key, mutation in mutations.items():
        where = f"hyperparam_mutations[{path}{key!r}]"
        if isinstance(mutation, dict):
            _validate_mutations(mutation, f"{path}{key!r}][")
        elif isinstance(mutation, (list, tuple)):
            if not mutation:
                raise ValueError(f"{where} is an empty list: give the values to choose from.")
        elif not (callable(mutation) or callable(getattr(mutation, "sample", None))):
            raise TypeError(
                f"{where} must be a list of values, a function returning a value, a search "
                f"space such as tune.uniform(0, 1), or a dict of these; got "
                f"{type(mutation).__name__} {mutation!r}.")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)

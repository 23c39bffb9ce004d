"""PB2: Population Based Bandits (Parker-Holder et al. 2020, https://arxiv.org/abs/2002.02518).

Design. PB2 is PBT whose *explore* step is a model instead of a random
perturbation. At every perturbation point each trial contributes one
observation: (time, its hyperparameters, how much its metric improved since
its previous perturbation point). A Gaussian process over (time,
hyperparameters) with a time-varying kernel — ordinary squared exponential
in the hyperparameters, times ``(1 - epsilon) ** (|t - t'| / 2)`` so old
observations count less — predicts that improvement; the new config of an
exploiting trial maximises the upper confidence bound ``mean + kappa * std``
over the ``hyperparam_bounds`` box at the current time. Exploit itself
(bottom quantile copies a top-quantile trial's checkpoint) is PBT's.

Trade-off: the kernel's lengthscale is picked per decision from a small grid
by marginal likelihood, instead of a full optimiser as Ray's GPy-based
version does; the acquisition is maximised over random candidates. Both keep
the scheduler dependency-free (numpy only) and fast enough to run per result.
"""

from __future__ import annotations

import copy

import numpy as np

from skate.tune.schedulers.pbt import PopulationBasedTraining, _is_number
from skate.tune.schedulers.trial_scheduler import Decision, Exploit

_LENGTHSCALES = (0.1, 0.3, 1.0)
_EPSILON = 0.1  # forgetting per unit of (normalised) time
_NOISE = 1e-2
_KAPPA = 2.0
_CANDIDATES = 1000


class PB2(PopulationBasedTraining):
    """PBT with a GP-bandit explore step over continuous ``hyperparam_bounds``.

    Args:
        hyperparam_bounds: ``{"lr": [1e-4, 1e-1], ...}``: the box new configs are chosen
            in (each a pair ``[low, high]``, low < high). Nested keys as ``{"a": {"b": [..]}}``
            are not supported: use flat keys.
        Other arguments: as ``PopulationBasedTraining``.

    >>> pb2 = PB2(metric="score", mode="max", perturbation_interval=2,
    ...           hyperparam_bounds={"lr": [0.001, 0.1]}, seed=0)
    >>> pb2.debug_string()
    'PB2: 0 perturbs'
    """

    def __init__(self, time_attr: str = "time_total_s", metric: str | None = None,
                 mode: str | None = None, perturbation_interval: float = 60.0,
                 hyperparam_bounds: dict | None = None, quantile_fraction: float = 0.25,
                 log_config: bool = True, require_attrs: bool = True, synch: bool = False,
                 seed: int | None = None):
        bounds = _validate_bounds(hyperparam_bounds)
        super().__init__(
            time_attr=time_attr, metric=metric, mode=mode,
            perturbation_interval=perturbation_interval,
            # Keys missing from the search space are sampled uniformly in their bounds.
            hyperparam_mutations={k: _uniform(lo, hi) for k, (lo, hi) in bounds.items()},
            quantile_fraction=quantile_fraction, log_config=log_config,
            require_attrs=require_attrs, synch=synch, seed=seed)
        self._bounds = bounds
        self._np_rng = np.random.default_rng(seed)
        # Observations: rows of (time, *params) and the improvement that followed them.
        self._x: list[list[float]] = []
        self._y: list[float] = []
        self._previous: dict[str, tuple[float, float]] = {}  # trial -> (time, score) last seen

    def on_trial_result(self, trial, result: dict) -> Decision:
        state = self._state.get(trial.trial_id)
        t = result.get(self._time_attr)
        due = (state is not None and t is not None and self._metric in result
               and t >= self._burn_in_period
               and t - state.last_perturbation_time >= self._perturbation_interval)
        if due:
            score = self._sign() * float(result[self._metric])
            before = self._previous.get(trial.trial_id)
            if before is not None:
                self._x.append([float(t)] + self._params(trial.config))
                self._y.append(score - before[1])
            self._previous[trial.trial_id] = (float(t), score)
        return super().on_trial_result(trial, result)

    def debug_string(self) -> str:
        return f"PB2: {self._num_perturbations} perturbs"

    def _exploit(self, trial, source) -> Exploit:
        decision = super()._exploit(trial, source)
        config = copy.deepcopy(source.config)
        for key, value in zip(self._bounds, self._select(self._current_time(source))):
            config[key] = value
        if self._log_config and self.perturbations:
            self.perturbations[-1] = self.perturbations[-1]._replace(
                new_config=copy.deepcopy(config))
        # The source's clock is inherited (PBT); the restarted trial's next improvement
        # is measured from the source's score.
        if source.trial_id in self._previous:
            self._previous[trial.trial_id] = self._previous[source.trial_id]
        return Exploit(source=decision.source, config=config)

    # ---- the bandit ---------------------------------------------------------------------------

    def _params(self, config: dict) -> list[float]:
        return [float(config[k]) for k in self._bounds]

    def _current_time(self, source) -> float:
        state = self._state.get(source.trial_id)
        return float(state.last_perturbation_time) if state else 0.0

    def _select(self, t_now: float) -> list[float]:
        """The config in the bounds box with the highest UCB at time ``t_now``."""
        lows = np.array([lo for lo, _ in self._bounds.values()])
        highs = np.array([hi for _, hi in self._bounds.values()])
        candidates = self._np_rng.random((_CANDIDATES, len(lows)))
        if len(self._y) < 2:
            pick = candidates[0]
        else:
            x = np.array(self._x)
            t_scale = max(float(x[:, 0].max()), t_now, 1e-9)
            times = x[:, 0] / t_scale
            params = (x[:, 1:] - lows) / (highs - lows)
            y = np.array(self._y)
            y = (y - y.mean()) / (y.std() + 1e-12)
            mean, std = _posterior(times, params, y, t_now / t_scale, candidates)
            pick = candidates[int(np.argmax(mean + _KAPPA * std))]
        values = lows + pick * (highs - lows)
        return [_like(v, self._bounds[k]) for k, v in zip(self._bounds, values)]


def _kernel(t1, p1, t2, p2, lengthscale: float) -> np.ndarray:
    sq = ((p1[:, None, :] - p2[None, :, :]) ** 2).sum(-1)
    decay = (1 - _EPSILON) ** (np.abs(t1[:, None] - t2[None, :]) / 2)
    return np.exp(-sq / (2 * lengthscale ** 2)) * decay


def _posterior(times, params, y, t_now, candidates):
    """GP mean and std at ``candidates`` (all at ``t_now``), lengthscale by likelihood."""
    best = None
    for lengthscale in _LENGTHSCALES:
        k = _kernel(times, params, times, params, lengthscale) + _NOISE * np.eye(len(y))
        try:
            chol = np.linalg.cholesky(k)
        except np.linalg.LinAlgError:
            continue
        alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, y))
        log_likelihood = -0.5 * y @ alpha - np.log(np.diag(chol)).sum()
        if best is None or log_likelihood > best[0]:
            best = (log_likelihood, lengthscale, chol, alpha)
    if best is None:
        return np.zeros(len(candidates)), np.ones(len(candidates))
    _, lengthscale, chol, alpha = best
    t_c = np.full(len(candidates), t_now)
    k_star = _kernel(t_c, candidates, times, params, lengthscale)
    mean = k_star @ alpha
    v = np.linalg.solve(chol, k_star.T)
    var = np.clip(1.0 - (v ** 2).sum(0), 1e-12, None)
    return mean, np.sqrt(var)


def _validate_bounds(bounds) -> dict:
    if not isinstance(bounds, dict) or not bounds:
        raise ValueError("PB2 needs hyperparam_bounds, e.g. {'lr': [1e-4, 1e-1]}: the box it "
                         "chooses new configs in.")
    clean = {}
    for key, pair in bounds.items():
        if isinstance(pair, dict):
            raise ValueError(f"hyperparam_bounds[{key!r}]: nested bounds are not supported; "
                             f"use flat keys.")
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2
                and all(_is_number(v) for v in pair) and pair[0] < pair[1]):
            raise ValueError(f"hyperparam_bounds[{key!r}] must be [low, high] with low < high, "
                             f"got {pair!r}.")
        clean[key] = (pair[0], pair[1])
    return clean


def _like(value: float, bound: tuple):
    # Integer bounds give integer values (e.g. a batch size).
    if all(isinstance(b, int) and not isinstance(b, bool) for b in bound):
        return int(round(value))
    return float(value)


def _uniform(low, high):
    from skate.tune.search.sample import randint, uniform

    if isinstance(_like(low, (low, high)), int):
        return randint(low, high + 1)
    return uniform(low, high)


__all__ = ["PB2"]

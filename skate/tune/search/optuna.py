"""``OptunaSearch``: Optuna's samplers (TPE by default) as a Tune searcher.

Each trial is one Optuna trial driven through Optuna's ask/tell interface:
``suggest`` asks, ``on_trial_result`` reports intermediate values,
``on_trial_complete`` tells the final value of ``metric`` (``FAIL`` if the
trial errored, ``PRUNED`` if its last result lacks the metric). The Optuna
study lives inside the searcher, so ``save``/``restore`` carry the whole
study and the sampler's random state: a resumed experiment continues the
same study and proposes what the uninterrupted one would have.

The search space is one of:

* a Tune param space (``{"lr": tune.loguniform(1e-4, 1e-1), ...}``), nested
  dicts flattened to ``"a/b"`` Optuna names and unflattened back. Constants
  are passed through into every config. Grids cannot be converted (an Optuna
  sampler cannot enumerate a grid) and raise ``ValueError``;
* a dict of Optuna distributions (may be mixed with Tune domains and constants);
* a define-by-run function ``space(trial) -> dict | None`` that calls
  ``trial.suggest_*``; a returned dict holds constants merged into the config;
* ``None``: the param space is taken from ``set_search_properties``.

Conversion, with Ray's bounds: ``uniform``/``quniform`` ->
``FloatDistribution(step=q)``, ``loguniform`` -> ``log=True``,
``randint(a, b)`` -> ``IntDistribution(a, b - 1)`` (Tune's upper bound is
exclusive, Optuna's inclusive), ``qrandint(a, b, q)`` -> the multiples of
``q`` in ``[a, b]``, ``lograndint`` -> ``log=True``, ``choice`` ->
``CategoricalDistribution``. Normal and ``sample_from`` domains have no
Optuna counterpart and raise ``ValueError``.

>>> import optuna
>>> optuna.logging.set_verbosity(optuna.logging.WARNING)
>>> from skate.tune.search.sample import uniform
>>> search = OptunaSearch({"x": uniform(-1, 1), "tag": "a"}, metric="loss", mode="min", seed=0)
>>> config = search.suggest("t0")
>>> sorted(config), -1 <= config["x"] <= 1
(['tag', 'x'], True)
>>> search.on_trial_complete("t0", {"loss": config["x"] ** 2})
"""

from __future__ import annotations

import copy
import logging
import math
import numbers
from collections.abc import Callable
from typing import Any

from skate.tune.search.sample import (
    Categorical,
    Domain,
    Float,
    Function,
    Integer,
    LogUniform,
    Normal,
    Quantized,
    Uniform,
)
from skate.tune.search.searcher import (
    DEFAULT_METRIC,
    UNDEFINED_METRIC_MODE,
    UNDEFINED_SEARCH_SPACE,
    Searcher,
    validate_mode,
)
from skate.tune.search.variant_generator import (
    _is_grid,
    _walk,
    flatten_dict,
    unflatten_dict,
)

try:
    import optuna as ot
except ImportError:  # optional dependency: fail on use, with the fix
    ot = None

__all__ = ["OptunaSearch"]

logger = logging.getLogger(__name__)


def _require_optuna() -> None:
    if ot is None:
        raise ImportError("OptunaSearch needs Optuna: pip install 'skate[tune]' (or optuna>=3.0)")


def _convert_domain(name: str, domain: Domain) -> Any:
    """The Optuna distribution for one Tune domain."""
    sampler = domain.get_sampler()
    q = None
    if isinstance(sampler, Quantized):
        q, sampler = sampler.q, sampler.sampler
    if isinstance(sampler, LogUniform) and q is not None:
        # Optuna's log distributions take no step; Ray passes the domain on unquantized too.
        logger.warning("Optuna cannot quantize log-scaled `%s`; its q=%s is ignored", name, q)
        q = None
    if isinstance(domain, Float) and isinstance(sampler, (Uniform, LogUniform)):
        log = isinstance(sampler, LogUniform)
        return ot.distributions.FloatDistribution(domain.lower, domain.upper, log=log, step=q)
    if isinstance(domain, Integer) and isinstance(sampler, (Uniform, LogUniform)):
        log = isinstance(sampler, LogUniform)
        high = domain.upper - 1  # Tune's Integer upper bound is exclusive
        if q is None:
            return ot.distributions.IntDistribution(domain.lower, high, log=log)
        q = int(q)
        low, high = -(-domain.lower // q) * q, (high // q) * q
        if low > high:
            raise ValueError(f"`{name}` ({domain!r}) holds no multiple of q={q}")
        return ot.distributions.IntDistribution(low, high, step=q)
    if isinstance(domain, Categorical) and isinstance(sampler, Uniform):
        return ot.distributions.CategoricalDistribution(domain.categories)
    if isinstance(sampler, Normal):
        why = "Optuna has no normal distribution; use tune.uniform or tune.loguniform"
    elif isinstance(domain, Function):
        why = "a sample_from function cannot be converted; use a define-by-run space instead"
    else:
        why = f"no Optuna distribution matches {type(domain).__name__} with {sampler!r}"
    raise ValueError(f"OptunaSearch cannot search `{name}` ({domain!r}): {why}")


def _split_space(space: dict) -> tuple[dict, dict, list[str]]:
    """(Optuna distributions, constants, all flat names in order) of a dict space."""
    for path, value in _walk(space):
        if _is_grid(value) or value.is_grid():
            raise ValueError(
                f"OptunaSearch cannot search the grid at `{'/'.join(map(str, path))}`: Optuna "
                "samples, it does not enumerate. Use tune.choice(...) instead, or "
                "BasicVariantGenerator for a grid."
            )
        if any(isinstance(k, int) for k in path):
            raise ValueError(
                f"OptunaSearch cannot search `{'/'.join(map(str, path))}` inside a list; "
                "put searched values in dicts"
            )
    flat = flatten_dict(space, prevent_delimiter=True)
    distributions, constants = {}, {}
    for name, value in flat.items():
        if isinstance(value, Domain):
            distributions[name] = _convert_domain(name, value)
        elif isinstance(value, ot.distributions.BaseDistribution):
            distributions[name] = value
        else:
            constants[name] = value
    return distributions, constants, list(flat)


class OptunaSearch(Searcher):
    """Search with an Optuna sampler (TPE by default); see the module docstring.

    Args:
        space: Tune param space, dict of Optuna distributions, define-by-run
            function, or None (taken from ``set_search_properties``).
        metric: Result key to optimise (a list for multi-objective).
        mode: ``"min"`` or ``"max"`` (a list, one per metric).
        points_to_evaluate: Configs to try first (enqueued in the study).
        sampler: An Optuna sampler; default ``TPESampler(seed=seed)``.
        seed: Seed of the default sampler (ignored with ``sampler``).
        evaluated_rewards: Known results of ``points_to_evaluate``; those
            points are then added to the study as finished, not run.
    """

    def __init__(
        self,
        space: dict | Callable | None = None,
        metric: str | list[str] | None = None,
        mode: str | list[str] | None = None,
        points_to_evaluate: list[dict] | None = None,
        sampler: Any = None,
        seed: int | None = None,
        evaluated_rewards: list | None = None,
    ):
        _require_optuna()
        validate_mode(mode, allow_list=True)
        if isinstance(mode, (list, tuple)) and not (
            isinstance(metric, (list, tuple)) and len(metric) == len(mode)
        ):
            raise ValueError(
                f"a list `mode` needs a `metric` list of the same length; got {metric!r}"
            )
        super().__init__(metric=metric, mode=None)
        self._mode = list(mode) if isinstance(mode, (list, tuple)) else mode
        if sampler is not None and not isinstance(sampler, ot.samplers.BaseSampler):
            raise TypeError(f"sampler must be an optuna sampler; got {sampler!r}")
        if sampler is not None and seed is not None:
            logger.warning(
                "OptunaSearch got a sampler and a seed; the seed is ignored (seed the sampler)"
            )
        if points_to_evaluate is not None and not (
            isinstance(points_to_evaluate, list)
            and all(isinstance(p, dict) for p in points_to_evaluate)
        ):
            raise TypeError(
                f"points_to_evaluate must be a list of config dicts; got {points_to_evaluate!r}"
            )
        if evaluated_rewards is not None and len(evaluated_rewards) != len(
            points_to_evaluate or []
        ):
            raise ValueError(
                f"evaluated_rewards has {len(evaluated_rewards)} values for "
                f"{len(points_to_evaluate or [])} points_to_evaluate; give one per point"
            )
        self._points = copy.deepcopy(points_to_evaluate or [])
        self._evaluated_rewards = list(evaluated_rewards) if evaluated_rewards is not None else None
        self._sampler = sampler
        self._seed = seed
        # The space, once known: a dict of flat name -> distribution, or a define-by-run function.
        self._space: dict | Callable | None = None
        self._constants: dict[str, Any] = {}  # flat name -> constant from the param space
        self._order: list[str] = []  # flat names of the param space, in its order
        self._study = None  # created once both the space and the mode are known
        self._ot_trials: dict = {}  # live trial id -> optuna Trial
        self._completed: set[str] = set()  # trial ids already told to the study
        self._steps: dict[str, int] = {}  # trial id -> results seen (step when none is given)
        if space is not None:
            self._set_space(space)
        self._setup_study()

    # ------------------------------------------------------------------ setup

    @staticmethod
    def convert_search_space(spec: dict) -> dict:
        """Optuna distributions (by flat ``"a/b"`` name) for a Tune param space.

        >>> from skate.tune.search.sample import randint
        >>> OptunaSearch.convert_search_space({"n": randint(1, 5), "c": 3})
        {'n': IntDistribution(high=4, log=False, low=1, step=1)}
        """
        _require_optuna()
        return _split_space(spec)[0]

    def _set_space(self, space: Any) -> None:
        if isinstance(space, dict):
            self._space, self._constants, self._order = _split_space(space)
        elif callable(space):
            self._space, self._constants, self._order = space, {}, []
        else:
            raise TypeError(
                "space must be a Tune param space, a dict of Optuna distributions or a "
                f"define-by-run function; got {type(space).__name__}"
            )

    def _setup_study(self) -> None:
        if self._study is not None or self._space is None or self._mode is None:
            return
        if self._metric is None:
            self._metric = DEFAULT_METRIC
        sampler = self._sampler or ot.samplers.TPESampler(seed=self._seed)
        if isinstance(self._mode, list):
            directions = {"directions": [_direction(m) for m in self._mode]}
        else:
            directions = {"direction": _direction(self._mode)}
        self._study = ot.create_study(sampler=sampler, pruner=ot.pruners.NopPruner(), **directions)
        if self._evaluated_rewards is not None:
            for point, reward in zip(self._points, self._evaluated_rewards):
                self.add_evaluated_point(point, reward)
        else:
            for point in self._points:
                self._study.enqueue_trial(flatten_dict(point))
        self._points = []

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        validate_mode(mode, allow_list=True)
        adopt = self._space is None and config is not None
        if adopt:
            self._set_space(config)
        if metric is not None and (adopt or self._metric is None):
            self._metric = metric
        if mode is not None and (adopt or self._mode is None):
            self._mode = mode
        self._setup_study()
        return adopt

    # ------------------------------------------------------------------ searching

    def suggest(self, trial_id: str) -> dict | None:
        if self._space is None:
            raise RuntimeError(UNDEFINED_SEARCH_SPACE.format(cls="OptunaSearch", space="space"))
        if self._study is None:
            raise RuntimeError(
                UNDEFINED_METRIC_MODE.format(
                    cls="OptunaSearch", metric=self._metric, mode=self._mode
                )
            )
        if callable(self._space):
            trial = self._ot_trials.get(trial_id) or self._study.ask()
            self._ot_trials[trial_id] = trial
            constants = self._space(trial)
            if constants is not None and not isinstance(constants, dict):
                raise TypeError(
                    "the define-by-run space function must return None or a dict of constants; "
                    f"got {type(constants).__name__}"
                )
            if constants and not all(isinstance(k, str) for k in constants):
                raise TypeError("the dict returned by the define-by-run function needs str keys")
            return unflatten_dict({**trial.params, **(constants or {})})
        trial = self._ot_trials.get(trial_id) or self._study.ask(fixed_distributions=self._space)
        self._ot_trials[trial_id] = trial
        params = trial.params
        flat = {
            name: params[name] if name in params else self._constants[name] for name in self._order
        }
        return unflatten_dict(flat)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        trial = self._ot_trials.get(trial_id)
        if trial is None or isinstance(self._metric, list):
            return  # Optuna keeps intermediate values for single objectives only
        value = result.get(self._metric)
        if not _is_number(value) or math.isnan(value):
            return
        step = self._steps.get(trial_id, 0) + 1
        self._steps[trial_id] = step
        trial.report(float(value), int(result.get("training_iteration", step)))

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        trial = self._ot_trials.pop(trial_id, None)
        if trial is None:
            if trial_id in self._completed:
                logger.warning("OptunaSearch was told twice that trial %s completed", trial_id)
            else:
                logger.warning(
                    "OptunaSearch was told trial %s completed, but never suggested it", trial_id
                )
            return
        self._steps.pop(trial_id, None)
        value = self._objective(result)
        if error or _has_nan(value):  # Optuna records a NaN objective as a failure too
            state, value = ot.trial.TrialState.FAIL, None
        elif value is None:
            state = ot.trial.TrialState.PRUNED
        else:
            state = ot.trial.TrialState.COMPLETE
        try:
            self._study.tell(trial, value, state=state)
        except Exception as exc:  # noqa: BLE001 - a value Optuna refuses must not end the search
            logger.warning("Optuna could not record trial %s: %s", trial_id, exc)
        self._completed.add(trial_id)

    def _objective(self, result: dict | None) -> float | list[float] | None:
        if not result:
            return None
        if isinstance(self._metric, list):
            values = [result.get(m) for m in self._metric]
            return [float(v) for v in values] if all(_is_number(v) for v in values) else None
        value = result.get(self._metric)
        return float(value) if _is_number(value) else None

    def add_evaluated_point(
        self,
        parameters: dict,
        value,
        error: bool = False,
        pruned: bool = False,
        intermediate_values: list[float] | None = None,
    ) -> None:
        """Add a finished trial evaluated elsewhere to the study."""
        if self._space is None:
            raise RuntimeError(UNDEFINED_SEARCH_SPACE.format(cls="OptunaSearch", space="space"))
        if callable(self._space):
            raise TypeError(
                "add_evaluated_point / evaluated_rewards need the space as a dict (Tune "
                "domains or Optuna distributions), not a define-by-run function"
            )
        if self._study is None:
            raise RuntimeError(
                UNDEFINED_METRIC_MODE.format(
                    cls="OptunaSearch", metric=self._metric, mode=self._mode
                )
            )
        flat = flatten_dict(parameters)
        missing = [name for name in self._space if name not in flat]
        if missing:
            raise ValueError(f"evaluated point {parameters!r} lacks the searched keys {missing}")
        state = ot.trial.TrialState.COMPLETE
        if error:
            state = ot.trial.TrialState.FAIL
        elif pruned:
            state = ot.trial.TrialState.PRUNED
        values = {}
        if state == ot.trial.TrialState.COMPLETE:
            values = (
                {"values": list(value)} if isinstance(value, (list, tuple)) else {"value": value}
            )
        trial = ot.trial.create_trial(
            state=state,
            params={name: flat[name] for name in self._space},
            distributions=dict(self._space),
            intermediate_values=dict(enumerate(intermediate_values))
            if intermediate_values
            else None,
            **values,
        )
        self._study.add_trial(trial)


def _direction(mode: str) -> str:
    return "minimize" if mode == "min" else "maximize"


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _has_nan(value: float | list[float] | None) -> bool:
    values = value if isinstance(value, list) else [value]
    return any(v is not None and math.isnan(v) for v in values)

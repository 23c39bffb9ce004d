"""Search-space domains: what a hyperparameter may be, and how one value is drawn.

A *domain* (``Float``, ``Integer``, ``Categorical``, ``Function``) says which
values are legal; a *sampler* attached to it (``Uniform``, ``LogUniform``,
``Normal``, ``Quantized``, ``Grid``) says how to draw one. The public
constructors (``uniform``, ``loguniform``, ``randint``, ``choice``, ...) build
the usual pairs and follow Ray Tune's bounds exactly: ``randint``'s upper bound
is exclusive, the ``q``-variants of integers make it inclusive, and
quantization rounds to the nearest multiple of ``q``.

Randomness is always passed in: ``random_state`` is an int seed, a numpy
``Generator`` or ``RandomState``, or ``None`` for numpy's global generator
(Ray's default, so ``np.random.seed`` keeps old scripts reproducible).

>>> from skate.tune.search.sample import uniform, randint, choice
>>> 0.0 <= uniform(0, 1).sample(random_state=0) < 1.0
True
>>> randint(0, 3).sample(size=4, random_state=1)
[1, 1, 2, 2]
>>> choice(["a", "b"]).sample(random_state=2) in ("a", "b")
True
"""

from __future__ import annotations

import copy
import inspect
import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "Categorical",
    "Domain",
    "Float",
    "Function",
    "Grid",
    "Integer",
    "LogUniform",
    "Normal",
    "Quantized",
    "Rng",
    "Sampler",
    "Uniform",
    "choice",
    "grid_search",
    "lograndint",
    "loguniform",
    "qlograndint",
    "qloguniform",
    "qrandint",
    "qrandn",
    "quniform",
    "randint",
    "randn",
    "sample_from",
    "uniform",
]


class Rng:
    """One random source over numpy's two APIs (``Generator`` and legacy ``RandomState``).

    ``Rng(None)`` draws from numpy's global generator, ``Rng(7)`` from a fresh
    ``default_rng(7)``, and ``Rng(existing_rng)`` shares that generator's stream.

    >>> Rng(3).integers(0, 10, size=2) == Rng(3).integers(0, 10, size=2)
    array([ True,  True])
    """

    def __init__(self, random_state: Any = None):
        if isinstance(random_state, Rng):
            random_state = random_state.generator
        if random_state is None:
            generator = np.random.mtrand._rand  # the global state np.random.seed() sets
        elif isinstance(random_state, (np.random.Generator, np.random.RandomState)):
            generator = random_state
        elif isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
            generator = np.random.default_rng(int(random_state))
        else:
            raise TypeError(
                "random_state must be an int seed, a numpy Generator or RandomState, or None; "
                f"got {type(random_state).__name__}"
            )
        self.generator = generator

    def uniform(self, low: float, high: float, size: int) -> np.ndarray:
        return self.generator.uniform(low, high, size=size)

    def normal(self, mean: float, sd: float, size: int) -> np.ndarray:
        return self.generator.normal(mean, sd, size=size)

    def integers(self, low: int, high: int, size: int) -> np.ndarray:
        """Integers in ``[low, high)``."""
        if isinstance(self.generator, np.random.Generator):
            return self.generator.integers(low, high, size=size)
        return self.generator.randint(low, high, size=size)


# --------------------------------------------------------------------------- samplers


class Sampler:
    """How to draw ``size`` values from a domain: ``sample(domain, config, size, rng) -> list``."""

    def sample(self, domain: Domain, config: Any, size: int, rng: Rng) -> list:
        raise NotImplementedError(f"{type(self).__name__} must implement sample()")

    def __repr__(self) -> str:
        return type(self).__name__


class Uniform(Sampler):
    """Every legal value equally likely."""

    def sample(self, domain, config, size, rng):
        if isinstance(domain, Float):
            if not (math.isfinite(domain.lower) and math.isfinite(domain.upper)):
                raise ValueError(
                    f"{domain!r} is unbounded and cannot be sampled uniformly: "
                    "give finite bounds or call .normal()"
                )
            return list(rng.uniform(domain.lower, domain.upper, size))
        if isinstance(domain, Integer):
            return list(rng.integers(domain.lower, domain.upper, size))
        if isinstance(domain, Categorical):
            indices = rng.integers(0, len(domain.categories), size)
            return [domain.categories[i] for i in indices]
        raise TypeError(f"Uniform cannot sample from {domain!r}")


class LogUniform(Sampler):
    """Uniform in ``log_base``-space: each decade equally likely."""

    def __init__(self, base: float = 10):
        if not (base > 0 and base != 1):
            raise ValueError(f"log base must be positive and not 1; got {base}")
        self.base = base

    def sample(self, domain, config, size, rng):
        log = math.log(self.base)
        values = self.base ** rng.uniform(
            math.log(domain.lower) / log, math.log(domain.upper) / log, size
        )
        if isinstance(domain, Integer):
            # floor keeps the exclusive upper bound exclusive
            values = np.floor(values)
        return list(values)

    def __repr__(self) -> str:
        return f"LogUniform(base={self.base})"


class Normal(Sampler):
    """Gaussian with ``mean`` and standard deviation ``sd`` (on an unbounded ``Float``)."""

    def __init__(self, mean: float = 0.0, sd: float = 1.0):
        if not sd > 0:
            raise ValueError(f"normal() needs a positive standard deviation; got sd={sd}")
        self.mean = mean
        self.sd = sd

    def sample(self, domain, config, size, rng):
        return list(rng.normal(self.mean, self.sd, size))

    def __repr__(self) -> str:
        return f"Normal(mean={self.mean}, sd={self.sd})"


class Quantized(Sampler):
    """Draw with ``sampler`` inside the bounds rounded inward to multiples of ``q``,
    then round the value to the nearest multiple of ``q``."""

    def __init__(self, sampler: Sampler, q: float):
        if not q > 0:
            raise ValueError(f"quantization step q must be positive; got {q}")
        self.sampler = sampler
        self.q = q

    def sample(self, domain, config, size, rng):
        if self.q == 1 and isinstance(domain, Integer):  # every int is a multiple of 1
            return self.sampler.sample(domain, config, size, rng)
        inner = copy.copy(domain)
        if math.isfinite(domain.lower):
            inner.lower = math.ceil(domain.lower / self.q) * self.q
        if math.isfinite(domain.upper):
            inner.upper = math.floor(domain.upper / self.q) * self.q
        if inner.lower > inner.upper:
            raise ValueError(f"{domain!r} holds no multiple of q={self.q}")
        if inner.lower == inner.upper:  # one multiple of q fits: nothing to draw
            return [inner.lower] * size
        values = np.asarray(self.sampler.sample(inner, config, size, rng), dtype=float)
        return list(np.round(values / self.q) * self.q)

    def __repr__(self) -> str:
        return f"Quantized({self.sampler!r}, q={self.q})"


class Grid(Sampler):
    """Marks a domain to be enumerated by grid search rather than sampled."""

    def sample(self, domain, config, size, rng):
        raise RuntimeError(f"{domain!r} is a grid: its values are enumerated, not sampled")


class _Call(Sampler):
    """Calls a ``Function`` domain's function (with the config when it takes one)."""

    def sample(self, domain, config, size, rng):
        if domain.pass_config:
            return [domain.func(config) for _ in range(size)]
        return [domain.func() for _ in range(size)]


# --------------------------------------------------------------------------- domains


class Domain:
    """A set of legal values plus the sampler that draws from it.

    Subclasses set ``default_sampler_cls`` and ``cast``. A bare ``Domain()``
    has no sampler and refuses to sample.
    """

    default_sampler_cls: type[Sampler] | None = None

    def __init__(self):
        # None until a sampling method (uniform(), loguniform(), ...) picks one;
        # get_sampler() then falls back to default_sampler_cls().
        self.sampler: Sampler | None = None

    def cast(self, value: Any) -> Any:
        return value

    def set_sampler(self, sampler: Sampler, allow_override: bool = False) -> None:
        if self.sampler is not None and not allow_override:
            raise ValueError(
                f"{self!r} already samples with {self.sampler!r}; a domain takes one sampler "
                f"(tried to add {sampler!r}). Build a new domain instead."
            )
        self.sampler = sampler

    def get_sampler(self) -> Sampler | None:
        if self.sampler is not None:
            return self.sampler
        return self.default_sampler_cls() if self.default_sampler_cls else None

    def _with_sampler(self, sampler: Sampler, allow_override: bool = False) -> Domain:
        new = copy.copy(self)
        new.set_sampler(sampler, allow_override=allow_override)
        return new

    def sample(self, config: Any = None, size: int = 1, random_state: Any = None) -> Any:
        """One value when ``size == 1``, else a list of ``size`` values.

        ``config`` is handed to ``sample_from`` functions; other domains ignore it.
        """
        if not (isinstance(size, numbers.Integral) and size >= 1):
            raise ValueError(f"size must be a positive int; got {size!r}")
        sampler = self.get_sampler()
        if sampler is None:
            raise ValueError(
                f"{self!r} has no sampler, so no value can be drawn from it; build it with "
                "tune.uniform / randint / choice / sample_from or call .uniform() on it"
            )
        values = [self.cast(v) for v in sampler.sample(self, config, size, Rng(random_state))]
        return values[0] if size == 1 else values

    def is_grid(self) -> bool:
        return isinstance(self.sampler, Grid)

    def is_function(self) -> bool:
        return False

    def is_valid(self, value: Any) -> bool:
        """Whether ``value`` lies in this domain (used to check preset points)."""
        return True

    @property
    def domain_str(self) -> str:
        return ""

    def __repr__(self) -> str:
        sampler = f", {self.sampler!r}" if self.sampler is not None else ""
        return f"{type(self).__name__}{self.domain_str}{sampler}"


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number; got {value!r}")
    return float(value)


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be an int; got {value!r}")
    if not float(value).is_integer():
        raise ValueError(f"{name} must be a whole number; got {value!r}")
    return int(value)


class Float(Domain):
    """Real numbers in ``[lower, upper]``; ``None`` bounds are unbounded (for ``.normal()``)."""

    default_sampler_cls = Uniform

    def __init__(self, lower: float | None, upper: float | None):
        super().__init__()
        self.lower = -math.inf if lower is None else _number("lower", lower)
        self.upper = math.inf if upper is None else _number("upper", upper)
        if self.lower >= self.upper:
            raise ValueError(f"lower bound must be below upper bound; got [{lower}, {upper}]")

    def cast(self, value):
        return float(value)

    def uniform(self) -> Float:
        if not (math.isfinite(self.lower) and math.isfinite(self.upper)):
            raise ValueError(f"uniform() needs finite bounds; got {self.domain_str}")
        return self._with_sampler(Uniform())

    def loguniform(self, base: float = 10) -> Float:
        if not self.lower > 0:
            raise ValueError(
                f"loguniform needs a lower bound above 0; got {self.lower}. If you passed a "
                "log-transformed value, pass the untransformed one instead."
            )
        if not math.isfinite(self.upper):
            raise ValueError(f"loguniform needs a finite upper bound; got {self.upper}")
        return self._with_sampler(LogUniform(base))

    def normal(self, mean: float = 0.0, sd: float = 1.0) -> Float:
        if math.isfinite(self.lower) or math.isfinite(self.upper):
            raise ValueError(
                f"normal() draws from an unbounded Float; this one is {self.domain_str}"
            )
        return self._with_sampler(Normal(mean, sd))

    def quantized(self, q: float) -> Float:
        q = _number("q", q)
        if not q > 0:
            raise ValueError(f"quantization step q must be positive; got {q}")
        for name, bound in (("lower", self.lower), ("upper", self.upper)):
            if math.isfinite(bound) and not math.isclose(bound / q, round(bound / q)):
                raise ValueError(f"the {name} bound {bound} is not a multiple of q={q}")
        return self._with_sampler(Quantized(self.get_sampler(), q), allow_override=True)

    def is_valid(self, value):
        return self.lower <= value <= self.upper

    @property
    def domain_str(self):
        return f"({self.lower}, {self.upper})"


class Integer(Domain):
    """Integers ``lower <= n < upper`` (upper exclusive, as Ray's ``randint``)."""

    default_sampler_cls = Uniform

    def __init__(self, lower: int, upper: int):
        super().__init__()
        self.lower = _integer("lower", lower)
        self.upper = _integer("upper", upper)
        if self.lower >= self.upper:
            raise ValueError(
                f"lower bound must be below the (exclusive) upper bound; got [{lower}, {upper})"
            )

    def cast(self, value):
        if isinstance(value, numbers.Integral):
            return int(value)  # exact, even past 2**53
        return round(float(value))  # round() of a float is a Python int

    def uniform(self) -> Integer:
        return self._with_sampler(Uniform())

    def loguniform(self, base: float = 10) -> Integer:
        if not self.lower > 0:
            raise ValueError(f"lograndint needs a lower bound above 0; got {self.lower}")
        return self._with_sampler(LogUniform(base))

    def quantized(self, q: int) -> Integer:
        q = _integer("q", q)
        if q < 1:
            raise ValueError(f"integer quantization step q must be >= 1; got {q}")
        return self._with_sampler(Quantized(self.get_sampler(), q), allow_override=True)

    def is_valid(self, value):
        return self.lower <= value <= self.upper

    @property
    def domain_str(self):
        return f"({self.lower}, {self.upper})"


class Categorical(Domain):
    """One of a fixed, non-empty list of values."""

    default_sampler_cls = Uniform

    def __init__(self, categories: Sequence):
        super().__init__()
        if isinstance(categories, (str, bytes)) or not isinstance(categories, Iterable):
            raise TypeError(f"categories must be a list of values; got {categories!r}")
        self.categories = list(categories)
        if not self.categories:
            raise ValueError("choice() / grid needs at least one category; got an empty list")

    def uniform(self) -> Categorical:
        return self._with_sampler(Uniform())

    def grid(self) -> Categorical:
        return self._with_sampler(Grid())

    def __len__(self) -> int:
        return len(self.categories)

    def __getitem__(self, i: int) -> Any:
        return self.categories[i]

    def is_valid(self, value):
        return value in self.categories

    @property
    def domain_str(self):
        return f"({self.categories})"


class Function(Domain):
    """A value computed by ``func(spec)`` (or ``func()``); see ``sample_from``."""

    default_sampler_cls = _Call

    def __init__(self, func: Callable):
        super().__init__()
        if not callable(func):
            raise TypeError(f"sample_from needs a callable; got {func!r}")
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError):  # builtins without a signature: call with no args
            signature = None
        pass_config = True
        if signature is not None:
            try:
                signature.bind({})
            except TypeError:
                pass_config = False
                try:
                    signature.bind()
                except TypeError as exc:
                    raise ValueError(
                        f"sample_from function {func!r} must take 0 arguments or 1 (the spec)"
                    ) from exc
        else:
            pass_config = False
        self.func = func
        self.pass_config = pass_config

    def is_function(self) -> bool:
        return True

    @property
    def domain_str(self):
        return f"({getattr(self.func, '__qualname__', self.func)!s})"


# --------------------------------------------------------------------------- constructors


def uniform(lower: float, upper: float) -> Float:
    """A float uniformly in ``[lower, upper)``.

    >>> 2 <= uniform(2, 3).sample(random_state=0) < 3
    True
    """
    return Float(lower, upper).uniform()


def quniform(lower: float, upper: float, q: float) -> Float:
    """A float uniformly in ``[lower, upper]`` rounded to a multiple of ``q``.

    >>> quniform(0, 1, 0.25).sample(random_state=0) in (0.0, 0.25, 0.5, 0.75, 1.0)
    True
    """
    return Float(lower, upper).uniform().quantized(q)


def loguniform(lower: float, upper: float, base: float = 10) -> Float:
    """A float log-uniformly in ``[lower, upper)``; needs ``0 < lower``.

    >>> 1e-4 <= loguniform(1e-4, 1e-1).sample(random_state=0) < 1e-1
    True
    """
    return Float(lower, upper).loguniform(base)


def qloguniform(lower: float, upper: float, q: float, base: float = 10) -> Float:
    """A log-uniform float rounded to a multiple of ``q``.

    >>> qloguniform(1, 100, 1).sample(random_state=0).is_integer()
    True
    """
    return Float(lower, upper).loguniform(base).quantized(q)


def randn(mean: float = 0.0, sd: float = 1.0) -> Float:
    """A float from a normal distribution.

    >>> isinstance(randn(5, 2).sample(random_state=0), float)
    True
    """
    return Float(None, None).normal(mean, sd)


def qrandn(mean: float, sd: float, q: float) -> Float:
    """A normal float rounded to a multiple of ``q``.

    >>> qrandn(0, 10, 2).sample(random_state=0) % 2
    0.0
    """
    return Float(None, None).normal(mean, sd).quantized(q)


def randint(lower: int, upper: int) -> Integer:
    """An int uniformly in ``[lower, upper)`` (upper exclusive, as Ray).

    >>> sorted(set(randint(0, 2).sample(size=20, random_state=0)))
    [0, 1]
    """
    return Integer(lower, upper).uniform()


def qrandint(lower: int, upper: int, q: int = 1) -> Integer:
    """An int in ``[lower, upper]`` (upper inclusive, as Ray) rounded to a multiple of ``q``.

    >>> sorted(set(qrandint(0, 10, 5).sample(size=50, random_state=0)))
    [0, 5, 10]
    """
    return Integer(lower, _integer("upper", upper) + 1).uniform().quantized(q)


def lograndint(lower: int, upper: int, base: float = 10) -> Integer:
    """An int log-uniformly in ``[lower, upper)``; needs ``0 < lower``.

    >>> 1 <= lograndint(1, 1000).sample(random_state=0) < 1000
    True
    """
    return Integer(lower, upper).loguniform(base)


def qlograndint(lower: int, upper: int, q: int, base: float = 10) -> Integer:
    """A log-uniform int in ``[lower, upper]`` rounded to a multiple of ``q``.

    >>> qlograndint(10, 1000, 10).sample(random_state=0) % 10
    0
    """
    return Integer(lower, _integer("upper", upper) + 1).loguniform(base).quantized(q)


def choice(categories: Sequence) -> Categorical:
    """One of ``categories``, each equally likely.

    >>> choice([1, 2, 3]).sample(random_state=0) in (1, 2, 3)
    True
    """
    return Categorical(categories).uniform()


def sample_from(func: Callable) -> Function:
    """A value computed by ``func``, which may take the ``spec`` of the trial.

    ``spec.config`` is the trial's config with the values this one depends on
    already resolved, readable as ``spec.config.a`` or ``spec.config["a"]``.

    >>> from skate.tune.search.variant_generator import generate_variants
    >>> space = {"a": 3, "b": sample_from(lambda spec: spec.config.a * 2)}
    >>> [config for _, config in generate_variants(space)]
    [{'a': 3, 'b': 6}]
    """
    return Function(func)


def grid_search(values: Iterable) -> dict:
    """Try every value in ``values``; several grids combine as a cartesian product.

    >>> grid_search([1, 2])
    {'grid_search': [1, 2]}
    """
    if isinstance(values, (str, bytes, dict)) or not isinstance(values, Iterable):
        raise TypeError(f"grid_search needs a list of values; got {values!r}")
    values = list(values)
    if not values:
        raise ValueError("grid_search needs at least one value; got an empty list")
    return {"grid_search": values}

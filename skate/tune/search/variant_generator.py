"""Resolve a param space (nested dicts and lists of constants, domains and grids)
into concrete configs, the way Ray Tune's variant generator does.

How one *variant round* is built (``generate_variants``):

1. Find the unresolved values, depth first in insertion order: ``Domain``
   objects (``tune.uniform(...)``, ``tune.sample_from(...)``) and grids
   (``{"grid_search": [...]}``). Anything else is a constant and is kept as is,
   including plain functions and classes.
2. Enumerate the cartesian product of the grids, their paths sorted, the
   first sorted path varying fastest (Ray's order).
3. For each grid point, sample every domain. ``sample_from`` functions get a
   ``spec`` whose ``spec.config`` is the config resolved so far; reading a
   value that is still unresolved raises ``RecursiveDependencyError``, and the
   function is retried after the others. Passes repeat while they make
   progress; a pass with no progress means a cycle (or a read of a value that
   never resolves) and raises ``RecursiveDependencyError`` naming the paths.
4. Grid values may themselves hold domains or grids: the point is resolved
   again, recursively.

With ``constant_grid_search=True`` the domains are sampled once, before the
grid, and shared by every grid point (functions that read grid values are
still sampled per point). ``num_samples`` rounds are the caller's loop
(``BasicVariantGenerator``): each round repeats the whole grid with fresh
samples.

Paths are tuples of keys (``("model", "layers", 0)``) relative to the config.

>>> from skate.tune.search.sample import grid_search, uniform
>>> space = {"a": grid_search([1, 2]), "b": uniform(0, 1), "c": "const"}
>>> variants = list(generate_variants(space, random_state=0))
>>> [config["a"] for _, config in variants], sorted(variants[0][0])
([1, 2], [('a',), ('b',)])
>>> format_vars({("a",): 1, ("b",): 0.01})
'a=1,b=0.0100'
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Iterator
from typing import Any

from skate.tune.search.sample import Categorical, Domain, Rng

__all__ = [
    "RecursiveDependencyError",
    "apply_preset",
    "count_variants",
    "flatten_dict",
    "format_vars",
    "generate_variants",
    "has_unresolved_values",
    "resolved_vars",
    "unflatten_dict",
    "unresolved_paths",
]

logger = logging.getLogger(__name__)

Path = tuple


class RecursiveDependencyError(ValueError):
    """A ``sample_from`` function read a value that is (still) unresolved."""


# --------------------------------------------------------------------------- finding


def _is_grid(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and "grid_search" in value


def _grid_values(path: Path, grid: dict) -> list:
    values = grid["grid_search"]
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
        raise ValueError(f"grid_search at `{_name(path)}` needs a list of values; got {values!r}")
    values = list(values)
    if not values:
        raise ValueError(f"grid_search at `{_name(path)}` has no values: give at least one")
    return values


# Search-space objects of other libraries: a constant that the user surely meant as a
# space. Tune cannot sample them; a clear error beats running every trial with an object.
_FOREIGN_SPACES = ("optuna.distributions", "hyperopt.", "ConfigSpace", "nevergrad.",
                   "skopt.space", "ray.tune.search")


def check_space(space: Any, prefix: Path = ()) -> None:
    """Raise a clear ValueError for a value that is another library's search-space type."""
    if isinstance(space, dict) and not _is_grid(space):
        for key, value in space.items():
            check_space(value, prefix + (key,))
    elif isinstance(space, list):
        for i, value in enumerate(space):
            check_space(value, prefix + (i,))
    elif not isinstance(space, Domain):
        module = type(space).__module__ or ""
        if module.startswith(_FOREIGN_SPACES):
            raise ValueError(
                f"`{_name(prefix)}` holds a {module}.{type(space).__name__}, a search space "
                f"type skate.tune cannot sample. Use tune.uniform / tune.choice / ... in the "
                f"config, or give native spaces to the searcher that understands them (e.g. "
                f"OptunaSearch(space={{...}}) for Optuna distributions).")


def _walk(space: Any, prefix: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Yield ``(path, value)`` for every domain and grid, depth first in insertion order."""
    if isinstance(space, Domain) or _is_grid(space):
        yield prefix, space
    elif isinstance(space, dict):
        for key, value in space.items():
            yield from _walk(value, prefix + (key,))
    elif isinstance(space, list):
        for i, value in enumerate(space):
            yield from _walk(value, prefix + (i,))


def _split(space: Any) -> tuple[list[tuple[Path, Domain]], list[tuple[Path, list]]]:
    domains, grids = [], []
    for path, value in _walk(space):
        if _is_grid(value):
            grids.append((path, _grid_values(path, value)))
        elif value.is_grid():
            grids.append((path, list(value.categories)))
        else:
            domains.append((path, value))
    grids.sort(key=lambda item: _sort_key(item[0]))
    return domains, grids


def _sort_key(path: Path) -> tuple:
    # list indices sort numerically, keys by text; the two never meet at one depth
    return tuple((0, k, "") if isinstance(k, int) else (1, 0, str(k)) for k in path)


def _name(path: Path) -> str:
    return "/".join(str(k) for k in path)


def _get(config: Any, path: Path) -> Any:
    for key in path:
        config = config[key]
    return config


def _set(config: Any, path: Path, value: Any) -> None:
    _get(config, path[:-1])[path[-1]] = value


def unresolved_paths(param_space: Any) -> list[Path]:
    """Paths of the domains and grids in ``param_space`` (not inside grid values).

    >>> from skate.tune.search.sample import choice
    >>> unresolved_paths({"a": 1, "b": {"c": choice([1, 2])}})
    [('b', 'c')]
    """
    return [path for path, _ in _walk(param_space)]


def has_unresolved_values(param_space: Any) -> bool:
    """Whether ``param_space`` holds any domain or grid.

    >>> has_unresolved_values({"a": 1}), has_unresolved_values({"a": {"grid_search": [1]}})
    (False, True)
    """
    return any(True for _ in _walk(param_space))


def resolved_vars(param_space: Any, config: Any) -> dict[Path, Any]:
    """The values ``config`` took at the paths that ``param_space`` left open.

    This is what trial tags are made of (``format_vars(resolved_vars(space, config))``),
    for configs from any searcher.

    >>> from skate.tune.search.sample import uniform
    >>> resolved_vars({"lr": uniform(0, 1), "epochs": 3}, {"lr": 0.5, "epochs": 3})
    {('lr',): 0.5}
    """
    out = {}
    for path in unresolved_paths(param_space):
        try:
            out[path] = _get(config, path)
        except (KeyError, IndexError, TypeError):
            continue  # a searcher may leave a value out; it then has no tag
    return out


# --------------------------------------------------------------------------- resolving


class _Guard(dict):
    """A read view of a partly resolved config: ``x.key`` is ``x["key"]``, and
    reading a value that is still a domain raises ``RecursiveDependencyError``."""

    def __init__(self, data: dict, path: Path = ()):
        super().__init__(data)
        self._path = path

    def __getitem__(self, key):
        return _guard(super().__getitem__(key), self._path + (key,))

    def __getattr__(self, key):
        if key.startswith("_"):  # keeps copy/pickle probes off the config keys
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"spec has no key `{_name(self._path + (key,))}`") from None

    def get(self, key, default=None):
        # through __getitem__, so .get() guards unresolved values too
        return self[key] if key in self else default  # noqa: SIM401


class _ListGuard(list):
    def __init__(self, data: list, path: Path):
        super().__init__(data)
        self._path = path

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [_guard(v, self._path + (i,)) for v in super().__getitem__(i)]
        return _guard(super().__getitem__(i), self._path + (i,))


def _guard(value: Any, path: Path) -> Any:
    if isinstance(value, Domain) or _is_grid(value):
        raise RecursiveDependencyError(f"`{_name(path[1:])}` is not resolved yet")
    if isinstance(value, dict):
        return _Guard(value, path)
    if isinstance(value, list):
        return _ListGuard(value, path)
    return value


def _resolve_domains(
    config: Any, domains: list[tuple[Path, Domain]], rng: Rng, allow_fail: bool = False
) -> tuple[dict[Path, Any], list[tuple[Path, Domain]]]:
    """Sample ``domains`` into ``config`` in place; return (resolved, unresolvable)."""
    resolved: dict[Path, Any] = {}
    pending = list(domains)
    while pending:
        blocked = []
        for path, domain in pending:
            spec = _Guard({"config": config})
            try:
                value = domain.sample(config=spec, random_state=rng)
            except RecursiveDependencyError:
                blocked.append((path, domain))
                continue
            except Exception as exc:
                raise ValueError(f"could not resolve `{_name(path)}` ({domain!r}): {exc}") from exc
            _set(config, path, value)
            resolved[path] = value
        if len(blocked) == len(pending):
            if allow_fail:
                return resolved, blocked
            names = ", ".join(f"`{_name(p)}`" for p, _ in blocked)
            raise RecursiveDependencyError(
                f"cannot resolve {names}: each sample_from reads a value that is never "
                "resolved (a cycle between sample_from functions, or a read of another "
                "unresolved value). Break the cycle or make one of them a constant."
            )
        pending = blocked
    return resolved, []


def _grid_points(space: Any, grids: list[tuple[Path, list]]) -> Iterator[Any]:
    if not grids:
        yield copy.deepcopy(space)
        return
    indices = [0] * len(grids)
    while True:
        point = copy.deepcopy(space)
        for (path, values), i in zip(grids, indices):
            _set(point, path, copy.deepcopy(values[i]))
        yield point
        # odometer: the first grid varies fastest
        for k in range(len(grids)):
            indices[k] += 1
            if indices[k] < len(grids[k][1]):
                break
            indices[k] = 0
        else:
            return


def generate_variants(
    param_space: Any, constant_grid_search: bool = False, random_state: Any = None
) -> Iterator[tuple[dict[Path, Any], Any]]:
    """Yield ``(resolved_vars, config)`` for one round over ``param_space``.

    ``resolved_vars`` maps each path that was sampled or taken from a grid to
    its value. ``param_space`` itself is not modified.

    >>> from skate.tune.search.sample import grid_search
    >>> [c for _, c in generate_variants({"a": grid_search([1, 2]), "b": grid_search(["x", "y"])})]
    [{'a': 1, 'b': 'x'}, {'a': 2, 'b': 'x'}, {'a': 1, 'b': 'y'}, {'a': 2, 'b': 'y'}]
    """
    yield from _variants(copy.deepcopy(param_space), constant_grid_search, Rng(random_state))


def _variants(space: Any, constant: bool, rng: Rng) -> Iterator[tuple[dict[Path, Any], Any]]:
    domains, grids = _split(space)
    if not domains and not grids:
        yield {}, space
        return
    shared: dict[Path, Any] = {}
    to_resolve = domains
    if constant and domains:
        shared, to_resolve = _resolve_domains(space, domains, rng, allow_fail=True)
    for point in _grid_points(space, grids):
        sampled, _ = _resolve_domains(point, to_resolve, rng)
        for inner, config in _variants(point, constant, rng):
            out = dict(shared)
            out.update(sampled)
            for path, _ in grids:
                out[path] = _get(config, path)
            out.update(inner)
            yield out, config


def count_variants(param_space: Any) -> int:
    """How many configs one round over ``param_space`` yields (the grid size).

    >>> from skate.tune.search.sample import grid_search
    >>> count_variants({"a": grid_search([1, {"b": grid_search([2, 3])}]),
    ...                 "c": grid_search([4, 5])})
    6
    """
    _, grids = _split(param_space)
    total = 1
    for _, values in grids:
        total *= sum(count_variants(value) for value in values)
    return total


def apply_preset(param_space: Any, point: dict) -> Any:
    """A copy of ``param_space`` with the values of ``point`` (a partial config) in place.

    Preset values replace the domains or grids at their paths; a key that is
    not in the space raises ``ValueError``, and a value outside its domain
    logs a warning (Ray's behaviour for ``points_to_evaluate``).

    >>> from skate.tune.search.sample import uniform
    >>> apply_preset({"a": uniform(0, 1), "b": 2}, {"a": 0.5})
    {'a': 0.5, 'b': 2}
    """
    if not isinstance(point, dict):
        raise TypeError(f"a preset point must be a dict (a partial config); got {point!r}")
    space = copy.deepcopy(param_space)
    _apply(space, point, ())
    return space


def _apply(space: Any, point: dict, prefix: Path) -> None:
    for key, value in point.items():
        path = prefix + (key,)
        if not isinstance(space, dict) or key not in space:
            raise ValueError(
                f"preset key `{_name(path)}` is not in the search space; add it to the "
                "param_space or remove it from points_to_evaluate"
            )
        current = space[key]
        if isinstance(value, dict) and isinstance(current, dict) and not _is_grid(current):
            _apply(current, value, path)
            continue
        domain = Categorical(current["grid_search"]) if _is_grid(current) else current
        if isinstance(domain, Domain) and not domain.is_valid(value):
            logger.warning(
                "preset value %r for `%s` is outside its search space %r",
                value,
                _name(path),
                domain,
            )
        space[key] = copy.deepcopy(value)


# --------------------------------------------------------------------------- naming


def _clean(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    # tags end up in directory names: keep them legal everywhere
    return re.sub(r"[^a-zA-Z0-9_-]+", "_", str(value)).strip("_")


def format_vars(resolved: dict) -> str:
    """Experiment tag for a trial: ``last_key=value`` pairs, sorted by path.

    Keys may be paths (tuples) or ``/``-flattened names.

    >>> format_vars({("model", "lr"): 0.001, "model/depth": 3, ("act",): "re lu"})
    'act=re_lu,depth=3,lr=0.0010'
    """
    items = []
    for key, value in resolved.items():
        path = tuple(key.split("/")) if isinstance(key, str) else tuple(key)
        items.append((_sort_key(path), path, value))
    items.sort(key=lambda item: item[0])
    return ",".join(f"{_clean(path[-1])}={_clean(value)}" for _, path, value in items)


def flatten_dict(d: dict, delimiter: str = "/", prevent_delimiter: bool = False) -> dict:
    """Nested dicts to one level, keys joined by ``delimiter`` (lists stay values).

    >>> flatten_dict({"a": {"b": 1, "c": {"d": 2}}, "e": [3]})
    {'a/b': 1, 'a/c/d': 2, 'e': [3]}
    """
    out: dict = {}

    def visit(node: dict, prefix: str) -> None:
        for key, value in node.items():
            if prevent_delimiter and delimiter in str(key):
                raise ValueError(
                    f"key {key!r} contains the delimiter {delimiter!r}, so it cannot be "
                    "flattened unambiguously; rename it"
                )
            name = f"{prefix}{delimiter}{key}" if prefix else key
            if isinstance(value, dict) and value:
                visit(value, str(name))
            else:
                out[name] = value

    visit(d, "")
    return out


def unflatten_dict(d: dict, delimiter: str = "/") -> dict:
    """Inverse of ``flatten_dict``.

    >>> unflatten_dict({"a/b": 1, "a/c/d": 2, "e": 3})
    {'a': {'b': 1, 'c': {'d': 2}}, 'e': 3}
    """
    out: dict = {}
    for key, value in d.items():
        parts = key.split(delimiter) if isinstance(key, str) else [key]
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise TypeError(
                    f"cannot unflatten `{key}`: its parent `{part}` is already a value "
                    f"({node!r}); rename one of the keys"
                )
        if isinstance(node.get(parts[-1]), dict) and isinstance(value, dict):
            node[parts[-1]].update(value)
        elif parts[-1] in node and isinstance(node[parts[-1]], dict):
            raise TypeError(f"cannot unflatten `{key}`: it is also the parent of other keys")
        else:
            node[parts[-1]] = value
    return out

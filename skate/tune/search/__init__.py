"""Search algorithms and search spaces for ``skate.tune`` (Ray Tune's ``ray.tune.search``).

* ``sample``: domains (``uniform``, ``randint``, ``choice``, ``sample_from``,
  ``grid_search``, ...).
* ``variant_generator``: resolving a param space into configs.
* ``Searcher``: the base class of search algorithms, and its implementations
  ``BasicVariantGenerator`` (grid/random, the default) and ``OptunaSearch``;
  the wrappers ``ConcurrencyLimiter`` and ``Repeater``.

``OptunaSearch`` is imported on first use, so importing this package does not
import Optuna.

>>> from skate.tune.search import BasicVariantGenerator, Searcher
>>> issubclass(BasicVariantGenerator, Searcher)
True
"""

from skate.tune.search.basic_variant import BasicVariantGenerator
from skate.tune.search.concurrency_limiter import ConcurrencyLimiter
from skate.tune.search.repeater import Repeater
from skate.tune.search.sample import (
    Categorical,
    Domain,
    Float,
    Function,
    Integer,
    choice,
    grid_search,
    lograndint,
    loguniform,
    qlograndint,
    qloguniform,
    qrandint,
    qrandn,
    quniform,
    randint,
    randn,
    sample_from,
    uniform,
)
from skate.tune.search.searcher import Searcher
from skate.tune.search.variant_generator import (
    RecursiveDependencyError,
    count_variants,
    flatten_dict,
    format_vars,
    generate_variants,
    resolved_vars,
    unflatten_dict,
)

__all__ = [
    "BasicVariantGenerator",
    "Categorical",
    "ConcurrencyLimiter",
    "Domain",
    "Float",
    "Function",
    "Integer",
    "OptunaSearch",
    "RecursiveDependencyError",
    "Repeater",
    "Searcher",
    "choice",
    "count_variants",
    "flatten_dict",
    "format_vars",
    "generate_variants",
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
    "resolved_vars",
    "sample_from",
    "unflatten_dict",
    "uniform",
]


def __getattr__(name: str):
    # OptunaSearch imports optuna (slow, optional): load it only when asked for.
    if name == "OptunaSearch":
        from skate.tune.search.optuna import OptunaSearch

        return OptunaSearch
    raise AttributeError(f"module 'skate.tune.search' has no attribute {name!r}")

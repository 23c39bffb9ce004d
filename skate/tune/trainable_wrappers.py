"""``with_parameters`` and ``with_resources``: trainables carrying data or resource needs.

``with_parameters`` puts each large argument into the object store once;
every trial (in any process) reads the same shared copy instead of pickling
it into each trial's definition.

>>> import numpy as np
>>> from skate import tune
>>> def trainable(config, data=None):
...     tune.report({"total": float(data.sum()) * config["k"]})
>>> t = tune.with_parameters(trainable, data=np.ones(1000))
>>> tune.run(t, config={"k": 2}, verbose=0).trials[0].last_result["total"]
2000.0
"""

from __future__ import annotations

import functools
import inspect

from skate.tune.placement_group_factory import PlacementGroupFactory


def with_parameters(trainable, **kwargs):
    """Pass ``kwargs`` (through the object store) to a function or a class's ``setup``."""
    import skate

    refs = {k: skate.put(v) for k, v in kwargs.items()}

    def fetch():
        return {k: skate.get(ref) for k, ref in refs.items()}

    if inspect.isclass(trainable):
        class WithParameters(trainable):
            def __init__(self, config=None, trial_info=None):
                super().__init__(config, trial_info, **fetch())

        WithParameters.__name__ = WithParameters.__qualname__ = trainable.__name__
        return WithParameters

    @functools.wraps(trainable)
    def inner(config):
        return trainable(config, **fetch())

    return inner


def with_resources(trainable, resources):
    """Give a trainable its per-trial resources: a dict (``{"cpu": 2, "gpu": 0.5}``),
    a ``PlacementGroupFactory``, or a function of the config returning either.

    >>> from skate import tune
    >>> def f(config):
    ...     tune.report({"ok": 1})
    >>> tune.run(tune.with_resources(f, {"cpu": 2}), verbose=0).trials[0].resources
    {'CPU': 2}
    """
    if not (isinstance(resources, (dict, PlacementGroupFactory)) or callable(resources)):
        raise TypeError(f"with_resources takes a dict, a PlacementGroupFactory or a function "
                        f"of the config, got {type(resources).__name__}.")
    if inspect.isclass(trainable):
        class WithResources(trainable):
            @classmethod
            def default_resource_request(cls, config):
                return resources(config) if callable(resources) else resources

        WithResources.__name__ = WithResources.__qualname__ = trainable.__name__
        return WithResources

    @functools.wraps(trainable)
    def inner(config):
        return trainable(config)

    inner._tune_resources = resources
    return inner


def trial_resources(trainable_cls, config: dict, override=None) -> tuple[dict, list | None, str]:
    """(flat resources, bundles or None, strategy) one trial of this trainable holds."""
    spec = override
    if spec is None:
        spec = getattr(trainable_cls, "_tune_resources", None)
    if spec is None:
        spec = trainable_cls.default_resource_request(config)
    if callable(spec) and not isinstance(spec, PlacementGroupFactory):
        spec = spec(config)
    if spec is None:
        return {"CPU": 1}, None, "PACK"
    if isinstance(spec, PlacementGroupFactory):
        return spec.required_resources, spec.bundles, spec.strategy
    if not isinstance(spec, dict):
        raise TypeError(f"resources_per_trial must be a dict or a PlacementGroupFactory, got "
                        f"{type(spec).__name__}.")
    flat = {}
    for key, value in spec.items():
        if key.startswith("extra_"):
            raise ValueError(f"resources_per_trial key {key!r} is not supported; use a "
                             f"PlacementGroupFactory for trials that start their own actors.")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise ValueError(f"resources_per_trial[{key!r}] must be a number >= 0, got "
                             f"{value!r}.")
        name = {"cpu": "CPU", "gpu": "GPU"}.get(key, key)
        if value:
            flat[name] = value
    return flat, None, "PACK"

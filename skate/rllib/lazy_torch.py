"""``torch``, loaded on first use: ``from skate.rllib.lazy_torch import torch``.

The driver of an rllib run only configures (the ``rllib`` CLI, ``tune.run("PPO")``):
it imports the algorithm modules for their config classes and never trains, so
it should not pay torch's 1.5-2 s import -- on a small machine that is CPU the
trial's own import needs. The algorithm modules take ``torch`` from here; the
standard library's ``LazyLoader`` runs torch's import at the first attribute
access (in the trial, when it builds its module). Once torch is imported this is
the ordinary module.

>>> from skate.rllib.lazy_torch import torch
>>> torch.zeros(2).tolist()
[0.0, 0.0]
"""

from __future__ import annotations

import importlib.util
import sys


def _lazy(name: str):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"{name} is not installed: pip install 'skate[rllib]'")
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


torch = _lazy("torch")

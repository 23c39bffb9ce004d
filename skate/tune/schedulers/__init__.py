"""Trial schedulers: given a trial and its result, decide whether it continues.

Each scheduler is a policy behind :class:`TrialScheduler`, whose docstring is
the contract; one module per scheduler.

>>> from skate.tune.schedulers import ASHAScheduler
>>> ASHAScheduler(metric="loss", mode="min", max_t=10).metric
'loss'
"""

from skate.tune.schedulers.async_hyperband import ASHAScheduler, AsyncHyperBandScheduler
from skate.tune.schedulers.hyperband import HyperBandScheduler
from skate.tune.schedulers.median_stopping_rule import MedianStoppingRule
from skate.tune.schedulers.pb2 import PB2
from skate.tune.schedulers.pbt import PopulationBasedTraining
from skate.tune.schedulers.trial_scheduler import Exploit, FIFOScheduler, TrialScheduler

__all__ = [
    "ASHAScheduler",
    "AsyncHyperBandScheduler",
    "Exploit",
    "FIFOScheduler",
    "HyperBandScheduler",
    "MedianStoppingRule",
    "PB2",
    "PopulationBasedTraining",
    "TrialScheduler",
]

"""skate.train.torch: Ray's ``ray.train.torch`` names (``from ray.train.torch import
TorchTrainer`` runs after ``import skate as ray``).

>>> from skate.train.torch import TorchTrainer, prepare_model
>>> TorchTrainer.__module__
'skate.sgd.trainer'
"""

from skate.sgd.config import TorchConfig
from skate.sgd.torch_utils import get_device, get_devices, prepare_data_loader, prepare_model
from skate.sgd.trainer import TorchTrainer

__all__ = ["TorchConfig", "TorchTrainer", "get_device", "get_devices", "prepare_data_loader",
           "prepare_model"]

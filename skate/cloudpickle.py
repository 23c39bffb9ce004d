"""The cloudpickle Skate pickles functions and classes with, under Ray's name.

>>> from skate import cloudpickle
>>> cloudpickle.loads(cloudpickle.dumps(lambda x: x + 1))(1)
2
"""

from cloudpickle import *  # noqa: F401,F403
from cloudpickle import __all__, __version__  # noqa: F401

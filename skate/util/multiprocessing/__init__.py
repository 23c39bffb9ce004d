"""``multiprocessing.Pool`` on Skate: ``from skate.util.multiprocessing import Pool``.

The pool's processes are actors, so a pool spans every node of the cluster,
and the code that used the standard library's Pool runs unchanged:

>>> from skate.util.multiprocessing import Pool
>>> with Pool(2) as pool:
...     pool.starmap(pow, [(2, 3), (3, 2)])
[8, 9]
"""

from multiprocessing import JoinableQueue, TimeoutError

from skate.util.multiprocessing.pool import Pool, PoolTerminatedError
from skate.util.multiprocessing.results import AsyncResult, IMapIterator

__all__ = ["AsyncResult", "IMapIterator", "JoinableQueue", "Pool", "PoolTerminatedError",
           "TimeoutError"]

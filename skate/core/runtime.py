"""The runtime handle: this process's CoreWorker, started on first use.

Public API functions (``skate.get``, ``skate.remote(...).remote``, placement
groups, ...) reach the runtime through :func:`core`, which calls
``skate.init()`` the first time, as Ray does. Code that must not start a
cluster (finalizers, ``is_initialized``) uses
``skate.core.object_ref.current_worker()`` instead, which may be None.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from skate.core.worker.core_worker import CoreWorker

_lock = threading.Lock()


def core() -> CoreWorker:
    """The running CoreWorker; starts a private cluster (``skate.init()``) if there is none.

    >>> import skate
    >>> from skate.core import runtime
    >>> runtime.core() is runtime.core()  # doctest: +SKIP
    True
    """
    from skate.core.object_ref import current_worker

    worker = current_worker()
    if worker is None:
        with _lock:
            worker = current_worker()
            if worker is None:
                from skate.core.api import init

                init()
                worker = current_worker()
    assert worker is not None  # init() either connected or raised
    return worker

"""Class trainables: subclass ``tune.Trainable`` and fill in ``setup`` and ``step``.

``train()`` runs one ``step()`` and adds the fields every result carries
(``training_iteration``, ``time_total_s``, ``timestamp``, ...); ``save`` and
``restore`` wrap ``save_checkpoint``/``load_checkpoint`` so iteration counts
and time survive a restart. The controller drives these through the trial's
actor; a user may also call them directly, which is how to test a trainable.

>>> from skate import tune
>>> class Counter(tune.Trainable):
...     def setup(self, config):
...         self.n = config.get("start", 0)
...     def step(self):
...         self.n += 1
...         return {"n": self.n}
>>> c = Counter({"start": 10})
>>> c.train()["n"], c.train()["training_iteration"]
(11, 2)
"""

from __future__ import annotations

import datetime
import os
import pickle
import platform
import shutil
import socket
import tempfile
import time

from skate.tune.checkpoint import Checkpoint, write_metadata

_DICT_FILE = "checkpoint_dict.pkl"  # where a save_checkpoint() that returned a dict goes


class Trainable:
    """Base class of class trainables (``setup``, ``step``, ``save_checkpoint``, ...).

    >>> class Quadratic(Trainable):
    ...     def setup(self, config):
    ...         self.x = config["x"]
    ...     def step(self):
    ...         return {"loss": self.x ** 2}
    >>> Quadratic({"x": 3}).train()["loss"]
    9
    """

    def __init__(self, config: dict | None = None, trial_info: dict | None = None, **setup_kwargs):
        self.config = dict(config or {})
        self._info = dict(trial_info or {})
        self._iteration = 0
        self._time_total = 0.0
        self._iterations_since_restore = 0
        self._time_since_restore = 0.0
        self.setup(self.config, **setup_kwargs) if setup_kwargs else self.setup(self.config)

    # ---- what subclasses fill in ------------------------------------------------------------

    def setup(self, config: dict) -> None:
        """Build state from ``config`` (called once per trial, or again after reset)."""

    def step(self) -> dict:
        """Run one iteration; return a dict of metrics (``done: True`` ends the trial)."""
        raise NotImplementedError(f"{type(self).__name__} must implement step() returning a "
                                  f"dict of metrics.")

    def save_checkpoint(self, checkpoint_dir: str) -> dict | None:
        """Write state into ``checkpoint_dir``; or return a dict and Tune pickles it there."""
        raise NotImplementedError(f"{type(self).__name__} does not implement save_checkpoint(); "
                                  f"implement it to use checkpoints, PBT or pause/resume.")

    def load_checkpoint(self, checkpoint) -> None:
        """Restore from a directory (or the dict ``save_checkpoint`` returned)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement load_checkpoint().")

    def reset_config(self, new_config: dict) -> bool:
        """Adopt ``new_config`` in place and return True, so the actor can be reused."""
        return False

    def cleanup(self) -> None:
        """Release resources when the trial stops."""

    @classmethod
    def default_resource_request(cls, config: dict):
        """Resources a trial of this class needs (a dict or a PlacementGroupFactory), or None."""
        return None

    # ---- what Tune calls ----------------------------------------------------------------------

    @property
    def iteration(self) -> int:
        return self._iteration

    training_iteration = iteration

    @property
    def trial_id(self) -> str:
        return self._info.get("trial_id", "default")

    @property
    def trial_name(self) -> str:
        return self._info.get("trial_name", "default")

    @property
    def logdir(self) -> str:
        return self._info.get("trial_dir") or os.getcwd()

    trial_dir = logdir

    def train(self) -> dict:
        """Run one step and return its result with Tune's bookkeeping fields added."""
        start = time.time()
        result = self.step()
        if not isinstance(result, dict):
            raise TypeError(f"{type(self).__name__}.step() must return a dict of metrics, got "
                            f"{type(result).__name__}.")
        if result.get("__done__"):
            return result
        return self._augment(dict(result), time.time() - start)

    def _augment(self, result: dict, elapsed: float) -> dict:
        self._iteration += 1
        self._iterations_since_restore += 1
        elapsed = result.get("time_this_iter_s", elapsed)
        self._time_total += elapsed
        self._time_since_restore += elapsed
        now = time.time()
        result.setdefault("done", False)
        result.update(
            training_iteration=self._iteration, time_this_iter_s=elapsed,
            time_total_s=self._time_total, timestamp=int(now),
            date=datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S"),
            iterations_since_restore=self._iterations_since_restore,
            time_since_restore=self._time_since_restore, trial_id=self.trial_id,
            pid=os.getpid(), hostname=platform.node(), node_ip=_node_ip())
        return result

    def _metadata(self) -> dict:
        return {"iteration": self._iteration, "time_total_s": self._time_total,
                "timestamp": time.time()}

    def save(self, checkpoint_dir: str | None = None) -> str:
        """Save into ``checkpoint_dir`` and return it.

        The default is ``<trial dir>/checkpoint_<iteration>`` under Tune, and a new temporary
        folder outside it (as Ray does), never the working folder.
        """
        if checkpoint_dir is None:
            name = f"checkpoint_{self._iteration:06d}"
            trial_dir = self._info.get("trial_dir")
            checkpoint_dir = (os.path.join(trial_dir, name) if trial_dir
                              else tempfile.mkdtemp(prefix=name + "_"))
        tmp = checkpoint_dir + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        state = self.save_checkpoint(tmp)
        if isinstance(state, dict):
            with open(os.path.join(tmp, _DICT_FILE), "wb") as f:
                pickle.dump(state, f)
        elif state is not None and os.path.abspath(str(state)) != os.path.abspath(tmp):
            raise TypeError(f"{type(self).__name__}.save_checkpoint must return None or a dict, "
                            f"got {type(state).__name__}.")
        write_metadata(tmp, self._metadata())
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
        os.rename(tmp, checkpoint_dir)
        return checkpoint_dir

    def restore(self, checkpoint_path) -> None:
        """Load a checkpoint made by ``save`` (a path or a ``Checkpoint``)."""
        path = checkpoint_path.path if isinstance(checkpoint_path, Checkpoint) else checkpoint_path
        meta = Checkpoint(path).get_metadata()
        self._iteration = meta.get("iteration", 0)
        self._time_total = meta.get("time_total_s", 0.0)
        self._iterations_since_restore = 0
        self._time_since_restore = 0.0
        dict_file = os.path.join(path, _DICT_FILE)
        if os.path.exists(dict_file):
            with open(dict_file, "rb") as f:
                self.load_checkpoint(pickle.load(f))
        else:
            self.load_checkpoint(path)

    def reset(self, new_config: dict, trial_info: dict | None = None) -> bool:
        """Reuse this instance for another trial; False when the class cannot reset."""
        if not self.reset_config(new_config):
            return False
        self.config = dict(new_config)
        self._info = dict(trial_info or self._info)
        self._iteration = 0
        self._time_total = 0.0
        self._iterations_since_restore = 0
        self._time_since_restore = 0.0
        return True

    def stop(self) -> None:
        self.cleanup()



_NODE_IP: list = []


def _node_ip() -> str:
    if not _NODE_IP:
        try:
            _NODE_IP.append(socket.gethostbyname(socket.gethostname()))
        except OSError:
            _NODE_IP.append("127.0.0.1")
    return _NODE_IP[0]

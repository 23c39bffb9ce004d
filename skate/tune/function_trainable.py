"""Function trainables: ``def train(config): ... tune.report(...)`` run as a Trainable.

The function runs in a thread of the trial's actor. Each ``train()`` call lets
it run to its next ``tune.report`` and returns that result; the thread then
waits inside ``report`` until the next ``train()``, so nothing runs ahead of
the controller's decisions. When the function returns, ``train()`` returns a
``{"__done__": True}`` marker (a returned dict is reported first, as in Ray).

>>> from skate.tune.function_trainable import wrap_function
>>> from skate import tune
>>> def f(config):
...     tune.report({"x": config["a"]})
>>> t = wrap_function(f)({"a": 7})
>>> t.train()["x"], t.train()
(7, {'__done__': True})
"""

from __future__ import annotations

import threading

from skate.tune import session as session_mod
from skate.tune.checkpoint import Checkpoint, persist
from skate.tune.trainable import Trainable


class FunctionTrainable(Trainable):
    """A Trainable driving a user function through a ``_Session``."""

    _function = None  # set on the subclass made by wrap_function
    _function_kwargs: dict = {}

    def setup(self, config):
        self._session: session_mod._Session | None = None
        self._thread: threading.Thread | None = None
        self._restore: Checkpoint | None = None
        self._latest_checkpoint: str | None = None

    def _start(self):
        self._session = session_mod._Session(
            {**self._info, "trial_dir": self.logdir}, self._restore)
        session_mod._install(self._session)
        sess = self._session

        def run():
            try:
                output = type(self)._function(self.config, **type(self)._function_kwargs)
                if isinstance(output, dict) and not sess.stopping:
                    sess.report(output, None)
                sess.items.put(("done",))
            except session_mod._StopTrial:
                sess.items.put(("done",))
            except BaseException as e:  # noqa: BLE001 - the trial's error, reported to Tune
                sess.items.put(("error", e))

        self._thread = threading.Thread(target=run, name="skate-tune-trial", daemon=True)
        self._thread.start()

    def step(self):
        if self._thread is None:
            self._start()
        else:
            self._session.resume.set()
        item = self._session.items.get()
        if item[0] == "done":
            return {"__done__": True}
        if item[0] == "error":
            raise item[1]
        _, metrics, checkpoint = item
        if checkpoint is not None:
            index = self._iteration + 1
            path = persist(checkpoint.path, self.logdir, index,
                           {"iteration": index, "time_total_s": self._time_total})
            self._latest_checkpoint = path
            metrics["__checkpoint__"] = path
        return metrics

    def save(self, checkpoint_dir=None):
        # A function saves only when it reports a checkpoint; hand back the latest.
        return self._latest_checkpoint

    def restore(self, checkpoint_path):
        path = checkpoint_path.path if isinstance(checkpoint_path, Checkpoint) else checkpoint_path
        self._restore = Checkpoint(path)
        self._latest_checkpoint = path
        meta = self._restore.get_metadata()
        self._iteration = meta.get("iteration", 0)
        self._time_total = meta.get("time_total_s", 0.0)

    def reset_config(self, new_config):
        self._end_thread()
        self.setup(new_config)
        return True

    def _end_thread(self):
        if self._session is not None:
            self._session.stopping = True
            self._session.resume.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = None
        self._session = None
        session_mod._install(None)

    def cleanup(self):
        self._end_thread()


def wrap_function(fn, **function_kwargs) -> type:
    """A FunctionTrainable subclass running ``fn(config, **function_kwargs)``."""
    return type(getattr(fn, "__name__", "func"), (FunctionTrainable,),
                {"_function": staticmethod(fn), "_function_kwargs": function_kwargs,
                 "__module__": __name__})

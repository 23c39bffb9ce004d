"""Experiment callbacks: hooks the runner calls as trials start, report and end.

Subclass ``tune.Callback`` and override the hooks you need; pass instances
with ``tune.run(callbacks=[...])`` or ``RunConfig(callbacks=[...])``. Hooks get
keyword arguments (``iteration``, ``trials``, ``trial``, ``result``), as in Ray.

>>> from skate import tune
>>> class Count(tune.Callback):
...     n = 0
...     def on_trial_result(self, iteration, trials, trial, result, **info):
...         Count.n += 1
>>> def f(config):
...     tune.report({"x": 1}); tune.report({"x": 2})
>>> _ = tune.run(f, callbacks=[Count()], verbose=0)
>>> Count.n
2
"""

from __future__ import annotations


class Callback:
    """Base class; every hook is a no-op."""

    def setup(self, stop=None, num_samples=None, total_num_samples=None, **info):
        """Called once before the first trial starts."""

    def on_step_begin(self, iteration, trials, **info):
        """Called at the start of each loop of the runner."""

    def on_step_end(self, iteration, trials, **info):
        """Called at the end of each loop of the runner."""

    def on_trial_start(self, iteration, trials, trial, **info):
        """A trial started (or restarted)."""

    def on_trial_restore(self, iteration, trials, trial, **info):
        """A trial restarted from a checkpoint."""

    def on_trial_save(self, iteration, trials, trial, **info):
        """A trial saved a checkpoint."""

    def on_trial_result(self, iteration, trials, trial, result, **info):
        """A trial reported a result."""

    def on_trial_complete(self, iteration, trials, trial, **info):
        """A trial finished (TERMINATED)."""

    def on_trial_error(self, iteration, trials, trial, **info):
        """A trial failed for good (ERROR)."""

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        """A trial's checkpoint was persisted."""

    def on_experiment_end(self, trials, **info):
        """The experiment ended (also after Ctrl-C)."""


class CallbackList:
    """Calls a hook on every callback in order."""

    def __init__(self, callbacks):
        self.callbacks = list(callbacks)

    def __getattr__(self, hook):
        def call(**kwargs):
            for cb in self.callbacks:
                getattr(cb, hook)(**kwargs)
        return call

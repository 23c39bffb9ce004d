"""The actor a trial runs in: hosts one Trainable at a time, reusable across trials.

A setup error is kept and raised by the next ``train()``, so every failure of
a trial reaches the controller through one path (the ``train`` future) with
the user's traceback.
"""

from __future__ import annotations

import os


class TrialActor:
    """Runs ``Trainable`` instances for the controller (one at a time)."""

    def __init__(self):
        self._trainable = None
        self._cls = None
        self._setup_error: BaseException | None = None

    def start(self, cls, config: dict, info: dict, restore: str | None) -> None:
        """Begin a trial; ``cls`` None means "the class of the previous trial" (reuse)."""
        self._setup_error = None
        try:
            os.makedirs(info["trial_dir"], exist_ok=True)
            reused = (cls is None and self._trainable is not None
                      and self._trainable.reset(config, info))
            if not reused:
                cls = cls or self._cls
                self._drop()
                self._cls = cls
                self._trainable = cls(config, info)
            if restore:
                self._trainable.restore(restore)
        except BaseException as e:  # noqa: BLE001 - raised again by train()
            self._setup_error = e

    def train(self) -> dict:
        if self._setup_error is not None:
            error, self._setup_error = self._setup_error, None
            raise error
        if self._trainable is None:
            raise RuntimeError("The trial never started: its start() call failed before it ran "
                               "(the trainable or its config could not be delivered).")
        return self._trainable.train()

    def save(self) -> str | None:
        return self._trainable.save()

    def shutdown(self) -> None:
        """The actor is being released: let the trainable clean up."""
        self._drop()

    def _drop(self):
        if self._trainable is not None:
            self._trainable.stop()
        self._trainable = None
        self._cls = None

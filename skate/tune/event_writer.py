"""The actor that writes TensorBoard event files for an experiment's trials.

It receives batches of ``(trial_dir, step, wall_time, {tag: value})`` and
writes one event per result with all its scalars, through tensorboardX's
synchronous ``EventsWriter``. Living in its own process keeps tensorboardX
(and the torch it imports) out of the driver.
"""

from __future__ import annotations

import os
import sys


class EventWriter:
    """Owns one event file per trial folder; ``close`` flushes it to disk.

    It runs at the lowest CPU priority and imports tensorboardX as it starts: event
    files are never urgent, and on a small machine the import must not slow the trials
    starting beside it, nor be left for the experiment's end. tensorboardX imports
    torch if it can (``try: import torch`` in its writer module, to accept tensors),
    ~1.7 s of the ~1.9 s its import takes here; this process writes only floats, so it
    imports tensorboardX with torch marked unavailable (a ``None`` entry in
    ``sys.modules``, which makes ``import torch`` raise ImportError) unless torch is
    already loaded.
    """

    def __init__(self):
        self._files: dict = {}
        try:
            os.nice(19)  # this actor's own process
        except OSError:
            pass
        blocked = "torch" not in sys.modules
        if blocked:
            sys.modules["torch"] = None  # type: ignore[assignment]
        try:
            import tensorboardX.event_file_writer  # noqa: F401
        except ImportError:
            pass
        finally:
            if blocked:
                del sys.modules["torch"]

    def write(self, batch: list) -> None:
        try:
            from tensorboardX.event_file_writer import EventsWriter
            from tensorboardX.proto.event_pb2 import Event
            from tensorboardX.proto.summary_pb2 import Summary
        except ImportError:
            return  # the tune extra is not installed: no event files
        for trial_dir, step, wall_time, scalars in batch:
            writer = self._files.get(trial_dir)
            if writer is None:
                os.makedirs(trial_dir, exist_ok=True)
                writer = self._files[trial_dir] = EventsWriter(os.path.join(trial_dir, "events"))
            values = [Summary.Value(tag=f"skate/tune/{k}", simple_value=v)
                      for k, v in scalars.items()]
            writer.write_event(Event(wall_time=wall_time, step=step,
                                     summary=Summary(value=values)))
        for writer in self._files.values():
            writer.flush()

    def close(self, trial_dir: str) -> None:
        writer = self._files.pop(trial_dir, None)
        if writer is not None:
            writer.close()

    def close_all(self) -> None:
        for writer in self._files.values():
            writer.close()
        self._files.clear()

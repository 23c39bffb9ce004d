"""What ``rllib train`` shows and when it stops: the live table and the stop criteria."""

from __future__ import annotations

import difflib
import math
import os
import shutil
import sys
import time

from skate.scripts.rllib_inputs import _MISSING, OLD_METRICS, UsageError  # noqa: F401
from skate.tune.callback import Callback
from skate.tune.stopper import Stopper


def _lookup(result: dict, key: str):
    if key in result:
        return result[key]
    node = result
    for part in key.split("/"):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _flat_keys(result: dict, prefix: str = "") -> list:
    out = []
    for k, v in result.items():
        if isinstance(v, dict):
            out += _flat_keys(v, f"{prefix}{k}/")
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(f"{prefix}{k}")
    return out


class StopCriteria(Stopper):
    """Tune's dict stopper, but a key no result has is a one-line ``UsageError`` (with close
    matches) and RLlib's old result names mean their new ones."""

    def __init__(self, criteria: dict, source: str):
        self.criteria = dict(criteria)
        self.source = source

    @staticmethod
    def _value(result: dict, key: str):
        value = _lookup(result, key)
        if value is _MISSING and key in OLD_METRICS:
            value = _lookup(result, OLD_METRICS[key])
        return value

    def __call__(self, trial_id: str, result: dict) -> bool:
        for key, threshold in self.criteria.items():
            value = self._value(result, key)
            if value is _MISSING:
                keys = sorted({k for k in _flat_keys(result) if not k.startswith("__")})
                close = difflib.get_close_matches(key, keys, n=3, cutoff=0.5)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise UsageError(f"{self.source}: the results have no {key!r}{hint} (they "
                                 f"report: {', '.join(keys)})")
            if isinstance(value, (int, float)) and value >= threshold:
                return True
        return False

    def stop_all(self) -> bool:
        return False

    def met(self, result: dict) -> list:
        """The criteria ``result`` meets, as 'key >= value' strings."""
        out = []
        for key, threshold in self.criteria.items():
            value = self._value(result, key)
            if isinstance(value, (int, float)) and value >= threshold:
                out.append(f"{key} >= {_num(threshold)}")
        return out

    def describe(self) -> str:
        return " or ".join(f"{k} >= {_num(v)}" for k, v in self.criteria.items())


# -- the live table -----------------------------------------------------------------------------
def _num(x) -> str:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if math.isnan(x):
        return "-"
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.1f}" if abs(x) >= 0.1 else f"{x:.3g}"


def _duration(s: float) -> str:
    if s < 60:
        return f"{s:.1f}s"
    m, s = divmod(int(s), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


COLUMNS = (("iter", 5), ("return mean", 11), ("return max", 10), ("len mean", 8),
           ("env steps", 10), ("steps/s", 8), ("time", 8))


class LiveTable(Callback):
    """One row per training iteration: redrawn in place on a terminal (the newest rows,
    and a status line whose clock ticks), appended line by line otherwise."""

    def __init__(self, out=None, tty: bool | None = None, status: str = ""):
        self.out = out or sys.stdout
        if tty is None:  # cursor moves need a terminal that understands them
            tty = self.out.isatty() and os.environ.get("TERM") != "dumb"
        self.tty = tty
        self.status = status
        self.rows: list = []
        self.trials: list = []
        self.started = time.monotonic()
        self._drawn = 0  # lines of the last redraw (tty)
        self._last_draw = 0.0
        self._header_done = False
        self._multi = False

    def _header(self) -> str:
        cells = [f"{name:>{w}}" for name, w in COLUMNS]
        return ("trial".ljust(22) + "  " if self._multi else "") + "  ".join(cells)

    def row(self, trial, result: dict) -> str:
        er = result.get("env_runners") or {}
        steps_per_s = result.get("env_steps_per_s")
        if steps_per_s is None and result.get("time_this_iter_s"):
            steps_per_s = er.get("num_env_steps_sampled", 0) / result["time_this_iter_s"]
        steps = result.get("num_env_steps_sampled_lifetime")
        if not steps and "num_env_steps_trained_lifetime" in result:
            # an offline algorithm samples nothing: its evaluation's returns, the recorded
            # steps it trained on
            er = (result.get("evaluation") or {}).get("env_runners") or {}
            steps, steps_per_s = result["num_env_steps_trained_lifetime"], None
        values = (result.get("training_iteration"), er.get("episode_return_mean", math.nan),
                  er.get("episode_return_max", math.nan), er.get("episode_len_mean", math.nan),
                  steps,
                  None if steps_per_s is None else round(steps_per_s),
                  _duration(result.get("time_total_s", 0.0)))
        cells = [f"{'-' if v is None else _num(v):>{w}}" for v, (_, w) in zip(values, COLUMNS)]
        return (str(trial)[:22].ljust(22) + "  " if self._multi else "") + "  ".join(cells)

    # hooks
    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.trials = trials
        if len(trials) > 1 and not self._multi and not self.rows:
            self._multi = True
        self.rows.append(self.row(trial, result))
        if self.tty:
            self.redraw()
        else:
            if not self._header_done:
                self.out.write(self._header() + "\n")
                self._header_done = True
            self.out.write(self.rows[-1] + "\n")
            self.out.flush()

    def on_step_end(self, iteration, trials, **info):
        self.trials = trials
        if self.tty and time.monotonic() - self._last_draw >= 1.0:
            self.redraw()

    def on_experiment_end(self, trials, **info):
        self.trials = trials
        if self.tty:
            self.redraw(final=True)

    def redraw(self, final: bool = False) -> None:
        size = shutil.get_terminal_size((100, 24))
        keep = max(3, min(30, size.lines - 8))
        lines = [self._header()] + self.rows[-keep:]
        if not final:
            doing = "training" if self.rows else "starting"
            lines.append(f"{_duration(time.monotonic() - self.started)} elapsed, {doing} "
                         f"{self.status}")
        lines = [line[:size.columns - 1] for line in lines]
        up = f"\x1b[{self._drawn}F\x1b[J" if self._drawn else ""
        self.out.write(up + "\n".join(lines) + "\n")
        self.out.flush()
        self._drawn = len(lines)
        self._last_draw = time.monotonic()


# -- the commands -------------------------------------------------------------------------------

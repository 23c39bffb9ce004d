"""Live progress in the terminal: a table of trials, refreshed in place.

On a terminal the table is redrawn over itself (ANSI cursor movement); into
a file or pipe it is printed at most every ``max_report_frequency`` seconds.
At the end it prints the final table and the best trial.

>>> from skate.tune.progress_reporter import trial_table
>>> from skate.tune.trial import Trial
>>> t = Trial("a_00000", {"lr": 0.1}); t.last_result = {"loss": 0.5, "training_iteration": 3}
>>> print(trial_table([t], ["loss"], ["lr"]))  # doctest: +NORMALIZE_WHITESPACE
Trial name   status     lr     iter   loss
a_00000      PENDING    0.1    3      0.5
"""

from __future__ import annotations

import collections
import math
import sys
import time

from skate.tune.search.variant_generator import flatten_dict

# result fields that are bookkeeping, not metrics worth a column
HIDDEN_RESULT_KEYS = {"done", "training_iteration", "time_this_iter_s", "time_total_s", "timestamp",
                "date", "pid", "hostname", "node_ip", "trial_id", "iterations_since_restore",
                "time_since_restore", "config", "experiment_tag"}


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.5g}" if math.isfinite(value) else str(value)
    return str(value)


def trial_table(trials, metric_columns, parameter_columns, max_rows: int = 20) -> str:
    """The table as text: name, status, parameters, iterations, metrics."""
    header = ["Trial name", "status"] + list(parameter_columns) + ["iter"] + list(metric_columns)
    rows = []
    shown = trials if len(trials) <= max_rows else _pick(trials, max_rows)
    for t in shown:
        flat = flatten_dict(t.config, delimiter="/")
        row = [str(t), t.status] + [_fmt(flat.get(p, "")) for p in parameter_columns]
        row.append(_fmt(t.last_result.get("training_iteration", "")))
        row += [_fmt(t.last_result.get(m, "")) for m in metric_columns]
        rows.append(row)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    lines = ["   ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip()
             for line in [header] + rows]
    if len(shown) < len(trials):
        lines.append(f"... {len(trials) - len(shown)} more trials not shown")
    return "\n".join(lines)


def _pick(trials, max_rows):
    # Running trials first, then the most recent others: what a user watches for.
    order = {"RUNNING": 0, "PENDING": 1, "PAUSED": 2, "ERROR": 3, "TERMINATED": 4}
    return sorted(trials, key=lambda t: order.get(t.status, 5))[:max_rows]


class ProgressReporter:
    """Base class: ``should_report(trials)`` then ``report(trials, done)``."""

    def setup(self, metric=None, mode=None, total_samples=None, **info):
        """Told the experiment's metric/mode before it starts."""

    def should_report(self, trials, done: bool = False) -> bool:
        raise NotImplementedError(f"{type(self).__name__} must implement should_report()")

    def report(self, trials, done: bool, *sys_info) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement report()")


class CLIReporter(ProgressReporter):
    """The default reporter: a table of trials on stdout.

    ``verbose=1`` shows the table; ``verbose>=2`` also prints a line for each
    trial as it ends.

    >>> reporter = CLIReporter(metric_columns=["loss"], max_report_frequency=1)
    """

    def __init__(self, metric_columns=None, parameter_columns=None, max_progress_rows: int = 20,
                 max_report_frequency: float = 5, metric: str | None = None,
                 mode: str | None = None, verbose: int = 2, stream=None):
        self.metric_columns = list(metric_columns) if metric_columns else None
        self.parameter_columns = list(parameter_columns) if parameter_columns else None
        self.max_progress_rows = max_progress_rows
        self.max_report_frequency = max_report_frequency
        self.metric = metric
        self.mode = mode
        self.verbose = verbose
        self._stream = stream
        self._last = -math.inf
        self._drawn_lines = 0
        self._announced: set = set()  # trials whose end was printed (verbose >= 2)

    def setup(self, metric=None, mode=None, total_samples=None, **info):
        self.metric = self.metric or metric
        self.mode = self.mode or mode

    @property
    def stream(self):
        return self._stream or sys.stdout

    def should_report(self, trials, done: bool = False) -> bool:
        now = time.monotonic()
        # On a terminal the table redraws in place, so it can refresh often.
        period = 1.0 if self._interactive() else self.max_report_frequency
        if done or now - self._last >= period:
            self._last = now
            return True
        return False

    def _interactive(self) -> bool:
        return hasattr(self.stream, "isatty") and self.stream.isatty()

    def _columns(self, trials):
        metrics = self.metric_columns
        if metrics is None:
            seen = collections.OrderedDict()
            if self.metric:
                seen[self.metric] = None
            for t in trials:
                for k, v in t.last_result.items():
                    if k not in HIDDEN_RESULT_KEYS and isinstance(v, (int, float)):
                        seen.setdefault(k, None)
            metrics = list(seen)[:6]
        params = self.parameter_columns
        if params is None:
            seen = collections.OrderedDict()
            for t in trials:
                for k in t.evaluated_params:
                    seen.setdefault(k, None)
            params = list(seen)[:6]
        return metrics, params

    def report(self, trials, done: bool, *sys_info) -> None:
        metrics, params = self._columns(trials)
        counts = collections.Counter(t.status for t in trials)
        status = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        text = f"== Status == {len(trials)} trials: {status}\n"
        text += trial_table(trials, metrics, params, self.max_progress_rows) + "\n"
        if done and self.metric and self.mode:
            best = _best(trials, self.metric, self.mode)
            if best is not None:
                text += (f"Best trial {best}: {self.metric}={_fmt(best.last_result[self.metric])}"
                         f" config={best.config}\n")
        if self._interactive() and self._drawn_lines:
            self.stream.write(f"\x1b[{self._drawn_lines}F\x1b[J")  # back up over the old table
        if self.verbose >= 2:
            # Lines above the table stay: one per trial as it ends, with its last metrics.
            for t in trials:
                if t.is_finished() and t.trial_id not in self._announced:
                    self._announced.add(t.trial_id)
                    shown = {m: _fmt(t.last_result[m]) for m in metrics if m in t.last_result}
                    self.stream.write(f"Trial {t} {t.status} after "
                                      f"{t.last_result.get('training_iteration', 0)} "
                                      f"iterations: {shown}\n")
        self.stream.write(text)
        self.stream.flush()
        self._drawn_lines = text.count("\n")


def _best(trials, metric, mode):
    scored = [t for t in trials if isinstance(t.last_result.get(metric), (int, float))]
    if not scored:
        return None
    pick = max if mode == "max" else min
    return pick(scored, key=lambda t: t.last_result[metric])

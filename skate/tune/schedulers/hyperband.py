"""Synchronous HyperBand, Li et al. 2016, https://arxiv.org/abs/1603.06560, as Ray runs it.

Design. HyperBand hedges over how early it is safe to judge: it runs several
*brackets* of successive halving, each trading how many trials it starts
against how long they run before the first cut. With ``eta`` the reduction
factor and ``s_max + 1 = round(log_eta(max_t)) + 1`` brackets per *band*,
bracket ``s`` takes ``n0 = ceil((s_max + 1) / (s + 1) * eta**s)`` trials and
first judges them at ``r0 = max_t // eta**s``. Trials fill bracket
``s = 0, 1, ...`` of the current band in the order they are added; a full
band starts the next.

Inside a bracket everything is synchronous: a trial reaching the bracket's
milestone is PAUSED until every live trial of the bracket has reached it.
Then the bracket halves: the best ``ceil(n / eta)`` continue (they are
handed back by ``choose_trial_to_run``; the one reporting right now just
CONTINUEs), the rest are stopped (the reporting one by STOP, paused ones
through ``pop_trials_to_stop``), and the milestone grows ``eta`` times,
capped at ``max_t``. After the last halving, trials that reach the milestone
stop (``stop_last_trials``).

Trade-off kept from Ray: a trial that fails or finishes early leaves a hole
in its bracket; the bracket then judges fewer trials, and a trial added
while the hole is open joins the bracket at its current milestone.
"""

from __future__ import annotations

import logging
import math

from skate.tune.schedulers.trial_scheduler import (
    PAUSED,
    PENDING,
    RUNNING,
    Decision,
    TrialScheduler,
    is_finished,
)

logger = logging.getLogger(__name__)


class HyperBandScheduler(TrialScheduler):
    """HyperBand: successive halving in brackets, pausing trials to compare them in step.

    Args:
        time_attr: the result key that measures progress; must grow monotonically.
        metric: the result key to compare trials by.
        mode: "min" or "max": whether a smaller or larger metric is better.
        max_t: the most ``time_attr`` a trial gets; also sets the number of brackets.
        reduction_factor: ``eta``: each halving keeps the top ``1/eta`` of a bracket.
        stop_last_trials: stop trials after the last halving; if False, they run on.

    >>> from types import SimpleNamespace as T
    >>> hb = HyperBandScheduler(metric="acc", mode="max", max_t=9, reduction_factor=3)
    >>> a, b = T(trial_id="a", status="RUNNING"), T(trial_id="b", status="RUNNING")
    >>> hb.on_trial_add(a); hb.on_trial_add(b)  # the first bracket runs 3 trials to 9
    >>> hb.on_trial_result(a, {"training_iteration": 9, "acc": 0.5})
    'STOP'
    """

    _requires_metric = True
    _transient = ("_trials",)

    def __init__(self, time_attr: str = "training_iteration", metric: str | None = None,
                 mode: str | None = None, max_t: float = 81, reduction_factor: float = 3,
                 stop_last_trials: bool = True):
        super().__init__(metric, mode)
        if not max_t > 0:
            raise ValueError(f"max_t must be positive, got {max_t!r}.")
        if not reduction_factor > 1:
            raise ValueError(
                f"reduction_factor must be greater than 1 (each halving keeps the top "
                f"1/reduction_factor), got {reduction_factor!r}.")
        self._time_attr = time_attr
        self._max_t = max_t
        self._eta = reduction_factor
        self._stop_last_trials = stop_last_trials
        self._s_max_1 = round(math.log(max_t) / math.log(reduction_factor)) + 1
        # Bands in creation order; a band holds up to s_max_1 brackets, None where a
        # bracket would have had a milestone of 0 and was skipped.
        self._bands: list[list[_Bracket | None]] = [[]]
        self._filling: _Bracket | None = None  # the bracket new trials join
        self._bracket_of: dict[str, _Bracket] = {}  # every trial added, until it is removed
        self._stopped: set[str] = set()  # trials decided STOP: their late results stop too
        self._to_stop: list[str] = []  # stopped paused trials, not yet handed out
        self._trials: dict = {}  # trial_id -> the controller's live trial object (transient)

    # ---- events ---------------------------------------------------------------------------

    def on_trial_add(self, trial) -> None:
        self._check_metric()
        self._trials[trial.trial_id] = trial
        if trial.trial_id in self._bracket_of or trial.trial_id in self._stopped:
            return  # added again (a resumed experiment re-adds its trials): keep its place
        if self._filling is None or self._filling.filled():
            self._filling = self._new_bracket()
        self._filling.add(trial.trial_id)
        self._bracket_of[trial.trial_id] = self._filling

    def on_trial_result(self, trial, result: dict) -> Decision:
        self._check_metric()
        trial_id = trial.trial_id
        self._trials[trial_id] = trial
        t = self._require(result, self._time_attr, "time_attr")
        value = self._require(result, self._metric, "metric")
        if trial_id in self._stopped:
            return self.STOP
        bracket = self._bracket_of.get(trial_id)
        if bracket is None or trial_id not in bracket.live:
            return self.CONTINUE  # not ours (added before a restore, say): run it FIFO
        bracket.update(trial_id, t, self._sign() * float(value))
        if bracket.continue_trial(trial_id):
            return self.CONTINUE
        if bracket.halves == 0 and self._stop_last_trials:
            # Past the last halving nothing is left to compare: stop now rather than
            # pausing until the rest of the bracket arrives, as Ray does (same outcome).
            return self._stop(trial_id, bracket, current=True)
        return self._process(bracket, current=trial_id)

    def on_trial_complete(self, trial, result: dict) -> None:
        self._remove(trial.trial_id)

    def on_trial_error(self, trial) -> None:
        self._remove(trial.trial_id)

    def on_trial_remove(self, trial) -> None:
        self._remove(trial.trial_id)

    def pop_trials_to_stop(self) -> list[str]:
        out, self._to_stop = self._to_stop, []
        return out

    def choose_trial_to_run(self, trials: list):
        """Fair share: the bracket least far along first; within it a PENDING trial or a
        PAUSED one that was promoted. PAUSED trials still waiting for their bracket stay put;
        stopped ones only come back as a last resort, for a controller that does not take
        them from ``pop_trials_to_stop`` (their next result is answered with STOP)."""
        for t in trials:
            self._trials[t.trial_id] = t
        chosen = self._choose(trials)
        if chosen is not None:
            return chosen
        if not any(t.status == RUNNING for t in self._trials.values()):
            # Nothing is running, so nothing will report: settle every bracket whose
            # paused trials are waiting on trials that ended (Ray does the same).
            for bracket in self._brackets():
                if any(self._status(tid) == PAUSED for tid in bracket.live):
                    self._process(bracket, current=None)
            chosen = self._choose(trials)
        if chosen is None:
            # Trials this scheduler never saw (e.g. added before a restore) run FIFO.
            unknown = [t for t in trials if t.trial_id not in self._bracket_of
                       and t.trial_id not in self._stopped]
            chosen = super().choose_trial_to_run(unknown)
        if chosen is None:
            # Safety net for a controller that does not drain pop_trials_to_stop(): rather
            # than leave a stopped trial PAUSED forever, run it; its next result gets STOP.
            chosen = next((t for t in trials if t.trial_id in self._to_stop
                           and t.status == PAUSED), None)
        return chosen

    def debug_string(self) -> str:
        total = sum(1 for _ in self._brackets())
        lines = [f"Using HyperBand: num_stopped={len(self._stopped)} total_brackets={total}"]
        for i, band in enumerate(self._bands):
            lines.append(f"Round #{i}:")
            lines += [f"  {b.debug_string()}" for b in band if b is not None]
        return "\n".join(lines)

    # ---- internals ------------------------------------------------------------------------

    def _new_bracket(self) -> _Bracket:
        while True:
            if len(self._bands[-1]) == self._s_max_1:
                self._bands.append([])
            band = self._bands[-1]
            s = len(band)
            r0 = int(self._max_t * self._eta ** (-s))
            if r0 == 0:
                logger.info("HyperBand bracket %d would have a milestone of 0: skipped", s)
                band.append(None)
                continue
            n0 = math.ceil(self._s_max_1 / (s + 1) * self._eta**s)
            bracket = _Bracket(n0, r0, self._max_t, self._eta, s, self._stop_last_trials)
            band.append(bracket)
            return bracket

    def _brackets(self):
        for band in self._bands:
            yield from (b for b in band if b is not None)

    def _status(self, trial_id: str) -> str | None:
        trial = self._trials.get(trial_id)
        return None if trial is None else trial.status

    def _choose(self, trials: list):
        waiting = {t.trial_id: t for t in trials}
        for band in self._bands:
            for bracket in sorted((b for b in band if b is not None),
                                  key=lambda b: b.completion()):
                for tid in bracket.live:
                    trial = waiting.get(tid)
                    if trial is None:
                        continue
                    if trial.status == PENDING or (
                            trial.status == PAUSED and tid in bracket.to_unpause):
                        return trial
        return None

    def _process(self, bracket: _Bracket, current: str | None) -> str:
        """All live trials at the milestone? Halve (repeatedly, if the winners are already
        past the next one). Returns the decision for ``current``."""
        decision = self.PAUSE
        while bracket.live and bracket.cur_iter_done():
            if bracket.finished():
                for tid in list(bracket.live):
                    self._stop(tid, bracket, tid == current)
                return self.STOP
            if bracket.halves == 0:
                break  # stop_last_trials=False: the survivors run on, nothing to halve
            good, bad = bracket.successive_halving()
            for tid in bad:
                if tid == current:
                    decision = self.STOP
                self._stop(tid, bracket, tid == current)
            for tid in good:
                if bracket.continue_trial(tid):
                    if tid == current:
                        decision = self.CONTINUE
                    else:
                        bracket.to_unpause.add(tid)
            if not good:
                break
        return decision

    def _stop(self, trial_id: str, bracket: _Bracket, current: bool) -> str:
        bracket.live.pop(trial_id, None)
        bracket.to_unpause.discard(trial_id)
        self._stopped.add(trial_id)
        trial = self._trials.get(trial_id)
        if not current and not (trial is not None and is_finished(trial)):
            self._to_stop.append(trial_id)
        return self.STOP

    def _remove(self, trial_id: str) -> None:
        bracket = self._bracket_of.pop(trial_id, None)
        if bracket is None:
            return
        bracket.live.pop(trial_id, None)
        bracket.to_unpause.discard(trial_id)
        if trial_id in self._to_stop:
            self._to_stop.remove(trial_id)
        # The trials paused waiting for this one may be able to move on now.
        if bracket.live and not bracket.finished():
            self._process(bracket, current=None)


class _Bracket:
    """One successive-halving run: its live trials' latest progress and score."""

    def __init__(self, n0: int, r0: int, max_t: float, eta: float, s: int,
                 stop_last_trials: bool):
        self.n = n0  # how many live trials the bracket holds at its current level
        self.r = r0  # the milestone of the current level
        self.max_t = max_t
        self.eta = eta
        self.halves = s  # halvings still to come
        self.stop_last_trials = stop_last_trials
        # trial_id -> (time, score) of its latest result, or None before its first one
        self.live: dict[str, tuple[float, float] | None] = {}
        self.to_unpause: set[str] = set()  # paused winners waiting to be handed back
        self._progress = 0.0  # sum over trials of time reached (for fair scheduling)
        self._work = self._total_work(n0, r0, s)

    def add(self, trial_id: str) -> None:
        assert not self.filled(), "cannot add a trial to a filled bracket"
        self.live[trial_id] = None

    def filled(self) -> bool:
        return len(self.live) >= self.n

    def update(self, trial_id: str, t: float, score: float) -> None:
        previous = self.live.get(trial_id)
        self._progress += max(0.0, t - (previous[0] if previous else 0.0))
        self.live[trial_id] = (t, score)
        self.to_unpause.discard(trial_id)

    def _time(self, trial_id: str) -> float:
        entry = self.live[trial_id]
        return 0.0 if entry is None else entry[0]

    def cur_iter_done(self) -> bool:
        return all(self._time(tid) >= self.r for tid in self.live)

    def continue_trial(self, trial_id: str) -> bool:
        if self.halves == 0 and not self.stop_last_trials:
            return True
        return self._time(trial_id) < self.r

    def finished(self) -> bool:
        return self.stop_last_trials and self.halves == 0 and self.cur_iter_done()

    def successive_halving(self) -> tuple[list[str], list[str]]:
        """Move to the next level; return (winners, losers) among the live trials."""
        assert self.halves > 0, "the last level has nothing left to halve"
        self.halves -= 1
        self.n = math.ceil(self.n / self.eta)
        self.r = int(min(self.r * self.eta, self.max_t))
        ranked = sorted(self.live, key=lambda tid: self.live[tid][1], reverse=True)
        return ranked[:self.n], ranked[self.n:]

    def completion(self) -> float:
        if self.finished():
            return 1.0
        return min(self._progress / self._work, 1.0) if self._work else 1.0

    def _total_work(self, n: int, r: float, s: int) -> float:
        work = 0.0
        for _ in range(s + 1):
            work += n * r
            n = math.ceil(n / self.eta)
            r = min(r * self.eta, self.max_t)
        return work

    def debug_string(self) -> str:
        return (f"Bracket(Max Size (n)={self.n}, Milestone (r)={self.r}, "
                f"completed={self.completion():.1%}): {sorted(self.live)}")

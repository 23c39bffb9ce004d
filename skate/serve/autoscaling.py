"""How many replicas a deployment should have, from the requests it is carrying.

A pure state machine, after Ray Serve's default policy: the controller feeds
it observations (``observe(now, ongoing)``: requests running on or queued for
the deployment's replicas, summed) and asks ``decide(now, current)`` for the
replica count it should reconcile to. Time is always passed in; nothing here
sleeps, reads a clock or does I/O.

The rule: over the last ``look_back_period_s`` the average load is ``L``; the
wanted count is ``ceil(L / target_ongoing_requests)`` (moved towards by the
``upscaling_factor`` / ``downscaling_factor`` smoothing), clamped to
``[min_replicas, max_replicas]``. A change is made only once it has been
wanted continuously for ``upscale_delay_s`` (up) or ``downscale_delay_s``
(down) — in seconds, not in loop iterations — so a burst or a lull shorter
than the delay changes nothing. Two exceptions: a deployment at zero replicas
with a request waiting scales to one at once (the request is waiting for it),
and the last replica goes only after ``downscale_to_zero_delay_s`` (default:
``downscale_delay_s``) without load.

Invariants: ``decide`` returns a count in ``[min_replicas, max_replicas]``;
it differs from ``current`` only after the delay for that direction has
passed with that direction wanted throughout (or for the scale-from-zero
case); observations older than the look-back period are dropped.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class AutoscalingConfig:
    """``@serve.deployment(autoscaling_config=...)``, with Ray Serve's names.

    >>> AutoscalingConfig(min_replicas=0, max_replicas=4, target_ongoing_requests=2)
    ... # doctest: +ELLIPSIS
    AutoscalingConfig(min_replicas=0, max_replicas=4, ...)
    """

    min_replicas: int = 1
    """Never fewer replicas than this (0 allows scaling to zero)."""
    max_replicas: int = 1
    """Never more replicas than this."""
    initial_replicas: int | None = None
    """Replicas at first deploy (default: ``min_replicas``)."""
    target_ongoing_requests: float = 2.0
    """Requests in flight per replica the policy aims for."""
    upscale_delay_s: float = 30.0
    """How long more replicas must be wanted before they are added."""
    downscale_delay_s: float = 600.0
    """How long fewer replicas must be wanted before some are removed."""
    downscale_to_zero_delay_s: float | None = None
    """How long without load before the last replica goes (default: downscale_delay_s)."""
    look_back_period_s: float = 30.0
    """The window the load is averaged over."""
    upscaling_factor: float = 1.0
    """Fraction of the way towards the wanted count an upscale moves (1: all the way)."""
    downscaling_factor: float = 1.0
    """Fraction of the way towards the wanted count a downscale moves."""

    def __post_init__(self):
        for f in ("min_replicas", "max_replicas"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"autoscaling_config: {f} must be an int >= 0, got {v!r}")
        if self.max_replicas < 1:
            raise ValueError("autoscaling_config: max_replicas must be at least 1")
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"autoscaling_config: min_replicas ({self.min_replicas}) is above "
                             f"max_replicas ({self.max_replicas})")
        init = self.initial_replicas
        if init is not None and (isinstance(init, bool) or not isinstance(init, int)
                                 or not self.min_replicas <= init <= self.max_replicas):
            raise ValueError(f"autoscaling_config: initial_replicas must be an int between "
                             f"min_replicas and max_replicas, got {init!r}")
        for f in ("target_ongoing_requests", "look_back_period_s", "upscaling_factor",
                  "downscaling_factor"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise ValueError(f"autoscaling_config: {f} must be a number > 0, got {v!r}")
        for f in ("upscale_delay_s", "downscale_delay_s", "downscale_to_zero_delay_s"):
            v = getattr(self, f)
            if v is None and f == "downscale_to_zero_delay_s":
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"autoscaling_config: {f} must be a number >= 0, got {v!r}")

    @classmethod
    def from_dict(cls, d: dict) -> "AutoscalingConfig":
        """From a config file's or a decorator's dict; an unknown key is named in the error."""
        if not isinstance(d, dict):
            raise TypeError(f"autoscaling_config must be a dict, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"autoscaling_config: unknown key(s) {', '.join(unknown)}; valid "
                             f"keys are {', '.join(sorted(known))}")
        return cls(**d)

    def start_replicas(self) -> int:
        return self.min_replicas if self.initial_replicas is None else self.initial_replicas


class AutoscalingPolicy:
    """The replica count one deployment should have (see the module docstring).

    >>> p = AutoscalingPolicy(AutoscalingConfig(min_replicas=1, max_replicas=5,
    ...                       target_ongoing_requests=2, upscale_delay_s=3))
    >>> p.observe(0.0, 8); p.decide(0.0, current=1)   # 4 wanted, not for 3 s yet
    1
    >>> p.observe(3.5, 8); p.decide(3.5, current=1)
    4
    """

    def __init__(self, config: AutoscalingConfig):
        self.config = config
        self._samples: collections.deque = collections.deque()  # (time, ongoing), oldest first
        self._up_since: float | None = None  # when more replicas became wanted, continuously
        self._down_since: float | None = None  # likewise for fewer

    def observe(self, now: float, ongoing: float) -> None:
        """The deployment carries ``ongoing`` requests (running + queued) at ``now``."""
        if ongoing < 0:
            raise ValueError(f"ongoing requests cannot be negative, got {ongoing}")
        self._samples.append((now, ongoing))
        horizon = now - self.config.look_back_period_s
        while self._samples and self._samples[0][0] < horizon:
            self._samples.popleft()

    def load(self) -> float:
        """Average ongoing requests over the look-back window (0 with no observation)."""
        if not self._samples:
            return 0.0
        return sum(v for _, v in self._samples) / len(self._samples)

    def wanted(self, current: int) -> int:
        """The count the load asks for now, smoothed and clamped (no delays applied)."""
        c = self.config
        raw = math.ceil(self.load() / c.target_ongoing_requests - 1e-9)
        if raw > current:
            raw = current + math.ceil((raw - current) * c.upscaling_factor)
        elif raw < current:
            raw = current - math.floor((current - raw) * c.downscaling_factor)
            if raw == current and self.load() == 0:
                raw = current - 1  # no load at all: a small factor must still get to zero
        return max(c.min_replicas, min(c.max_replicas, raw))

    def decide(self, now: float, current: int) -> int:
        """The replica count to reconcile to at ``now``, given ``current`` replicas."""
        c = self.config
        want = self.wanted(current)
        latest = self._samples[-1][1] if self._samples else 0
        if current == 0 and latest > 0:
            self._up_since = self._down_since = None
            return max(1, want)  # a request waits for a first replica: no delay
        if want > current:
            self._down_since = None
            if self._up_since is None:
                self._up_since = now
            if now - self._up_since >= c.upscale_delay_s:
                self._up_since = None
                return want
            return current
        if want < current:
            self._up_since = None
            if self._down_since is None:
                self._down_since = now
            delay = c.downscale_delay_s
            if want == 0 and current > 1:
                want = 1  # down to one first; the last replica has its own delay
            elif want == 0 and c.downscale_to_zero_delay_s is not None:
                delay = c.downscale_to_zero_delay_s
            if now - self._down_since >= delay:
                self._down_since = None
                return want
            return current
        self._up_since = self._down_since = None
        return current

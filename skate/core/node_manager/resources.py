"""Resource quantities as fixed-point integers, so 0.1 + 0.2 fits exactly in 0.3.

A request like ``{"CPU": 0.5, "GPU": 1, "accel": 2}`` becomes a dict of
integers in units of 1/10,000; the scheduler only adds and compares these.
"""

from __future__ import annotations

UNIT = 10_000


def to_units(resources: dict) -> dict:
    out = {}
    for name, amount in resources.items():
        if amount is None:
            continue
        if not isinstance(amount, (int, float)) or isinstance(amount, bool) or amount < 0:
            raise ValueError(f"resource {name!r} must be a non-negative number, got {amount!r}")
        u = round(amount * UNIT)
        if u:
            out[name] = u
    return out


def from_units(units: dict) -> dict:
    return {k: (v // UNIT if v % UNIT == 0 else v / UNIT) for k, v in units.items()}


def fits(request: dict, available: dict) -> bool:
    for k, v in request.items():
        if available.get(k, 0) < v:
            return False
    return True


def subtract(available: dict, request: dict) -> None:
    for k, v in request.items():
        available[k] = available.get(k, 0) - v


def add(available: dict, request: dict) -> None:
    for k, v in request.items():
        available[k] = available.get(k, 0) + v


def describe(units: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(from_units(units).items())) or "nothing"

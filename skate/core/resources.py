"""Resources, shared by every role: fixed-point quantities and placement-group names.

Quantities are fixed-point integers, so 0.1 + 0.2 fits exactly in 0.3.

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


STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")


# -- placement group resource names (Ray's): shared by the control store, which reserves
# bundles, the node managers, which hold them, and workers, which report them
def bundle_resources(bundle: dict, index: int, pg_hex: str) -> dict:
    """The resources a reserved bundle adds to its node."""
    out = {"bundle_group_" + pg_hex: 1000, f"bundle_group_{index}_{pg_hex}": 1000}
    for k, v in bundle.items():
        out[f"{k}_group_{pg_hex}"] = v
        out[f"{k}_group_{index}_{pg_hex}"] = v
    return out


RESERVED = ("bundle",)  # names the group resources are made of


def plain_request(request: dict) -> dict:
    """Invert ``request_in_group``: ``{"CPU_group_0_<pg>": 1, "bundle_group_...": ..}`` ->
    ``{"CPU": 1}`` (what a task in a group reports as its assigned resources)."""
    out: dict = {}
    for k, v in request.items():
        name, sep, _ = k.rpartition("_group_")
        if not sep:
            out[k] = out.get(k, 0) + v
        elif name not in RESERVED:
            out[name] = out.get(name, 0) + v
    return out


def request_in_group(request: dict, pg_hex: str, index: int) -> dict:
    """A task's resource request rewritten to draw from a group's bundle(s)."""
    suffix = f"{index}_{pg_hex}" if index is not None and index >= 0 else pg_hex
    out = {f"{k}_group_{suffix}": v for k, v in request.items() if v}
    out[f"bundle_group_{suffix}"] = 0.001
    return out


def validate(bundles, strategy) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"Invalid placement group strategy {strategy!r}; use one of "
                         f"{', '.join(STRATEGIES)}.")
    if not isinstance(bundles, list) or not bundles:
        raise ValueError("bundles must be a non-empty list of dicts, e.g. [{'CPU': 1}].")
    for i, b in enumerate(bundles):
        if not isinstance(b, dict) or not b:
            raise ValueError(f"bundle {i} must be a non-empty dict of resources, got {b!r}.")
        for k, v in b.items():
            if k in RESERVED or "_group_" in str(k):
                raise ValueError(f"bundle {i}: {k} is a system reserved resource, which is not "
                                 f"allowed to be used in placement group.")
            if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, (int, float)) \
                    or v < 0:
                raise ValueError(f"bundle {i}: resource {k!r} must be a non-negative number, "
                                 f"got {v!r}.")
        if not any(v > 0 for v in b.values()):
            raise ValueError(f"bundle {i} asks for nothing; every bundle needs some resource.")

"""One node's resources as the lease books keep them: total, free, GPU ids, bundles.

Pure arithmetic on fixed-point amounts (``resources.UNIT`` per unit), owned by
``leases.Leases``, which decides *who* gets what; this module only keeps the
sums right. No clocks, no I/O.

GPUs. A lease for a fraction of a GPU takes that fraction of one GPU id; a
lease for whole GPUs takes that many fully free ids. Other amounts (1.5) can
never fit. ``gpu_free`` holds each id's free fraction in units.

Bundles. ``prepare_bundle`` moves a placement group bundle's resources out of
the free pool and adds the group's resources (``CPU_group_<i>_<pg>`` ...) to
both total and free; leases in the group draw from those. ``return_bundle``
takes the group's resources away again and frees the bundle's (the caller
first ends the leases that use them).

Blocked workers. A leased worker that waits in ``get`` lends its CPUs to the
node (``lend_cpu``) so nested tasks cannot deadlock; when it resumes it takes
them back (``take_back_cpu``) even if they are in use meanwhile (CPU
oversubscribed for a while, as in Ray).

Invariants (``validate(held)``, ``held`` the units the granted leases hold):

* per resource: ``available + held + sum(prepared bundles' units) == total``;
* no resource is negative, except CPU after a blocked worker resumed while its
  lent CPUs were granted to others;
* a GPU's free fraction is in [0, UNIT], and ``UNIT - gpu_free[g]`` is the share
  of ``g`` the granted leases hold.

>>> from skate.core import resources as res
>>> node = NodeResources(res.to_units({"CPU": 2, "GPU": 1}), num_gpus=1)
>>> half = res.to_units({"GPU": 0.5})
>>> node.take(half), node.take_gpus(half["GPU"])
(None, [0])
>>> node.validate(held=half, gpus_held={0: half["GPU"]})
"""

from __future__ import annotations

from skate.core import resources as res


class NodeResources:
    """What one node has and what of it is free; see the module docstring."""

    def __init__(self, total: dict, num_gpus: int):
        # total == the node's resources + the group resources of prepared bundles
        self.total: dict = dict(total)
        # see the first invariant; may go negative only for CPU (a resumed blocked worker)
        self.available: dict = dict(total)
        # gpu id -> free fraction in [0, UNIT]; UNIT - free == what granted leases hold of it
        self.gpu_free: dict[int, int] = {i: res.UNIT for i in range(num_gpus)}
        # (group hex, index) -> (units taken from available, group units added to total)
        self.bundles: dict[tuple, tuple] = {}

    # ---- queries ------------------------------------------------------------------------

    def fits_now(self, units: dict) -> bool:
        return res.fits(units, self.available)

    def fits_total(self, units: dict) -> bool:
        need = units.get("GPU", 0)
        gpus_could_fit = need <= res.UNIT or need % res.UNIT == 0
        return gpus_could_fit and res.fits(units, self.total)

    # ---- leases -------------------------------------------------------------------------

    def take(self, units: dict) -> None:
        res.subtract(self.available, units)

    def give_back(self, units: dict, gpu_ids: list, blocked: bool) -> None:
        """A granted lease's units and GPU shares are free again (less CPUs it lent)."""
        res.add(self.available, _without_lent_cpu(units, blocked))
        per = _gpu_share(units)
        for g in gpu_ids:
            self.gpu_free[g] += per

    def take_gpus(self, need: int) -> list | None:
        """The GPU ids for ``need`` units of GPU, taken; None if they are not free."""
        if need == 0:
            return []
        if need < res.UNIT:
            for gid, free in sorted(self.gpu_free.items()):
                if free >= need:
                    self.gpu_free[gid] -= need
                    return [gid]
            return None
        k = need // res.UNIT
        whole = [g for g, free in sorted(self.gpu_free.items()) if free == res.UNIT][:k]
        if len(whole) < k:
            return None
        for g in whole:
            self.gpu_free[g] = 0
        return whole

    def lend_cpu(self, cpu: int) -> None:
        self.available["CPU"] = self.available.get("CPU", 0) + cpu

    def take_back_cpu(self, cpu: int) -> None:
        self.available["CPU"] = self.available.get("CPU", 0) - cpu

    # ---- bundles ------------------------------------------------------------------------

    def prepare_bundle(self, key: tuple, bundle: dict, index: int, pg_hex: str) -> bool:
        """Reserve a bundle (idempotent); False if it does not fit the free resources."""
        if key in self.bundles:
            return True
        units = res.to_units(bundle)
        if not res.fits(units, self.available):
            return False
        res.subtract(self.available, units)
        group = res.to_units(res.bundle_resources(bundle, index, pg_hex))
        res.add(self.total, group)
        res.add(self.available, group)
        self.bundles[key] = (units, group)
        return True

    def bundle_group(self, key: tuple) -> dict | None:
        """The group resources a prepared bundle added (None if it is not prepared)."""
        entry = self.bundles.get(key)
        return entry[1] if entry is not None else None

    def return_bundle(self, key: tuple) -> None:
        """Free a prepared bundle; the leases drawing on its group must be returned first."""
        units, group = self.bundles.pop(key)
        for k, v in group.items():  # shared keys (CPU_group_<g>) lose this bundle's share
            for table in (self.total, self.available):
                left = table.get(k, 0) - v
                if left > 0:
                    table[k] = left
                else:
                    table.pop(k, None)
        res.add(self.available, units)

    # ---- invariants ---------------------------------------------------------------------

    def validate(self, held: dict, gpus_held: dict) -> None:
        """Raise AssertionError unless the books balance, given what the leases hold:
        ``held`` their units (less lent CPUs), ``gpus_held`` GPU id -> their share of it."""
        held = dict(held)
        for units, _ in self.bundles.values():
            res.add(held, units)
        for k in set(self.total) | set(self.available) | set(held):
            have = self.available.get(k, 0) + held.get(k, 0)
            assert have == self.total.get(k, 0), \
                f"{k}: available {self.available.get(k, 0)} + held {held.get(k, 0)} != " \
                f"total {self.total.get(k, 0)}"
            assert k == "CPU" or self.available.get(k, 0) >= 0, f"{k} is negative"
        for g, free in self.gpu_free.items():
            assert 0 <= free <= res.UNIT, f"GPU {g} free fraction {free}"
            assert res.UNIT - free == gpus_held.get(g, 0), \
                f"GPU {g}: free {free}, held {gpus_held.get(g, 0)}"


def held_by(leases) -> tuple[dict, dict]:
    """(units, GPU id -> share) that granted leases hold: the other side of validate()."""
    held: dict = {}
    gpus: dict = {}
    for lease in leases:
        res.add(held, _without_lent_cpu(lease.units, lease.blocked))
        per = _gpu_share(lease.units)
        for g in lease.gpu_ids:
            gpus[g] = gpus.get(g, 0) + per
    return held, gpus


def _without_lent_cpu(units: dict, blocked: bool) -> dict:
    if blocked and "CPU" in units:
        return {k: v for k, v in units.items() if k != "CPU"}  # lent to the node already
    return units


def _gpu_share(units: dict) -> int:
    """What a lease holds of each of its GPU ids: its fraction, or the whole id."""
    need = units.get("GPU", 0)
    return need if need < res.UNIT else res.UNIT

"""How the state API asks the cluster: which control store, which filters, how many.

Shared by ``state.py`` (the control store's tables) and ``node_state.py``
(what the nodes know). Not public: the functions of those two modules are.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterable

DEFAULT_LIMIT = 100  # as Ray's state API
DEFAULT_TIMEOUT_S = 30.0
PREDICATES = ("=", "!=")


def _select(records: list, kind: type, filters: Iterable | None, limit: int) -> list:
    checks = _checks(kind, filters)
    _check_limit(limit)
    out = []
    for r in records:
        if all((str(getattr(r, k)) == v) is eq for k, eq, v in checks):
            out.append(r)
            if len(out) >= limit:
                break
    return out


def _checks(kind: type, filters: Iterable | None) -> list:
    """``[(field, equal, value as str)]`` of valid filters, or ValueError naming the fault."""
    names = [f.name for f in dataclasses.fields(kind)]
    checks = []
    for item in filters or ():
        if not (isinstance(item, (tuple, list)) and len(item) == 3):
            raise ValueError(f"A filter is (field, predicate, value), e.g. ('state', '=', "
                             f"'ALIVE'); got {item!r}.")
        key, predicate, value = item
        if key not in names:
            raise ValueError(f"{kind.__name__} has no field {key!r}; filter on one of "
                             f"{', '.join(names)}.")
        if predicate not in PREDICATES:
            raise ValueError(f"Unsupported filter predicate {predicate!r}: use '=' or '!='.")
        checks.append((key, predicate == "=", str(value)))
    return checks


def _check_limit(limit) -> None:
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"limit must be a positive int, got {limit!r}.")


def _one(records: list):
    return records[0] if records else None


@contextlib.contextmanager
def _store(address: str | None):
    """The control store to ask: this process's own connection, or (not joined, or another
    cluster's ``address``) a connection of its own for the call, closed after it."""
    with _cluster(address) as (store, _token):
        yield store


@contextlib.contextmanager
def _cluster(address: str | None):
    """(the control store client, the cluster token to connect to its nodes with)."""
    from skate.core import rpc
    from skate.core.config import token_from_env
    from skate.core.control_store.client import ControlStoreClient
    from skate.core.node import read_current, read_token
    from skate.core.object_ref import current_worker

    core = current_worker()
    if core is not None and address in (None, "auto"):
        yield core.gcs, rpc.current_token()
        return
    info = read_current()
    if address in (None, "auto"):
        if info is None:
            raise ConnectionError(
                "No Skate cluster is running on this machine: start one with `skate start "
                "--head`, or call skate.init() in this process first.")
        address = info["gcs_address"]
    assert address is not None  # "auto" was resolved above
    token = token_from_env() or (read_token(info["session_dir"]) if info is not None else None)
    client = ControlStoreClient(rpc.connect(address, name="state", timeout=5, token=token))
    try:
        yield client, token
    finally:
        client.close()

"""Packing a call's arguments: top-level ObjectRefs become placeholders, resolved remotely.

Ray's rule: an ObjectRef passed directly as an argument is replaced by its
value before the function runs; one nested in a container is passed as the
ref itself. Arguments that pickle to more than the inline threshold go
through the object store once instead of inside the message.
"""

from __future__ import annotations

from skate.core import serialization
from skate.core.config import INLINE_THRESHOLD
from skate.core.object_ref import ObjectRef

_NO_ARGS = serialization.dumps_inband(([], {}))


def pack(core, args: tuple, kwargs: dict, what: str):
    """``(args_blob, deps, held)``: deps are the top-level refs, held every ref to keep alive."""
    if not args and not kwargs:
        return _NO_ARGS, [], []
    if not kwargs and serialization.is_plain(args):
        # scalars in built-in containers hold no ref: no placeholders, no ref collection
        blob = serialization.plain_dumps(([*args], {}))
        if len(blob) <= INLINE_THRESHOLD:
            return blob, [], []
    deps = []

    def sub(a):
        if type(a) is ObjectRef:
            deps.append(a)
            return serialization.ArgRef(len(deps) - 1)
        return a

    a2 = [sub(a) for a in args]
    k2 = {k: sub(v) for k, v in kwargs.items()} if kwargs else {}
    with serialization.collecting_refs() as c:
        meta, bufs = serialization.dumps((a2, k2), what)
    held = deps + c.refs
    size = len(meta) + sum(b.nbytes for b in bufs)
    if size <= INLINE_THRESHOLD:
        blob = meta if not bufs else serialization.dumps_inband((a2, k2), what)
        return blob, deps, held
    big = core.put((a2, k2))
    deps.append(big)
    held.append(big)
    return ("store", len(deps) - 1), deps, held


def resolve_now(core, deps: list) -> list:
    """Entries a worker can read for refs it resolves itself (actor calls and creation)."""
    out: list[tuple] = []
    for ref in deps:
        obj = core.objects.owned(ref.id)
        if obj is not None and obj.state != 0:
            if obj.in_store:
                out.append(("s", ref.id, obj.value[2], obj.value[3]))
            elif obj.value[1] == serialization.KIND_VALUE:
                out.append(obj.value)
            else:
                out.append(("r", ref.id, ref.owner))
        else:
            out.append(("r", ref.id, ref.owner))
    return out

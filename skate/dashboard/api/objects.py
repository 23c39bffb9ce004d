"""The Objects page's API: the references every process holds, objects by call site, and
each node's object store.

- ``GET /api/objects?call_site=&reference_type=&page=&per_page=``: a page of
  ``ObjectState`` rows (one per reference, as Ray lists them), the biggest objects first,
  and ``summary.by_reference_type``;
- ``GET /api/objects/summary``: ``{"by_call_site": {site: {...}}, "total_objects",
  "total_size_mb", "partial", "stores": [{"node_id", "node_ip", "is_head_node", "capacity",
  "used", ...}]}``.

The rows are the state API's (``skate.state.list_objects``).
"""

from __future__ import annotations

from collections import Counter

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from skate.dashboard.api import ask, context, record
from skate.dashboard.params import choice, page_of, text

REFERENCE_TYPES = ("LOCAL_REFERENCE", "BORROWED_BY_OTHERS", "ACTOR_HANDLE", "UNREFERENCED")


async def list_objects(request: Request) -> JSONResponse:
    q = request.query_params
    site, ref_type = text(q, "call_site"), choice(q, "reference_type", REFERENCE_TYPES)
    page = page_of(q)
    rows = await ask(context(request).cluster.objects)
    chosen = [r for r in rows if site in (None, r.call_site)
              and ref_type in (None, r.reference_type)]
    chosen.sort(key=lambda r: (-(r.object_size or 0), r.object_id))
    return JSONResponse({**page.info(len(chosen)),
                         "objects": [record(r) for r in page.slice(chosen)],
                         "summary": {"total_references": len(rows),
                                     "total_objects": len({r.object_id for r in rows}),
                                     "by_reference_type": dict(Counter(r.reference_type
                                                                       for r in rows))}})


def stores(status: dict) -> list:
    """Each alive node's object store use (``cluster_status()``'s ``object_store``)."""
    out = []
    for n in status.get("nodes", ()):
        if n.get("state") == "ALIVE" and n.get("object_store"):
            out.append({"node_id": n["node_id"], "node_ip": n.get("node_ip", ""),
                        "is_head_node": bool(n.get("is_head_node")), **n["object_store"]})
    out.sort(key=lambda s: (not s["is_head_node"], s["node_id"]))
    return out


async def summary(request: Request) -> JSONResponse:
    cluster = context(request).cluster
    s = await ask(cluster.object_summary)
    return JSONResponse({"by_call_site": s["summary"], "total_objects": s["total_objects"],
                         "total_size_mb": s["total_size_mb"], "partial": s.get("partial", 0),
                         "stores": stores(await ask(cluster.status))})


routes = [Route("/api/objects", list_objects, methods=["GET"]),
          Route("/api/objects/summary", summary, methods=["GET"])]

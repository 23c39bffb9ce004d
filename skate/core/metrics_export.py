"""The cluster's metrics in Prometheus' text format, and a read-only endpoint serving them.

``render(families)`` turns ``metrics.snapshot()`` into the exposition text
with ``prometheus_client`` (its metric families and ``generate_latest``), so
the format is the library's, not ours. ``serve(port, ...)`` is the
token-free endpoint a user asks for with ``skate start --head
--metrics-export-port PORT``: prometheus_client's own HTTP server, answering
each scrape with a fresh snapshot from the control store. It serves metrics
only (nothing that changes the cluster), which is why it may go without the
cluster token; the dashboard's ``/metrics`` is the token-gated way.

    python -m skate.core.metrics_export --port 8080 [--host 127.0.0.1] [--address GCS]
"""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Any


def _families(families: list[dict]):
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )

    fam: Any
    for f in families:
        keys = list(f["tag_keys"])
        kind = f["kind"]
        if kind == "counter":
            fam = CounterMetricFamily(f["name"], f["description"] or f["name"], labels=keys)
            for s in f["samples"]:
                fam.add_metric([s["tags"].get(k, "") for k in keys], s["value"])
        elif kind == "histogram":
            fam = HistogramMetricFamily(f["name"], f["description"] or f["name"], labels=keys)
            bounds = [*(repr(float(b)) for b in f["boundaries"]), "+Inf"]
            for s in f["samples"]:
                v = s["value"]
                cumulative, running = [], 0
                for bound, n in zip(bounds, v["buckets"]):
                    running += n
                    cumulative.append((bound, running))
                fam.add_metric([s["tags"].get(k, "") for k in keys], cumulative, v["sum"])
        else:
            fam = GaugeMetricFamily(f["name"], f["description"] or f["name"], labels=keys)
            for s in f["samples"]:
                fam.add_metric([s["tags"].get(k, "") for k in keys], s["value"])
        yield fam


def render(families: list[dict]) -> str:
    """The exposition text of ``families`` (``metrics.snapshot()``'s shape)."""
    try:
        from prometheus_client import CollectorRegistry, generate_latest
    except ImportError:
        raise ImportError("Prometheus' text format needs the prometheus_client package: "
                          "pip install prometheus-client") from None

    class _Once:
        def collect(self):
            return _families(families)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Once())
    return generate_latest(registry).decode()


def serve(port: int, host: str = "127.0.0.1", address: str | None = None):
    """Serve ``/metrics`` on ``host:port`` from a thread; returns (server, thread)."""
    from prometheus_client import CollectorRegistry, start_http_server

    from skate.core.metrics import snapshot

    class _Live:
        def collect(self):
            return _families(snapshot(address=address))

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Live())
    return start_http_server(port, addr=host, registry=registry)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m skate.core.metrics_export",
                                description="Serve the cluster's metrics to Prometheus.")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--address", default=None, help="the control store (default: this "
                   "machine's head)")
    args = p.parse_args(argv)
    try:
        server, _thread = serve(args.port, args.host, args.address)
    except OSError as e:
        print(f"Cannot serve metrics on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1
    print(f"ready http://{args.host}:{server.server_port}/metrics", flush=True)
    threading.Event().wait()  # until killed
    return 0


if __name__ == "__main__":
    sys.exit(main())

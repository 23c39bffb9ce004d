"""Application metrics (Ray's ``ray.util.metrics``): the core's public API, here.

>>> from skate.util.metrics import Counter
>>> Counter("app_jobs_done", "Jobs done.").inc()
"""

from skate.core.metrics import (
    Counter,
    Gauge,
    Histogram,
    Metric,
    prometheus_text,
    snapshot,
)

__all__ = ["Counter", "Gauge", "Histogram", "Metric", "prometheus_text", "snapshot"]

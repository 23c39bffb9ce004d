"""Application metrics (Ray's ``ray.util.metrics``): the core's public API, here.

>>> from skate.util.metrics import Counter
>>> Counter("app_jobs_done", "Jobs done.").inc()
"""

from skate import metrics as _metrics

Counter = _metrics.Counter
Gauge = _metrics.Gauge
Histogram = _metrics.Histogram
Metric = _metrics.Metric
prometheus_text = _metrics.prometheus_text
snapshot = _metrics.snapshot

__all__ = ["Counter", "Gauge", "Histogram", "Metric", "prometheus_text", "snapshot"]

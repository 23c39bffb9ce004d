"""Scraping the cluster's metrics: the exporter ``skate start --head --metrics-export-port``
starts (read-only, no token needed) and the dashboard's ``/metrics`` (gated like its other
reads), each showing a metric a driver defined."""

import re
import socket
import urllib.error
import urllib.request

import pytest

from tests.dashboard.conftest import started_head, wait_until

pytestmark = pytest.mark.skate_only
pytest.importorskip("prometheus_client")

DRIVER = """
    import skate
    from skate.util.metrics import Counter
    skate.init(address="auto")
    Counter("driver_widgets_made", "Widgets made by the test's driver.", ("color",)).inc(
        3, tags={"color": "blue"})
    skate.shutdown()  # sends what is pending
"""
#: the control store tags each sample with its node
LINE = re.compile(r'^driver_widgets_made_total\{NodeId="[0-9a-f]+",color="blue"\} 3\.0$', re.M)


def _scrape(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.headers["Content-Type"], resp.read().decode()


def test_the_exporter_serves_a_drivers_metric_without_the_token():
    with started_head("--metrics-export-port", "0", "--dashboard-read-token") as head:
        url = head.info["metrics_export_url"]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
        assert head.info["metrics_export_pid"]
        head.driver(DRIVER)
        text = wait_until(lambda: LINE.search(t := _scrape(url)[1]) and t, timeout=15)
        assert "# TYPE driver_widgets_made_total counter" in text
        assert "skate_nodes" in text  # the core's own metrics too
        # the dashboard's /metrics has the same, but this dashboard's reads need the token
        try:
            _scrape(head.url + "/metrics")
            raise AssertionError("read without the token")
        except urllib.error.HTTPError as e:
            assert e.code == 401
        ctype, text = _scrape(head.url + "/metrics", {"Authorization": f"Bearer {head.token}"})
        assert ctype.startswith("text/plain; version=0.0.4") and LINE.search(text)


def test_a_taken_port_is_a_warning_and_the_head_starts_anyway():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with started_head("--metrics-export-port", str(port)) as head:
            assert "metrics_export_url" not in head.info
            assert head.get("/api/version")["server"] == "skate-dashboard"

"""docs/grafana/skate.json: valid Grafana JSON whose every query names metrics Skate defines."""

import json
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skate_only

PROMQL_WORDS = {"sum", "by", "rate", "histogram_quantile", "le"}


def _defined_metric_names() -> set:
    """Every metric name given to Counter/Gauge/Histogram in the package's source, and the
    core families the control store computes."""
    names = set()
    pattern = re.compile(r'(?:Counter|Gauge|Histogram|family)\(\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"')
    for folder, _, files in os.walk(os.path.join(ROOT, "skate")):
        for f in files:
            if f.endswith(".py"):
                with open(os.path.join(folder, f)) as src:
                    names |= set(pattern.findall(src.read()))
    return names


def test_every_panel_queries_a_defined_metric():
    with open(os.path.join(ROOT, "docs", "grafana", "skate.json")) as f:
        dash = json.load(f)
    defined = _defined_metric_names()
    assert {"skate_node_resources", "serve_deployment_request_counter", "tune_trials"} <= defined
    assert dash["panels"] and len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
    for panel in dash["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"]
        for target in panel["targets"]:
            expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", "", target["expr"])
            words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)) - PROMQL_WORDS
            metrics = {w for w in words if "_" in w and w not in
                       {"application", "deployment", "state", "status", "trial"}}
            assert metrics, target["expr"]
            for m in metrics:
                base = re.sub(r"_(total|bucket|sum|count)$", "", m)
                assert base in defined, f"{panel['title']}: {m} is not a metric Skate defines"

"""The alerts and the dashboard query only metrics the operator really exports."""

from __future__ import annotations

import json
import re

from chart_support import ALL_ON, CHART_DIR, one
from prometheus_client import REGISTRY

import drover.observability  # noqa: F401  (registers the operator's metrics)

METRIC = re.compile(r"\bdrover_[a-z_]+\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exported() -> set[str]:
    names: set[str] = set()
    for family in REGISTRY.collect():
        if family.name.startswith("drover_"):
            names.update(family.name + s for s in SUFFIXES.get(family.type, ("",)))
    return names


def test_prometheus_rule_queries_exported_metrics(render) -> None:
    rule = one(render(ALL_ON), "PrometheusRule")
    used = {
        name
        for group in rule["spec"]["groups"]
        for alert in group["rules"]
        for name in METRIC.findall(alert["expr"])
    }
    assert used, "the rules query no drover_ metric"
    assert used <= exported(), f"not exported by drover.observability: {used - exported()}"


def test_dashboard_queries_exported_metrics() -> None:
    dashboard = json.loads((CHART_DIR / "dashboards" / "drover.json").read_text())
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in METRIC.findall(target["expr"])
    }
    assert used <= exported(), f"not exported by drover.observability: {used - exported()}"

"""`helm lint --strict` (Helm's own linter through its Go SDK) passes on the chart."""

from __future__ import annotations

import helm_python as helm
import pytest
from chart_support import ALL_ON, CHART_DIR, NAMESPACED

WARNING = 2


@pytest.mark.parametrize(
    "values", [None, ALL_ON, NAMESPACED], ids=["defaults", "all-features", "namespaced"]
)
def test_lint_strict_passes_for_kubernetes_1_30(values) -> None:
    report = helm.lint(CHART_DIR, values, strict=True, kube_version="v1.30.0")
    problems = [m for m in report["messages"] if m["severity"] >= WARNING]
    assert report["total_charts_linted"] == 1
    assert problems == []
    assert report["errors"] == []


def test_lint_reports_bad_values_as_errors() -> None:
    report = helm.lint(CHART_DIR, {"replicaCount": -1}, strict=True)
    assert any("/replicaCount" in error for error in report["errors"])

"""Every query of the chart's Grafana dashboard parses as PromQL (promtool) and names only series
that something Drover runs exports: the operator (drover.observability), the router and model
replicas (drover_workers.serve.metrics, `ray_drover_*`), vLLM's engine metrics (`vllm:*`, and
`ray_vllm_*` as Ray Serve LLM's stat logger exports them) and Ray Serve's own (`ray_serve_*`).
vLLM's and Ray Serve's names are read from the installed packages' sources, not listed by hand.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_support import CHART_DIR
from prometheus_client import REGISTRY

import drover.observability  # noqa: F401  (registers the operator's metrics)
from drover_workers.serve import metrics as serve_metrics

SUFFIXES = ("", "_total", "_bucket", "_sum", "_count")
KEYWORDS = {"and", "or", "unless", "bool", "offset", "group_left", "group_right", "inf", "nan"}
PROMTOOL = shutil.which("promtool")


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin is not None, f"{name} is not installed"
    return Path(spec.origin).parent


def with_suffixes(names: set[str]) -> set[str]:
    return {n + s for n in names for s in SUFFIXES}


def operator_series() -> set[str]:
    return with_suffixes({f.name for f in REGISTRY.collect() if f.name.startswith("drover_")})


def router_series() -> set[str]:
    return with_suffixes(set(serve_metrics.ALL_SERIES))


def vllm_series() -> set[str]:
    source = (package_dir("vllm") / "v1" / "metrics" / "loggers.py").read_text()
    names = set(re.findall(r'name="vllm:([a-z0-9_]+)"', source))
    assert "kv_cache_usage_perc" in names
    return with_suffixes({f"vllm:{n}" for n in names} | {f"ray_vllm_{n}" for n in names})


def ray_serve_series() -> set[str]:
    names = {
        name
        for path in (package_dir("ray") / "serve").rglob("*.py")
        for name in re.findall(r'"(serve_[a-z0-9_]+)"', path.read_text(errors="replace"))
    }
    assert "serve_deployment_replica_healthy" in names
    return with_suffixes({"ray_" + n for n in names})


def series_of(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels and keywords left out)."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    bare = re.sub(r"\{[^}]*\}", "", bare)
    bare = re.sub(r"\[[^\]]*\]", "", bare)
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", bare)
    found = re.finditer(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", bare)
    return {m.group(1) for m in found if not m.group(2) and m.group(1) not in KEYWORDS}


def panels() -> list[dict[str, Any]]:
    dashboard = json.loads((CHART_DIR / "dashboards" / "drover.json").read_text())
    out: list[dict[str, Any]] = []
    stack = list(dashboard["panels"])
    while stack:
        panel = stack.pop(0)
        out.append(panel)
        stack.extend(panel.get("panels", []))
    return out


def queries() -> list[tuple[str, str]]:
    return [(f"{p['id']}:{t['refId']}", t["expr"]) for p in panels() for t in p.get("targets", [])]


def test_series_of_reads_names_not_functions_or_labels() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (version, le) (rate(a_bucket{code=~"5.."}[5m])))'
        " / on (version) group_left max by (version) (b:c) unless d offset 5m"
    )
    assert series_of(expr) == {"a_bucket", "b:c", "d"}


def test_every_panel_queries_a_series_that_exists() -> None:
    known = operator_series() | router_series() | vllm_series() | ray_serve_series()
    unknown = {ref: series_of(expr) - known for ref, expr in queries()}
    assert all(series_of(expr) for _, expr in queries()), "a query names no series"
    assert not {ref: names for ref, names in unknown.items() if names}


def test_dashboard_covers_serving_as_well_as_the_operator() -> None:
    used = set().union(*(series_of(expr) for _, expr in queries()))
    for source in (operator_series(), router_series(), vllm_series(), ray_serve_series()):
        assert used & source


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (make system-deps)")
def test_every_query_parses(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    rules = [
        {"record": f"dashboard:panel_{ref.replace(':', '_')}", "expr": expr}
        for ref, expr in queries()
    ]
    (tmp_path / "queries.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]})
    )
    result = subprocess.run(
        [PROMTOOL, "check", "rules", "queries.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

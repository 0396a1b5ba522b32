"""The chart's PrometheusRule passes `promtool check rules` and `promtool test rules`.

The rules are rendered by Helm's Go SDK (as every chart test renders them) and written as a
Prometheus rule file; the unit tests are alerts_promtool_cases.yaml. promtool compares each
alert's annotations too: a case's are the rule's own templates expanded with the case's labels
(and `value`), so a template that names a label the expression drops shows up as a mismatch.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_support import ALL_ON, one

PROMTOOL = shutil.which("promtool")
CASES = Path(__file__).with_name("alerts_promtool_cases.yaml")
REQUIRED = {
    "DroverRolloutRolledBack",
    "DroverAutoscalerAtMaxReplicas",
    "DroverAutoscalerMetricsUnavailable",
    "DroverFineTuneJobFailed",
    "DroverReconcileErrors",
    "DroverSLOAttainmentBelowTarget",
}
pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (make system-deps)"
)


def rule_groups(render: Any) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = one(render(ALL_ON), "PrometheusRule")["spec"]["groups"]
    return groups


def alerts(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


def expand(template: str, labels: dict[str, str], value: str) -> str:
    """The subset of Go templates the rules use: {{ $labels.NAME }}, {{ $value }} and
    {{ $value | humanizePercentage }} (Prometheus template/template.go: "%.4g%%" of value * 100)."""
    out = re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)
    percent = f"{float(value) * 100:.4g}%" if value else ""
    out = re.sub(r"\{\{\s*\$value\s*\|\s*humanizePercentage\s*\}\}", percent, out)
    return re.sub(r"\{\{\s*\$value\s*\}\}", value, out)


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_rules_pass_promtool_check(render: Any, tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups(render)}))
    result = promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_rules_pass_promtool_unit_tests(render: Any, tmp_path: Path) -> None:
    groups = rule_groups(render)
    rules = alerts(groups)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    cases = yaml.safe_load(CASES.read_text())
    tested = set()
    for case in cases["tests"]:
        for check in case["alert_rule_test"]:
            tested.add(check["alertname"])
            annotations = rules[check["alertname"]]["annotations"]
            for alert in check["exp_alerts"]:
                value = str(alert.pop("value", ""))
                alert["exp_annotations"] = {
                    k: expand(v, alert["exp_labels"], value) for k, v in annotations.items()
                }
    assert tested >= REQUIRED, f"no promtool test of {REQUIRED - tested}"
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump({**cases, "rule_files": ["rules.yaml"]}))
    result = promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_unit_tested(render: Any) -> None:
    cases = yaml.safe_load(CASES.read_text())
    tested = {c["alertname"] for case in cases["tests"] for c in case["alert_rule_test"]}
    assert set(alerts(rule_groups(render))) <= tested

"""Prometheus down mid-canary (issue #16, Ray faults): the operator holds the canary at its step
and weight, says why (`MetricsUnavailable` PrometheusUnreachable, and the rollout's reason),
counts nothing toward failureLimit, and once the same Prometheus is back the rollout goes on to
its end state. `onInconclusive: rollback` with `failureLimit: 0` is the strictest setting: an
outage counted as an inconclusive analysis there would roll a good canary back blind.

The operator and a real Prometheus (stopped and started again by PID, same port and storage);
KubeRay and Serve are played as in tests/integration (about 50 s, hence `chaos`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.fixtures import prometheus as prometheus_fixtures
from tests.integration.conftest import drover_crds, start_operator, wait_for
from tests.integration.support import events_for, status_of
from tests.integration.test_rollout_prometheus import (
    ERRORS,
    LATENCY,
    SVC,
    A,
    B,
    rollout,
    rollout_spec,
    settled,
    start_canary,
    weights,
)

pytestmark = pytest.mark.chaos
__all__ = ["drover_crds", "start_operator"]  # the integration tests' fixtures, used here


def metrics_condition(api: Any, ns: str) -> dict[str, Any]:
    conds = status_of(api, "inferenceservices", ns, SVC).get("conditions") or []
    return next((c for c in conds if c["type"] == "MetricsUnavailable"), {})


def test_prometheus_down_mid_canary_holds_the_step_then_the_rollout_completes(
    k8s_api, namespace, start_operator, dashboard, tmp_path: Path
) -> None:
    own = prometheus_fixtures.start_prometheus(tmp_path / "prometheus")
    try:
        spec = rollout_spec(ERRORS, LATENCY)
        spec["analysis"] |= {"onInconclusive": "rollback", "failureLimit": 0}
        start_canary(k8s_api, namespace, start_operator, dashboard, own, spec, rate=5, latency=0.2)
        # Step 1's analysis runs intervalSeconds (10 s) after the step starts: stop before it.
        wait_for("step 1 at 10%", lambda: weights(k8s_api, namespace) == {A: 90, B: 10}, 60, 0.1)
        own.stop()
        cond = wait_for(
            "MetricsUnavailable=True",
            lambda: (c := metrics_condition(k8s_api, namespace)).get("status") == "True" and c,
        )
        assert cond["reason"] == "PrometheusUnreachable"
        assert cond["message"].startswith("The canary analysis cannot judge canary")
        held = wait_for(
            "the analysis holding",
            lambda: (
                "metrics unavailable, holding"
                in (r := rollout(k8s_api, namespace)).get("reason", "")
                and r
            ),
        )
        # One more analysis interval with Prometheus still down: still held, nothing counted.
        again = wait_for(
            "a second held analysis",
            lambda: (
                (r := rollout(k8s_api, namespace)).get("phaseStartedAt") != held["phaseStartedAt"]
                and "metrics unavailable" in r.get("reason", "")
                and r
            ),
            timeout=60,
        )
        for r in (held, again):
            assert r["phase"] in ("Step", "Analysing") and r["step"] == 0, r
            assert r.get("failures", 0) == 0 and r.get("inconclusives", 0) == 0, r
        assert weights(k8s_api, namespace) == {A: 90, B: 10}
        assert "Prometheus at http://127.0.0.1:" in again["reason"]
        own.start()  # the same port and storage: the series are back
        done = settled(k8s_api, namespace, "Promoted")
    finally:
        own.stop()
    assert done["history"][-1]["result"] == "Promoted" and not done.get("rejected")
    assert done.get("failures", 0) == 0
    wait_for("the router at 100% canary", lambda: weights(k8s_api, namespace) == {B: 100})
    assert metrics_condition(k8s_api, namespace).get("status") != "True"
    held_events = [e for e in events_for(k8s_api, namespace, SVC) if "metrics unavailable" in e]
    assert held_events and all(e.startswith("AnalysisInconclusive:") for e in held_events)

"""The operator's autoscaler against a real Prometheus: deterministic series (TSDB blocks) and one
live scrape drive an InferenceService's replica count, recorded in status and in the Serve config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import prometheus_client
import pytest
from tests.fixtures import prometheus as prometheus_fixtures
from tests.integration.conftest import wait_for
from tests.integration.promseries import Series
from tests.integration.serving_support import (
    DIGEST_A,
    create_service,
    deployment,
    ready_model,
    serve_config,
    serve_ready,
)
from tests.integration.support import events_for, status_of

from drover.api.versions import version_id
from drover.k8s import metrics
from drover_sandbox.apiserver.launcher import free_port

prometheus = prometheus_fixtures.prometheus  # the session's block-fed Prometheus
start_prometheus = prometheus_fixtures.start_prometheus

SVC = "chat"
TICK = "Timer 'inferenceservice_autoscale' succeeded"
# Short windows so a test sees a whole up-and-down cycle in seconds.
AUTOSCALING = {
    "signal": "inFlightRequests",
    "target": 4,
    "windowSeconds": 10,
    "scaleUp": {"stabilizationSeconds": 0, "periodSeconds": 1},
    "scaleDown": {"stabilizationSeconds": 4, "periodSeconds": 1, "maxStepPercent": 50},
    "panic": {"windowSeconds": 4},
}


def scaling(api: Any, ns: str) -> dict[str, Any]:
    return dict(status_of(api, "inferenceservices", ns, SVC).get("autoscaling") or {})


def condition(api: Any, ns: str, kind: str) -> dict[str, Any] | None:
    conds = status_of(api, "inferenceservices", ns, SVC).get("conditions") or []
    return next((c for c in conds if c["type"] == kind), None)


def num_replicas(api: Any, ns: str) -> int:
    found = deployment(serve_config(api, ns, SVC), DIGEST_A)
    assert found is not None, "the stable version's deployment left the Serve config"
    return int(found["num_replicas"])


def served(api: Any, ns: str, dashboard: Any, autoscaling: dict[str, Any] = AUTOSCALING) -> None:
    ready_model(api, ns, "tiny-llama", dashboard, DIGEST_A)
    create_service(api, ns, SVC, replicas={"min": 1, "max": 4}, autoscaling=autoscaling)
    serve_ready(api, ns, SVC, DIGEST_A)


@pytest.mark.parametrize(
    ("signal", "target", "load", "label"),
    [
        ("queueDepth", 2, 8, "queue depth"),
        ("tokensPerSecond", 50, 200, "tokens/s"),
        ("kvCacheUtilization", 0.5, 2.0, "KV-cache use"),
        ("waitingRequests", 2, 8, "engine waiting"),
    ],
)
def test_each_signal_reads_its_own_series_and_scales_the_service_up(
    k8s_api, namespace, start_operator, dashboard, prometheus, signal, target, load, label
) -> None:
    # Each signal reads its own series (the others stay empty): 4x the target from now on.
    series = Series()
    series.signal(signal, SVC, namespace, DIGEST_A, lambda t: 0 if t < 0 else load)
    prometheus.load(series.text())
    start_operator(prometheus_url=prometheus.url)
    served(k8s_api, namespace, dashboard, {**AUTOSCALING, "signal": signal, "target": target})
    up = wait_for(
        f"the scale-up to 4 on {signal}",
        lambda: (s := scaling(k8s_api, namespace))["desiredReplicas"] == 4 and s,
    )
    assert up["signal"] == signal
    last = up["history"][-1]
    assert (last["from"], last["to"]) == (1, 4)
    assert last["reason"].startswith(f"replicas 1→4: panic: {label} ")
    assert f"≥ 2x target {target}" in last["reason"]
    wait_for("num_replicas 4 in the Serve config", lambda: num_replicas(k8s_api, namespace) == 4)


def test_holds_without_data_then_scales_up_with_load_and_down_after_it(
    k8s_api, namespace, start_operator, dashboard, prometheus
) -> None:
    start_operator(prometheus_url=prometheus.url)
    served(k8s_api, namespace, dashboard)

    held = wait_for("a decision without data", lambda: scaling(k8s_api, namespace))
    assert held["desiredReplicas"] == 1 and held.get("value") is None
    assert "no inFlightRequests data" in held["reason"]
    missing = condition(k8s_api, namespace, "MetricsUnavailable")
    assert missing is not None and missing["status"] == "True"
    assert missing["reason"] == "NoSeries"
    assert f"no series for inFlightRequests of version {version_id(DIGEST_A)}" in missing["message"]

    # 16 requests in flight for the next 20 s, then 2.
    series = Series()
    series.in_flight(SVC, namespace, DIGEST_A, lambda t: 16 if t < 20 else 2)
    prometheus.load(series.text())

    up = wait_for(
        "the scale-up to 4",
        lambda: (s := scaling(k8s_api, namespace))["desiredReplicas"] == 4 and s,
    )
    assert up["history"][-1]["from"] == 1 and up["history"][-1]["to"] == 4
    assert up["history"][-1]["reason"] == (
        "replicas 1→4: panic: in-flight 16 per replica over 4s ≥ 2x target 4"
    )
    wait_for("num_replicas 4 in the Serve config", lambda: num_replicas(k8s_api, namespace) == 4)
    available = condition(k8s_api, namespace, "MetricsUnavailable")
    assert available is not None and available["status"] == "False"

    down = wait_for(
        "the scale-down to 1",
        lambda: (s := scaling(k8s_api, namespace))["desiredReplicas"] == 1 and s,
        timeout=90,
    )
    moves = [(h["from"], h["to"]) for h in down["history"]]
    steps_down = moves[moves.index((1, 4)) + 1 :]
    assert len(steps_down) >= 2 and steps_down[-1][1] == 1  # never straight from 4 to 1
    assert all(b < a and b >= a / 2 for a, b in steps_down)  # at most 50% per period
    last = down["history"][-1]["reason"]
    assert last.startswith("replicas 2→1: in-flight") and "< target 4" in last
    wait_for("num_replicas 1 in the Serve config", lambda: num_replicas(k8s_api, namespace) == 1)
    status = status_of(k8s_api, "inferenceservices", namespace, SVC)
    assert status["replicas"]["desired"] == 1
    reasons = wait_for("events", lambda: events_for(k8s_api, namespace, SVC))
    assert any(e.startswith("ScaledUp: replicas 1→4") for e in reasons)
    assert any(e.startswith("ScaledDown: replicas 2→1") for e in reasons)


def test_unreachable_prometheus_holds_the_scaled_count_with_the_reason(
    k8s_api, namespace, start_operator, dashboard, tmp_path: Path
) -> None:
    own = start_prometheus(tmp_path / "prometheus")
    try:
        operator = start_operator(prometheus_url=own.url)
        served(k8s_api, namespace, dashboard)
        series = Series()
        series.in_flight(SVC, namespace, DIGEST_A, 12)
        own.load(series.text())
        wait_for("the scale-up to 3", lambda: scaling(k8s_api, namespace)["desiredReplicas"] == 3)
    finally:
        own.stop()

    def unavailable() -> dict[str, Any] | None:
        cond = condition(k8s_api, namespace, "MetricsUnavailable")
        return cond if cond and cond["status"] == "True" else None

    cond = wait_for("MetricsUnavailable", unavailable)
    assert cond["reason"] == "PrometheusUnreachable"
    assert cond["message"].startswith("The autoscaler is holding 3 replicas: Prometheus at http")
    assert "is unreachable" in cond["message"] and "(query: sum(" in cond["message"]
    ticks = operator.log().count(TICK)
    wait_for("two more autoscaler runs", lambda: operator.log().count(TICK) >= ticks + 2)
    held = scaling(k8s_api, namespace)
    assert held["desiredReplicas"] == 3 and held.get("value") is None
    assert held["reason"] == "holding 3 replicas: no inFlightRequests data from metrics"
    assert num_replicas(k8s_api, namespace) == 3
    assert any(e.startswith("MetricsUnavailable:") for e in events_for(k8s_api, namespace, SVC))


def test_a_live_scraped_in_flight_gauge_scales_the_service_up(
    k8s_api, namespace, start_operator, dashboard, tmp_path: Path
) -> None:
    registry = prometheus_client.CollectorRegistry()
    gauge = prometheus_client.Gauge(
        metrics.IN_FLIGHT.removeprefix("ray_"),
        "requests in flight",
        ["service", "namespace", "version"],
        namespace="ray",
        registry=registry,
    )
    load = gauge.labels(SVC, namespace, version_id(DIGEST_A))
    load.set(2)
    port = free_port()
    server, thread = prometheus_client.start_http_server(port, "127.0.0.1", registry=registry)
    own = None
    try:
        own = start_prometheus(tmp_path / "prometheus", scrape=[f"127.0.0.1:{port}"])
        start_operator(prometheus_url=own.url)
        served(k8s_api, namespace, dashboard)
        calm = wait_for(
            "a decision on scraped data",
            lambda: (s := scaling(k8s_api, namespace)).get("value") is not None and s,
        )
        assert calm["desiredReplicas"] == 1 and calm["value"] == 2
        assert calm["reason"].startswith("holding 1 replica: in-flight 2 per replica < target 4")

        load.set(14)
        up = wait_for(
            "the scale-up to ceil(14 / 4) = 4",
            lambda: (s := scaling(k8s_api, namespace))["desiredReplicas"] == 4 and s,
        )
        moves = [(h["from"], h["to"]) for h in up["history"]]
        assert moves[0][0] == 1 and all(a < b for a, b in moves)  # only upward, from 1
        wait_for("num_replicas 4", lambda: num_replicas(k8s_api, namespace) == 4)
    finally:
        if own is not None:
            own.stop()
        server.shutdown()
        thread.join(5)


def test_a_run_on_a_body_that_does_not_show_the_last_decision_yet_is_skipped() -> None:
    from datetime import UTC, datetime, timedelta

    from drover.api.autoscaling import AutoscalingStatus
    from drover.handlers import autoscaler

    t0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    def recorded(at: datetime) -> AutoscalingStatus:
        return AutoscalingStatus(
            current_replicas=3, desired_replicas=3, signal="inFlightRequests", last_decision_time=at
        )

    wrote, later = t0 + timedelta(seconds=2), t0 + timedelta(seconds=4)
    autoscaler._WRITTEN["uid-1"] = wrote  # this process decided (and patched) at t0+2
    assert autoscaler._behind("uid-1", recorded(t0), later)
    assert not autoscaler._behind("uid-1", recorded(wrote), later)
    # A write the watch never shows stops holding decisions back after the grace period.
    late = wrote + autoscaler.STALE_GRACE
    assert not autoscaler._behind("uid-1", recorded(t0), late)
    assert not autoscaler._behind("uid-2", None, t0)  # nothing written by this process

"""The operator's autoscaler in SLO mode against a real Prometheus: the in-flight series, its peak
and the router's time-to-first-token histogram decide the replica count, and status says what
was measured and learnt."""

from __future__ import annotations

from typing import Any

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
from tests.integration.support import status_of

from drover.api.versions import version_id
from drover.k8s import metrics

prometheus = prometheus_fixtures.prometheus  # the session's block-fed Prometheus

SVC = "slo-chat"
SLO = {"ttftSeconds": 2, "attainment": 0.99, "windowSeconds": 60}
AUTOSCALING = {
    "slo": SLO,
    "windowSeconds": 10,
    "scaleUp": {"stabilizationSeconds": 0, "periodSeconds": 1},
    "panic": {"windowSeconds": 4},
}


def ttft(series: Series, namespace: str, rate: float, within: float) -> None:
    """The router's TTFT histogram: `rate` requests/s, a share `within` at 0.5 s, the rest 4 s."""
    labels = {"service": SVC, "namespace": namespace, "version": version_id(DIGEST_A)}
    for le, share in (("0.5", within), ("1", within), ("2.5", within), ("5", 1.0), ("+Inf", 1.0)):
        series.counter(f"{metrics.TTFT}_bucket", {**labels, "le": le}, rate * share)
    series.counter(f"{metrics.TTFT}_count", labels, rate)


def scaling(api: Any, ns: str) -> dict[str, Any]:
    return dict(status_of(api, "inferenceservices", ns, SVC).get("autoscaling") or {})


def test_slo_mode_measures_attainment_and_raises_its_headroom_on_a_shortfall(
    k8s_api, namespace, start_operator, dashboard, prometheus
) -> None:
    # 20 in flight at 10 requests/s (each holds a slot 2 s); 95% within 2 s against an SLO of
    # 99%. With 8 sequences per replica (runtime.maxNumSeqs of the test service) the plan is
    # 20 + 0.78 x sqrt(20) = 23.5 slots: 3 replicas; the shortfall (5 budgets) raises the
    # headroom x1.5 at the first decision (the next raise waits half an SLO window, 30 s):
    # 35.2 slots, 5 replicas.
    series = Series()
    series.in_flight(SVC, namespace, DIGEST_A, 20)
    ttft(series, namespace, rate=10, within=0.95)
    prometheus.load(series.text())
    start_operator(prometheus_url=prometheus.url)
    ready_model(k8s_api, namespace, "tiny-llama", dashboard, DIGEST_A)
    create_service(k8s_api, namespace, SVC, replicas={"min": 1, "max": 10}, autoscaling=AUTOSCALING)
    serve_ready(k8s_api, namespace, SVC, DIGEST_A)

    up = wait_for(
        "the scale-up to 5 with a raised headroom",
        lambda: (
            (s := scaling(k8s_api, namespace))["desiredReplicas"] == 5
            and "SLO 99.00%" in s["reason"]  # the first decision's reason is panic's
            and s
        ),
    )
    slo = up["slo"]
    assert abs(slo["attainment"] - 0.95) < 0.005
    assert slo["requests"] > 100
    assert slo["headroom"] == 1.5
    assert abs(slo["peak"] - 20) < 0.5 and abs(slo["mean"] - 20) < 0.5
    assert "SLO 99.00% within 2s (95.00% within 2s over" in up["reason"]
    assert "x headroom 1.50 = 35.2 slots" in up["reason"]
    assert "raised headroom 1.00→1.50" in " ".join(h["reason"] for h in up["history"])

    def num_replicas() -> int:
        found = deployment(serve_config(k8s_api, namespace, SVC), DIGEST_A)
        assert found is not None
        return int(found["num_replicas"])

    wait_for("num_replicas 5 in the Serve config", lambda: num_replicas() >= 5)

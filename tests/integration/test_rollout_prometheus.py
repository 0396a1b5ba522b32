"""Canary rollouts judged on a real Prometheus with deterministic series (TSDB blocks): the
operator promotes a good canary through every step, rolls back a failing one at its first
analysis, holds an inconclusive one, adds a sparse one's windows up in status until they pass,
and compares latency relative to the stable version.
"""

from __future__ import annotations

from typing import Any

from tests.fixtures import prometheus as prometheus_fixtures
from tests.integration.conftest import wait_for
from tests.integration.promseries import Series
from tests.integration.serving_support import (
    DIGEST_A,
    DIGEST_B,
    create_service,
    deployment,
    patch_spec,
    ready_model,
    report_healthy,
    router_weights,
    serve_config,
    serve_ready,
)
from tests.integration.support import events_for, status_of

from drover.api.versions import version_id

prometheus = prometheus_fixtures.prometheus  # the session's block-fed Prometheus

SVC = "assistant"
A, B = version_id(DIGEST_A), version_id(DIGEST_B)
STEPS = [{"weight": 10, "pauseSeconds": 0}, {"weight": 50, "pauseSeconds": 0}]


def rollout_spec(*metrics: dict[str, Any], min_requests: int = 20) -> dict[str, Any]:
    return {
        "steps": STEPS,
        "warmup": {"requests": 0},
        "analysis": {
            "intervalSeconds": 10,
            "failureLimit": 0,
            "minRequests": min_requests,
            "onInconclusive": "hold",
            "metrics": list(metrics),
        },
    }


ERRORS = {"name": "errorRate", "max": 0.05}
LATENCY = {"name": "latencyP95", "maxRelativeToStable": 1.5}


def start_canary(
    api: Any,
    ns: str,
    start_operator: Any,
    dashboard: Any,
    prometheus: Any,
    spec: dict[str, Any],
    **canary: Any,
) -> None:
    """Serve tiny-llama (digest A), load the series (stable: 20 req/s at 0.2 s, no errors; the
    canary as given), switch spec.model to tiny-llama-v2 (digest B) and report it healthy."""
    start_operator(prometheus_url=prometheus.url)
    ready_model(api, ns, "tiny-llama", dashboard, DIGEST_A)
    ready_model(api, ns, "tiny-llama-v2", dashboard, DIGEST_B)
    create_service(api, ns, SVC, rollout=spec)
    serve_ready(api, ns, SVC, DIGEST_A)
    series = Series()
    series.requests(SVC, ns, DIGEST_A, rate=20, latency=0.2, itl=0.015)
    series.requests(SVC, ns, DIGEST_B, **canary)
    prometheus.load(series.text())
    patch_spec(api, ns, SVC, {"model": {"name": "tiny-llama-v2"}})
    wait_for("the canary deployment", lambda: deployment(serve_config(api, ns, SVC), DIGEST_B))
    report_healthy(api, ns, SVC, [DIGEST_A, DIGEST_B])


def rollout(api: Any, ns: str) -> dict[str, Any]:
    return dict(status_of(api, "inferenceservices", ns, SVC).get("rollout") or {})


def settled(api: Any, ns: str, phase: str) -> dict[str, Any]:
    return dict(
        wait_for(
            f"rollout phase {phase}",
            lambda: (r := rollout(api, ns)).get("phase") == phase and r,
            timeout=90,
        )
    )


def weights(api: Any, ns: str) -> dict[str, int]:
    return router_weights(serve_config(api, ns, SVC))


def step_events(api: Any, ns: str) -> list[str]:
    return sorted(e for e in events_for(api, ns, SVC) if e.startswith("RolloutStep:"))


def assert_rolled_back(api: Any, ns: str, done: dict[str, Any]) -> None:
    """Weight 0 for the canary at once: gone from the router and the Serve config."""
    wait_for("the router back at 100% stable", lambda: weights(api, ns) == {A: 100})
    assert deployment(serve_config(api, ns, SVC), DIGEST_B) is None
    assert done["rejected"][-1]["digest"] == DIGEST_B
    assert done["rejected"][-1]["model"] == "tiny-llama-v2"
    assert done["history"][-1]["result"] == "RolledBack"
    assert done["failures"] == 1
    status = status_of(api, "inferenceservices", ns, SVC)
    assert status["stable"]["digest"] == DIGEST_A and not status.get("canary")
    # The first analysis decided: the second step was never reached.
    assert [e.split(":", 2)[1].strip() for e in step_events(api, ns)] == ["step 1/2"]


def test_a_good_canary_is_promoted_through_every_step(
    k8s_api, namespace, start_operator, dashboard, prometheus
) -> None:
    spec = rollout_spec(ERRORS, LATENCY)
    start_canary(
        k8s_api, namespace, start_operator, dashboard, prometheus, spec, rate=5, latency=0.2
    )
    wait_for("step 1 at 10%", lambda: weights(k8s_api, namespace) == {A: 90, B: 10})
    wait_for("step 2 at 50%", lambda: weights(k8s_api, namespace) == {A: 50, B: 50})
    # The old stable leaves the router (weight 0) one reconcile before its application goes: a
    # request routed to a deleted application would never be answered.
    wait_for(
        "the old stable draining at weight 0",
        lambda: (
            weights(k8s_api, namespace) == {A: 0, B: 100}
            and deployment(serve_config(k8s_api, namespace, SVC), DIGEST_A) is not None
        ),
        interval=0.1,
    )
    done = settled(k8s_api, namespace, "Promoted")
    assert done["history"][-1]["result"] == "Promoted"
    assert done["history"][-1]["reason"] == "every step's analysis successful"
    assert {r["metric"]: r["verdict"] for r in done["analysis"]} == {
        "errorRate": "Successful",
        "latencyP95": "Successful",
    }
    latency = next(r for r in done["analysis"] if r["metric"] == "latencyP95")
    assert abs(latency["value"] - 0.2425) < 1e-6  # p95 interpolated in the (0.1, 0.25] bucket
    assert abs(latency["threshold"] - 1.5 * 0.2425) < 1e-6
    wait_for("the router at 100% canary", lambda: weights(k8s_api, namespace) == {B: 100})
    assert deployment(serve_config(k8s_api, namespace, SVC), DIGEST_A) is None
    status = status_of(k8s_api, "inferenceservices", namespace, SVC)
    assert status["stable"]["digest"] == DIGEST_B and status["stable"]["weight"] == 100
    assert len(step_events(k8s_api, namespace)) == 2
    assert any(e.startswith("RolloutPromoted:") for e in events_for(k8s_api, namespace, SVC))


def test_a_canary_failing_20_percent_is_rolled_back_at_the_first_analysis(
    k8s_api, namespace, start_operator, dashboard, prometheus
) -> None:
    spec = rollout_spec(ERRORS, LATENCY)
    start_canary(
        k8s_api, namespace, start_operator, dashboard, prometheus, spec, rate=5, error_rate=0.2
    )
    done = settled(k8s_api, namespace, "RolledBack")
    assert "errorRate 0.2 > max 0.05" in done["reason"]
    assert "errorRate 0.2 > max 0.05" in done["rejected"][-1]["reason"]
    errors = next(r for r in done["analysis"] if r["metric"] == "errorRate")
    assert errors["verdict"] == "Failed" and abs(errors["value"] - 0.2) < 1e-9
    assert_rolled_back(k8s_api, namespace, done)
    assert any(e.startswith("RolloutRolledBack:") for e in events_for(k8s_api, namespace, SVC))


def test_a_canary_with_too_few_requests_is_inconclusive_and_held(
    k8s_api, namespace, start_operator, dashboard, prometheus
) -> None:
    spec = rollout_spec(ERRORS, min_requests=50)
    start_canary(k8s_api, namespace, start_operator, dashboard, prometheus, spec, rate=1)
    held = wait_for(
        "two inconclusive analyses",
        lambda: (r := rollout(k8s_api, namespace)).get("inconclusives", 0) >= 2 and r,
        timeout=90,
    )
    assert held["phase"] in ("Step", "Analysing") and held["step"] == 0
    assert held["failures"] == 0 and not held.get("rejected")
    result = held["analysis"][0]
    assert result["verdict"] == "Inconclusive" and "need 50 (minRequests)" in result["message"]
    assert result["samples"] < 50
    assert weights(k8s_api, namespace) == {A: 90, B: 10}  # held at step 1's weight
    assert len(step_events(k8s_api, namespace)) == 1


def test_a_canary_slower_than_the_relative_latency_threshold_is_rolled_back(
    k8s_api, namespace, start_operator, dashboard, prometheus
) -> None:
    spec = rollout_spec(ERRORS, LATENCY)
    start_canary(
        k8s_api, namespace, start_operator, dashboard, prometheus, spec, rate=5, latency=1.0
    )
    done = settled(k8s_api, namespace, "RolledBack")
    # Canary p95 0.975 s (all requests in the (0.5, 1] bucket) vs stable 0.2425 s.
    assert "latencyP95 0.975 > 1.5 x stable 0.2425 = 0.3638" in done["reason"]
    verdicts = {r["metric"]: r["verdict"] for r in done["analysis"]}
    assert verdicts == {"errorRate": "Successful", "latencyP95": "Failed"}
    assert_rolled_back(k8s_api, namespace, done)


def test_a_canary_with_slower_token_streams_is_rolled_back_on_inter_token_latency(
    k8s_api, namespace, start_operator, dashboard, prometheus
) -> None:
    itl = {"name": "itlP95", "maxRelativeToStable": 1.5}
    spec = rollout_spec(ERRORS, itl)
    start_canary(k8s_api, namespace, start_operator, dashboard, prometheus, spec, rate=5, itl=0.06)
    done = settled(k8s_api, namespace, "RolledBack")
    # Canary p95 0.078 s (its (0.04, 0.08] bucket) vs stable 0.0195 s ((0.01, 0.02]).
    assert "itlP95 0.078 > 1.5 x stable 0.0195 = 0.02925" in done["reason"], done["reason"]
    verdicts = {r["metric"]: r["verdict"] for r in done["analysis"]}
    assert verdicts == {"errorRate": "Successful", "itlP95": "Failed"}
    assert_rolled_back(k8s_api, namespace, done)


def test_a_sparse_canary_is_held_until_its_windows_add_up_to_a_pass(
    k8s_api, namespace, start_operator, dashboard, prometheus
) -> None:
    # 1 request/s to the canary, 10 s windows: one window (~10 requests) is too little for
    # errorRate max 0.05 to pass; the evidence in status adds up over the windows until it does.
    spec = rollout_spec(ERRORS, min_requests=5)
    start_canary(k8s_api, namespace, start_operator, dashboard, prometheus, spec, rate=1)
    held = wait_for(
        "a first analysis that holds",
        lambda: (r := rollout(k8s_api, namespace)).get("inconclusives", 0) >= 1 and r,
        timeout=90,
    )
    first = held["analysis"][0]
    assert first["verdict"] == "Inconclusive" and "not yet" in first["message"]
    assert held["failures"] == 0 and held["step"] == 0
    done = settled(k8s_api, namespace, "Promoted")
    evidence = done["evidence"]["errorRate"]
    assert evidence["windows"] >= 2 and evidence["canarySamples"] >= 19
    assert evidence["logLikelihoodRatio"] <= evidence["acceptAt"]
    assert evidence["canaryEvents"] == 0 and evidence["h0"] == 0.05 and evidence["h1"] == 0.25
    assert done["history"][-1]["result"] == "Promoted" and not done.get("rejected")

"""Serving readiness through Ray Serve's scaling statuses, and replica counts from Prometheus.

Ray Serve's `DeploymentStatus` (ray/serve/_private/common.py, Ray 2.60) has six values: UPDATING,
HEALTHY, UNHEALTHY, DEPLOY_FAILED, UPSCALING and DOWNSCALING. With a fixed `num_replicas` (what
Drover writes), `DeploymentStatusInfo.handle_transition` enters UPSCALING / DOWNSCALING only from
HEALTHY (MANUALLY_INCREASE/DECREASE_NUM_REPLICAS) or from scaling, and the application meanwhile
reports DEPLOYING (`ApplicationState._determine_app_status`: a scaling status triggered by a
config update ranks with UPDATING). The running replicas serve throughout. KubeRay v1.7.0 copies
each deployment's status string verbatim into `serveDeploymentStatuses`
(rayservice_controller.go, `getAndCheckServeStatus`), so Drover sees these exact strings.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ray.serve._private.common import DeploymentStatus

from drover.api.autoscaling import AutoscalingSpec
from drover.api.rollout import ServedVersion
from drover.api.versions import version_id
from drover.policy.autoscale import decide_replicas
from drover.policy.load import LoadSnapshot
from drover.policy.serving import (
    SERVING_STATUSES,
    decide_serving,
    ready_replicas,
    replica_status,
    serves,
)
from drover.policy.versions import served_with_health

T0 = datetime(2026, 11, 22, 8, 0, 0, tzinfo=UTC)
DIGEST = "sha256:" + "a" * 64


def rayservice(app_status: str, model_status: str) -> dict:
    """KubeRay's status of service `svc` (router app `svc`, stable app `svc-v1`) once Ready."""
    return {
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "activeServiceStatus": {
                "applicationStatuses": {
                    "svc": {
                        "status": "RUNNING",
                        "serveDeploymentStatuses": {"router": {"status": "HEALTHY"}},
                    },
                    "svc-v1": {
                        "status": app_status,
                        "serveDeploymentStatuses": {"model": {"status": model_status}},
                    },
                }
            },
        }
    }


# Every value of Ray's enum, with whether a deployment in it answers requests.
SERVING = {
    DeploymentStatus.HEALTHY: True,
    DeploymentStatus.UPSCALING: True,
    DeploymentStatus.DOWNSCALING: True,
    DeploymentStatus.UPDATING: False,
    DeploymentStatus.UNHEALTHY: False,
    DeploymentStatus.DEPLOY_FAILED: False,
}


def test_the_table_covers_every_value_of_rays_deployment_status() -> None:
    assert set(SERVING) == set(DeploymentStatus)
    assert {s.value for s, ok in SERVING.items() if ok} == SERVING_STATUSES


@pytest.mark.parametrize(("status", "expected"), list(SERVING.items()), ids=lambda s: str(s))
def test_a_deployment_serves_only_in_a_serving_status(status, expected) -> None:
    assert serves(status.value) is expected


@pytest.mark.parametrize(
    ("app_status", "model_status", "ready"),
    [
        ("RUNNING", "HEALTHY", True),
        # A num_replicas change: the application DEPLOYING, the deployment scaling.
        ("DEPLOYING", "UPSCALING", True),
        ("DEPLOYING", "DOWNSCALING", True),
        # Serve's own autoscaling ranks with HEALTHY: the application stays RUNNING.
        ("RUNNING", "UPSCALING", True),
        ("DEPLOYING", "UPDATING", None),
        ("UNHEALTHY", "UNHEALTHY", False),
        ("DEPLOY_FAILED", "DEPLOY_FAILED", False),
    ],
)
def test_scaling_keeps_serving_ready(app_status, model_status, ready) -> None:
    cond = decide_serving(rayservice(app_status, model_status), "svc", "svc-v1")
    assert cond.status is ready
    if ready:
        assert cond.reason == "Serving"


def test_the_ready_message_says_the_stable_version_is_scaling() -> None:
    cond = decide_serving(rayservice("DEPLOYING", "UPSCALING"), "svc", "svc-v1")
    assert cond.message == "Serve applications svc, svc-v1 run (svc-v1 UPSCALING)"


@pytest.mark.parametrize(("status", "expected"), [(s.value, ok) for s, ok in SERVING.items()])
def test_a_version_is_ready_while_its_deployment_scales(status, expected) -> None:
    raw = ServedVersion(model="m", digest=DIGEST, weight=100).to_wire()
    version = served_with_health(raw, {version_id(DIGEST): status})
    assert version is not None and version.ready is expected


# --- replica counts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("healthy", "expected"),
    [
        (None, None),  # Prometheus could not be asked
        ({}, None),  # no series for the application: unknown, not 0
        ({"svc-v1": 0.0}, 0),
        ({"svc-v1": 3.0}, 3),
        ({"svc-other": 3.0}, None),
    ],
)
def test_ready_replicas_come_from_prometheus_or_are_unknown(healthy, expected) -> None:
    assert ready_replicas("svc-v1", healthy) == expected


@pytest.mark.parametrize(
    ("live", "healthy", "wire"),
    [
        ([("svc-v1", 4)], {"svc-v1": 2.0}, {"desired": 4, "current": 4, "ready": 2}),
        ([("svc-v1", 4)], None, {"desired": 4, "current": 4}),
        ([("svc-v1", 4)], {}, {"desired": 4, "current": 4}),
        # A canary on its own application adds its replicas.
        (
            [("svc-v1", 4), ("svc-v2", 1)],
            {"svc-v1": 4.0, "svc-v2": 1.0},
            {"desired": 5, "current": 5, "ready": 5},
        ),
        # One application unknown: the sum is unknown too.
        ([("svc-v1", 4), ("svc-v2", 1)], {"svc-v1": 4.0}, {"desired": 5, "current": 5}),
        # A LoRA canary on its base's engine shares that application's replicas.
        ([("svc-v1", 4), ("svc-v1", 1)], {"svc-v1": 3.0}, {"desired": 4, "current": 4, "ready": 3}),
        ([], {}, {"desired": 0, "current": 0, "ready": 0}),
    ],
)
def test_status_replicas_count_each_application_once(live, healthy, wire) -> None:
    assert replica_status(live, healthy).to_wire() == wire


# --- the autoscaler with a real or an unknown ready count ---------------------------------------

SPEC = AutoscalingSpec.model_validate(
    {
        "signal": "inFlightRequests",
        "target": 10,
        "scaleUp": {"stabilizationSeconds": 0, "maxStepPercent": 100, "periodSeconds": 60},
    }
)


def scale_up(ready: int | None) -> tuple[int, str]:
    load = LoadSnapshot(SPEC.signal, None, 4, ready, T0, total=200.0)
    decision = decide_replicas(load, SPEC, (1, 32), None, T0)
    return decision.desired_replicas, decision.reason


def test_a_scale_up_steps_from_the_replicas_serve_counts_ready() -> None:
    desired, reason = scale_up(2)
    assert desired == 6  # the step limit counts from the 2 ready, not from the 4 ordered
    assert reason.endswith("(limited from 20: 2 replicas still starting, scaleUp allows 6)")


def test_an_unknown_ready_count_is_not_taken_for_zero_or_for_the_order() -> None:
    # HPA's rule alone: 100% of the 4 ordered.
    assert scale_up(None)[0] == 8
    assert scale_up(4)[0] == 8


def test_a_per_replica_value_without_a_total_uses_the_order_when_ready_is_unknown() -> None:
    load = LoadSnapshot(SPEC.signal, 10.0, 4, None, T0)
    decision = decide_replicas(load, SPEC, (1, 32), None, T0)
    assert decision.desired_replicas == 4 and decision.reason.startswith("holding 4 replicas")


def test_the_router_is_current_only_for_this_generation_and_running() -> None:
    from drover.policy.serving import router_current

    def rs(generation: int, observed: int, app_status: str) -> dict:
        return {
            "metadata": {"generation": generation},
            "status": {
                "observedGeneration": observed,
                "activeServiceStatus": {"applicationStatuses": {"chat": {"status": app_status}}},
            },
        }

    assert router_current(rs(3, 3, "RUNNING"), "chat")
    assert not router_current(rs(4, 3, "RUNNING"), "chat")  # status predates the spec
    assert not router_current(rs(4, 4, "DEPLOYING"), "chat")  # Serve applying the config
    assert not router_current(None, "chat")


@pytest.mark.parametrize("status", list(DeploymentStatus))
def test_an_update_keeps_a_serving_deployment_in_service_and_nothing_else(status) -> None:
    # Serve reconfigures running replicas in place for a user_config change and replaces
    # replicas of a new version while the old ones serve (ray/serve/_private/deployment_state.py);
    # a deployment that never served is UPDATING while its first replicas start.
    expected = SERVING[status] or status is DeploymentStatus.UPDATING
    assert serves(status.value, was_serving=True) is expected
    assert serves(status.value) is SERVING[status]


def test_serving_ready_survives_the_router_applying_new_weights() -> None:
    updating = rayservice("DEPLOYING", "HEALTHY")
    router = updating["status"]["activeServiceStatus"]["applicationStatuses"]["svc"]
    router["serveDeploymentStatuses"]["router"]["status"] = "UPDATING"
    assert decide_serving(updating, "svc", "svc-v1").status is None  # not serving yet
    assert decide_serving(updating, "svc", "svc-v1", was_serving=True).status is True


def test_a_ready_version_stays_ready_while_serve_updates_it() -> None:
    raw = {"model": "m", "digest": "sha256:" + "ab" * 32, "ready": True}
    vid = version_id(raw["digest"])
    assert served_with_health(raw, {vid: "UPDATING"}).ready is True
    assert served_with_health({**raw, "ready": False}, {vid: "UPDATING"}).ready is False
    assert served_with_health(raw, {vid: "UNHEALTHY"}).ready is False

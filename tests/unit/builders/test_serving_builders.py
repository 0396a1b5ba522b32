"""Builders of serving: the RayService (golden, KubeRay schema) and its Serve config: the router
and one application per version, weights, replicas, faults and replica routing."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest
import yaml
from tests.unit.builders.conftest import (
    READY_BASE,
    assert_golden,
    kuberay_validator,
    load,
)

from drover.builders.meta import stamp
from drover.builders.placement import resolve_placement
from drover.builders.serving import build_rayservice, serve_config_of
from drover.builders.serving_plans import IndexPlan, VersionPlan


def _errors(validator: Any, manifest: dict[str, Any]) -> list[str]:
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(manifest)
    ]


def _pods(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    return [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, **g["template"]}
        for g in groups
    ]


def _plans() -> list[VersionPlan]:
    return [
        VersionPlan(
            model="tiny-llama",
            digest=READY_BASE["digest"],
            claim="tiny-llama-cache",
            path="tiny-llama/abababababab",
            weight=80,
            replicas=2,
        ),
        VersionPlan(
            model="tiny-llama-support",
            digest="sha256:" + "ef" * 32,
            claim="tiny-llama-cache",
            path="tiny-llama-support/efefefefefef",
            weight=20,
            replicas=1,
        ),
    ]


INDEX = IndexPlan(
    claim="handbook-index",
    path="handbook/v1",
    embedder_claim="minilm-cache",
    embedder_path="minilm/cdcdcdcdcdcd",
)


def test_rayservice_matches_golden_and_kuberay_schema(service, config) -> None:
    placement = resolve_placement(None, config.accelerator_classes, field="f")
    rs = stamp(
        build_rayservice(service, _plans(), INDEX, placement=placement, image="x"),
        load("04-service.yaml"),
    )
    assert_golden("rayservice", rs)
    assert _errors(kuberay_validator("rayservices"), rs) == []
    for pod in _pods(rs["spec"]["rayClusterConfig"]):
        kubernetes_validate.validate(pod, "1.30", strict=True)


def _serve_config(service, config, plans, index=INDEX) -> dict[str, Any]:
    placement = resolve_placement(None, config.accelerator_classes, field="f")
    return serve_config_of(build_rayservice(service, plans, index, placement=placement, image="x"))


def test_serve_args_are_accepted_by_the_serving_apps(service, config) -> None:
    from drover_workers.serve.config import (
        parse_model_args,
        parse_router_args,
        parse_router_user_config,
    )

    router_app, *version_apps = _serve_config(service, config, _plans())["applications"]
    assert router_app["name"] == service.name
    assert router_app["import_path"] == "drover_workers.serve.app:build_router"
    parse_router_args(router_app["args"])
    (router,) = router_app["deployments"]
    user_config = parse_router_user_config(router["user_config"])
    assert user_config.versions == [p.id for p in _plans()]
    assert user_config.weights == {_plans()[0].id: 80, _plans()[1].id: 20}
    for plan, app in zip(_plans(), version_apps, strict=True):
        assert app["name"] == f"{service.name}-{plan.id}"
        assert app["route_prefix"] is None  # reached only through the router's handles
        assert app["import_path"] == "drover_workers.serve.app:build_model"
        assert parse_model_args(app["args"]).version.name == plan.id
        assert [(d["name"], d["num_replicas"]) for d in app["deployments"]] == [
            ("model", plan.replicas)
        ]


def test_adding_a_canary_changes_neither_the_router_args_nor_the_stable_app(
    service, config
) -> None:
    stable, canary = _plans()
    alone = _serve_config(service, config, [VersionPlan(**{**stable.__dict__, "weight": 100})])
    both = _serve_config(service, config, [stable, canary])
    assert both["applications"][0]["args"] == alone["applications"][0]["args"]
    assert both["applications"][1] == alone["applications"][1]  # Serve leaves its replicas
    assert [a["name"] for a in both["applications"]] == [
        service.name,
        f"{service.name}-{stable.id}",
        f"{service.name}-{canary.id}",
    ]


def test_weights_and_replicas_change_only_the_serve_config(service, config) -> None:
    placement = resolve_placement(None, config.accelerator_classes, field="f")
    before = build_rayservice(service, _plans(), INDEX, placement=placement, image="x")
    shifted = [
        p.__class__(**{**p.__dict__, "weight": 100 - p.weight, "replicas": 3}) for p in _plans()
    ]
    after = build_rayservice(service, shifted, INDEX, placement=placement, image="x")
    assert after["spec"]["rayClusterConfig"] == before["spec"]["rayClusterConfig"]
    assert after["spec"]["serveConfigV2"] != before["spec"]["serveConfigV2"]


def test_version_id_depends_on_the_weights_only() -> None:
    a, b = _plans()
    assert a.id == copy.replace(a, weight=1, replicas=9).id if hasattr(copy, "replace") else True
    assert a.id != b.id
    assert a.id == VersionPlan(model="other", digest=a.digest, claim="c", path="p").id
    assert yaml.safe_load(yaml.safe_dump({"x": a.app("svc")}))["x"].startswith("svc-v")


def test_injected_faults_reach_only_their_version_in_place(service, config) -> None:
    from drover_workers.serve.config import parse_model_args, parse_model_user_config

    good, bad = _plans()
    bad = VersionPlan(**{**bad.__dict__, "faults": {"errorRate": 0.2, "startupDelaySeconds": 5}})
    apps = _serve_config(service, config, [good, bad], None)["applications"]
    by_name = {a["name"]: a for a in apps[1:]}
    good_app, bad_app = by_name[good.app(service.name)], by_name[bad.app(service.name)]
    assert "user_config" not in good_app["deployments"][0]
    assert parse_model_args(good_app["args"]).faults is None
    # Error rate and latency change in place (user_config); only the start-up delay is an arg.
    in_place = parse_model_user_config(bad_app["deployments"][0]["user_config"]).faults
    assert in_place is not None and in_place.error_rate == 0.2
    args_faults = parse_model_args(bad_app["args"]).faults
    assert args_faults is not None and args_faults.error_rate == 0
    assert args_faults.startup_delay_seconds == 5


def test_the_router_holds_requests_at_zero_only_when_scale_to_zero_is_on() -> None:
    from drover.api import InferenceService
    from drover.builders.serving import build_router_args
    from drover_workers.serve.config import RouterArgs

    doc = load("04-service.yaml")
    assert (
        "holdSeconds"
        not in build_router_args(InferenceService.model_validate(doc), None)["runtime"]
    )
    doc["spec"]["autoscaling"] = {"target": 4, "scaleToZero": {"enabled": True, "holdSeconds": 90}}
    args = build_router_args(InferenceService.model_validate(doc), None)
    assert args["runtime"]["holdSeconds"] == 90
    assert RouterArgs.model_validate(args).runtime.hold_seconds == 90


@pytest.mark.parametrize(
    ("routing", "router_class"),
    [
        ("prefix-aware", "drover_workers.serve.replica_router:PrefixAffinityRouter"),
        (
            "power-of-two-choices",
            "ray.serve._private.request_router:PowerOfTwoChoicesRequestRouter",
        ),
    ],
)
def test_replica_routing_names_the_serve_request_router_for_the_engines_and_the_router(
    service, config, routing: str, router_class: str
) -> None:
    """The class path must be one Ray Serve imports (ray/serve/config.py,
    RequestRouterConfig._serialize_request_router_cls); the router's args carry the choice
    because its handles keep the request router they were built with
    (ray/serve/_private/router.py, update_deployment_config)."""
    from ray.serve.config import RequestRouterConfig

    from drover.api import InferenceService
    from drover_workers.serve.config import RouterArgs

    doc = copy.deepcopy(load("04-service.yaml"))
    doc["spec"].setdefault("runtime", {})["replicaRouting"] = routing
    chosen = _serve_config(InferenceService.model_validate(doc), config, _plans())
    default = _serve_config(service, config, _plans())
    router_app, *version_apps = chosen["applications"]
    assert RouterArgs.model_validate(router_app["args"]).runtime.replica_routing == routing
    for plan, app in zip(_plans(), version_apps, strict=True):
        (deployment,) = app["deployments"]
        rrc = deployment["request_router_config"]
        assert rrc["request_router_class"] == router_class
        assert (
            RequestRouterConfig(**rrc).get_request_router_class().__name__
            == router_class.split(":")[1]
        )
        if routing == "prefix-aware":
            assert rrc["request_router_kwargs"]["version"] == plan.id
    # The engines' args stay (Serve restarts them anyway: it hashes request_router_config into
    # the application's code version, ray/serve/_private/deploy_utils.py get_app_code_version);
    # the router's args carry the choice, so its new handles build the new request router.
    assert [a["args"] for a in version_apps] == [a["args"] for a in default["applications"][1:]]
    assert (router_app["args"] == default["applications"][0]["args"]) == (routing == "prefix-aware")

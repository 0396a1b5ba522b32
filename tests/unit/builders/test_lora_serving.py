"""Builders: LoRA versions run on their base version's engine (one Serve application per set of
base weights), so a LoRA canary adds no application and no replica."""

from __future__ import annotations

from typing import Any

from tests.unit.builders.test_serving_builders import _plans, _serve_config

from drover.builders.serving import engine_routes
from drover.builders.serving_plans import VersionPlan
from drover.policy.serving import version_statuses


def _lora_canary(base: VersionPlan, **extra: Any) -> VersionPlan:
    return VersionPlan(
        **{
            **base.__dict__,
            "model": f"{base.model}+support-lora",
            "adapter_claim": "support-lora-cache",
            "adapter_path": "support-lora/cdcdcdcdcdcd",
            "adapter_digest": "sha256:" + "cd" * 32,
            "weight": 10,
            "replicas": 1,
            **extra,
        }
    )


def test_a_lora_canary_runs_on_the_stable_versions_engine_and_adds_no_application(
    service, config
) -> None:
    from drover_workers.serve.config import (
        parse_model_args,
        parse_model_user_config,
        parse_router_user_config,
    )

    stable = VersionPlan(**{**_plans()[0].__dict__, "weight": 90})
    canary = _lora_canary(stable, faults={"errorRate": 0.2})
    alone = _serve_config(service, config, [VersionPlan(**{**stable.__dict__, "weight": 100})])
    both = _serve_config(service, config, [stable, canary])
    router_app, engine_app = both["applications"]  # no application of the canary's own
    assert canary.id != stable.id and canary.app(service.name) == stable.app(service.name)
    # Same args: Serve keeps the stable replicas; the adapter arrives through user_config.
    assert engine_app["args"] == alone["applications"][1]["args"]
    assert parse_model_args(engine_app["args"]).version.name == stable.id
    (deployment,) = engine_app["deployments"]
    assert deployment["num_replicas"] == stable.replicas  # the canary adds no replica
    engine_config = parse_model_user_config(deployment["user_config"])
    assert engine_config.faults is not None and engine_config.faults.error_rate == 0
    adapter = engine_config.adapters[canary.id]
    assert adapter.adapter_path.endswith("/support-lora/cdcdcdcdcdcd")
    assert adapter.faults is not None and adapter.faults.error_rate == 0.2
    routes = parse_router_user_config(router_app["deployments"][0]["user_config"]).routes
    assert routes[canary.id].engine == stable.id
    assert engine_routes(both, service.name) == {canary.id: stable.id}


def test_a_promoted_lora_version_keeps_its_base_engine_when_the_base_leaves(
    service, config
) -> None:
    stable = _plans()[0]
    promoted = _lora_canary(stable, weight=100, replicas=2)
    before = _serve_config(service, config, [stable, _lora_canary(stable)])
    after = _serve_config(service, config, [promoted])
    assert [a["name"] for a in after["applications"]] == [a["name"] for a in before["applications"]]
    assert after["applications"][1]["args"] == before["applications"][1]["args"]


def test_lora_versions_borrow_their_engines_status() -> None:
    rayservice = {
        "status": {
            "activeServiceStatus": {
                "applicationStatuses": {
                    "bot-vbase": {"serveDeploymentStatuses": {"model": {"status": "HEALTHY"}}},
                    "bot": {"serveDeploymentStatuses": {"router": {"status": "HEALTHY"}}},
                }
            }
        }
    }
    assert version_statuses(rayservice, "bot", {"vlora": "vbase", "vgone": "vmissing"}) == {
        "vbase": "HEALTHY",
        "vlora": "HEALTHY",
    }

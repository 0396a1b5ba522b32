"""The chart's ConfigMap is what `drover.config.load_config` reads: the two cannot drift."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_support import ALL_ON, CHART_DIR, DIGEST, NAMESPACED, by_kind, one
from pydantic import BaseModel

from drover.config import (
    AcceleratorClass,
    OperatorConfig,
    OperatorRuntime,
    PrometheusConfig,
    ReconcileTiming,
    ServingConfig,
    Toleration,
)
from drover.config_loader import load_config
from drover.images import ImagesConfig

SCHEMA = json.loads((CHART_DIR / "values.schema.json").read_text())


def config_map(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(d for d in by_kind(docs, "ConfigMap") if "config.yaml" in d.get("data", {}))


def load_rendered(docs: list[dict[str, Any]], tmp_path: Path) -> OperatorConfig:
    path = tmp_path / "config.yaml"
    path.write_text(config_map(docs)["data"]["config.yaml"])
    return load_config(str(path), {})


def test_default_chart_config_equals_the_model_defaults(render, tmp_path) -> None:
    assert load_rendered(render(None), tmp_path) == OperatorConfig()


def test_secret_checks_follow_the_rbac_grant(render, tmp_path) -> None:
    assert load_rendered(render({"rbac": {"readSecrets": True}}), tmp_path).operator.read_secrets
    assert not load_rendered(render(None), tmp_path).operator.read_secrets


@pytest.mark.parametrize("values", [ALL_ON, NAMESPACED], ids=["all-features", "namespaced"])
def test_configured_chart_config_loads_with_every_value(render, tmp_path, values) -> None:
    config = load_rendered(render(values), tmp_path)
    assert set(config.accelerator_classes) == {"cpu", "nvidia-l4", "nvidia-a100-80gb"}
    l4 = config.accelerator_classes["nvidia-l4"]
    assert l4.resource_name == "nvidia.com/gpu"
    assert l4.memory_gib == 24
    assert l4.node_selector == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert l4.tolerations[0].operator == "Exists"
    assert config.accelerator_classes["cpu"].is_cpu
    assert config.prometheus.url == "https://prometheus.monitoring.svc:9091"
    assert config.prometheus.timeout_seconds == 3
    assert config.images.workers.reference == "registry.example.com/drover/workers:0.1.0"
    assert config.images.workers_cpu.reference == f"registry.example.com/drover/workers@{DIGEST}"
    assert config.images.pull_policy == "Always"
    a100 = config.accelerator_classes["nvidia-a100-80gb"]
    assert config.images.for_class(a100) == "registry.example.com/drover/workers-a100:1"
    assert config.images.for_class(l4) == "registry.example.com/drover/workers:0.1.0"
    assert config.serving.route_prefix == "/llm"
    assert config.reconcile.autoscale_interval_seconds == 30
    assert config.operator.peering_priority is None  # each replica picks its own
    assert config.operator.peering_name == "drover-peers"
    assert config.watch_namespaces == values.get("watchNamespaces", [])
    assert config.clusterwide is (not values.get("watchNamespaces"))


def test_deployment_points_the_operator_at_the_mounted_config(render, tmp_path) -> None:
    docs = render({"operator": {"healthPort": 9000, "metricsPort": 9001}})
    config = load_rendered(docs, tmp_path)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    assert env["DROVER_CONFIG"] == f"{mount['mountPath']}/config.yaml"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": config.operator.health_port, "metrics": config.operator.metrics_port}
    assert config.operator.liveness_endpoint == "http://0.0.0.0:9000/healthz"
    service = one(docs, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"


def test_config_change_changes_the_pod_checksum(render) -> None:
    def checksum(values: dict[str, Any] | None) -> str:
        pod = one(render(values), "Deployment")["spec"]["template"]
        return pod["metadata"]["annotations"]["checksum/config"]

    base = checksum(None)
    assert checksum(None) == base
    assert checksum({"config": {"prometheus": {"url": "http://prom:9090"}}}) != base
    assert checksum({"watchNamespaces": ["a"]}) != base


def aliases(model: type[BaseModel]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


def schema_keys(*path: str) -> set[str]:
    node = SCHEMA
    for key in path:
        node = node["properties"][key] if key != "*" else node["additionalProperties"]
    return set(node["properties"])


@pytest.mark.parametrize(
    ("path", "model"),
    [
        (("config", "prometheus"), PrometheusConfig),
        (("config", "images"), ImagesConfig),
        (("config", "serving"), ServingConfig),
        (("config", "reconcile"), ReconcileTiming),
        (("config", "acceleratorClasses", "*"), AcceleratorClass),
    ],
)
def test_values_schema_sections_have_the_model_fields(path, model) -> None:
    assert schema_keys(*path) == aliases(model)


def test_values_schema_covers_every_config_key() -> None:
    top = aliases(OperatorConfig) - {"watchNamespaces", "operator"}
    assert schema_keys("config") == top
    assert "watchNamespaces" in SCHEMA["properties"]
    # The chart's operator section adds container-only knobs (extraArgs, extraEnv).
    # readSecrets follows rbac.readSecrets: the grant and the check are one switch.
    assert aliases(OperatorRuntime) - {"readSecrets"} <= schema_keys("operator")
    assert "readSecrets" in schema_keys("rbac")
    toleration = SCHEMA["properties"]["config"]["properties"]["acceleratorClasses"][
        "additionalProperties"
    ]["properties"]["tolerations"]["items"]
    assert set(toleration["properties"]) == aliases(Toleration)


def test_values_yaml_config_defaults_equal_the_model_defaults() -> None:
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    defaults = OperatorConfig().to_wire()
    # `images` leaves its tags empty for the chart to fill in from appVersion: the default
    # render's equality with OperatorConfig() above covers it.
    for section in ("prometheus", "serving", "reconcile"):
        assert (
            OperatorConfig.model_validate({section: values["config"][section]}).to_wire()[section]
            == defaults[section]
        ), section
    assert values["operator"]["healthPort"] == defaults["operator"]["healthPort"]
    assert values["operator"]["metricsPort"] == defaults["operator"]["metricsPort"]

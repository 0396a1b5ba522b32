"""The chart renders through Helm's Go SDK: defaults, every feature on, and namespaced mode."""

from __future__ import annotations

import json
from pathlib import Path

import helm_python as helm
import pytest
import yaml
from chart_support import ALL_ON, CHART_DIR, NAMESPACE, NAMESPACED, RELEASE, WATCHED, by_kind, one

CORE_KINDS = {"ServiceAccount", "ConfigMap", "ClusterRole", "ClusterRoleBinding", "Service"}


def test_chart_metadata_is_v2_with_app_version(chart: helm.Chart) -> None:
    meta = chart.metadata
    assert meta["apiVersion"] == "v2"
    assert meta["name"] == "drover"
    assert meta["appVersion"] == "0.1.0"


def test_default_render_has_the_operator_and_no_optional_objects(render) -> None:
    docs = render(None)
    kinds = {doc["kind"] for doc in docs}
    assert CORE_KINDS | {"Deployment", "ClusterKopfPeering"} == kinds
    assert not by_kind(docs, "ServiceMonitor")
    assert not by_kind(docs, "PrometheusRule")
    assert not by_kind(docs, "Role")
    deployment = one(docs, "Deployment")
    assert deployment["metadata"]["name"] == RELEASE
    assert deployment["metadata"]["namespace"] == NAMESPACE
    assert deployment["spec"]["replicas"] == 1
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["drover", "run"]
    assert container["image"] == "ghcr.io/drover-dev/drover-operator:0.1.0"


def test_every_optional_feature_renders(render) -> None:
    docs = render(ALL_ON)
    assert len(by_kind(docs, "ServiceMonitor")) == 1
    assert len(by_kind(docs, "PrometheusRule")) == 1
    dashboards = [
        d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-dashboard")
    ]
    assert len(dashboards) == 1
    assert dashboards[0]["metadata"]["namespace"] == "monitoring"
    assert dashboards[0]["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(dashboards[0]["data"]["drover.json"])
    assert dashboard["uid"] == "drover-operator"
    assert all(target["expr"] for panel in dashboard["panels"] for target in panel["targets"])

    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert one(docs, "Deployment")["spec"]["replicas"] == 2
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"] == ALL_ON["tolerations"]
    assert pod["affinity"] == ALL_ON["affinity"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    container = pod["containers"][0]
    assert container["image"] == "registry.example.com/drover/operator:0.1.0-rc1"
    assert container["args"] == ["--config", "/etc/drover/config.yaml"]
    assert {"name": "DROVER_PROMETHEUS_TIMEOUT_SECONDS", "value": "3"} in container["env"]


def test_image_digest_wins_over_tag(render) -> None:
    digest = "sha256:" + "a" * 64
    docs = render({"image": {"repository": "example.com/drover", "tag": "x", "digest": digest}})
    container = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"example.com/drover@{digest}"


def test_namespaced_mode_renders_a_role_binding_and_peering_per_namespace(render) -> None:
    docs = render(NAMESPACED)
    assert sorted(r["metadata"]["namespace"] for r in by_kind(docs, "Role")) == WATCHED
    assert sorted(b["metadata"]["namespace"] for b in by_kind(docs, "RoleBinding")) == WATCHED
    peerings = by_kind(docs, "KopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == WATCHED
    assert not by_kind(docs, "ClusterKopfPeering")
    for binding in by_kind(docs, "RoleBinding"):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}
        ]


def test_peering_object_name_matches_the_operator_config(render) -> None:
    docs = render({"operator": {"peeringName": "llm-ops"}})
    assert one(docs, "ClusterKopfPeering")["metadata"]["name"] == "llm-ops"
    config = yaml.safe_load(
        next(d for d in by_kind(docs, "ConfigMap") if "config.yaml" in d["data"])["data"][
            "config.yaml"
        ]
    )
    assert config["operator"]["peeringName"] == "llm-ops"


def test_service_monitor_selects_the_metrics_service_port(render) -> None:
    docs = render(ALL_ON)
    monitor = one(docs, "ServiceMonitor")
    service = one(docs, "Service")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE]
    port_names = {port["name"] for port in service["spec"]["ports"]}
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    assert "metrics" in port_names
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_service_monitor_without_the_metrics_service_is_refused(chart: helm.Chart) -> None:
    values = {"metrics": {"service": {"enabled": False}, "serviceMonitor": {"enabled": True}}}
    with pytest.raises(helm.HelmError, match=r"metrics\.service\.enabled"):
        chart.render(values, name=RELEASE, namespace=NAMESPACE)


def test_prometheus_rule_has_the_documented_alerts(render) -> None:
    rule = one(render(ALL_ON), "PrometheusRule")
    alerts = {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}
    assert {
        "DroverOperatorDown",
        "DroverReconcileErrors",
        "DroverRolloutRolledBack",
        "DroverAutoscalerMetricsUnavailable",
    } <= alerts.keys()
    for name, alert in alerts.items():
        assert alert["expr"].strip(), name
        assert alert["labels"]["severity"] in {"info", "warning", "critical"}, name
        assert alert["annotations"]["summary"], name
    # Prometheus's own template syntax survives Helm's templating untouched.
    assert "{{ $labels.kind }}" in alerts["DroverReconcileErrors"]["annotations"]["summary"]
    assert 'result="RolledBack"' in alerts["DroverRolloutRolledBack"]["expr"]
    assert f'service="{RELEASE}-metrics"' in alerts["DroverOperatorDown"]["expr"]


def test_notes_name_the_release_and_namespaces(chart: helm.Chart) -> None:
    notes = chart.render(dict(NAMESPACED), name=RELEASE, namespace=NAMESPACE)
    text = next(v for k, v in notes.items() if k.endswith("NOTES.txt"))
    assert "team-a, team-b" in text
    assert f"deployment/{RELEASE}" in text
    assert "nvidia-a100-80gb, nvidia-l4" in text


def test_chart_files_are_packaged_without_stray_files(chart: helm.Chart) -> None:
    names = {f["name"] for f in chart.files}
    assert "dashboards/drover.json" in names
    assert all(not Path(name).name.startswith(".") or name == ".helmignore" for name in names)
    assert (CHART_DIR / "values.schema.json").is_file()


def test_fixed_peering_priority_with_several_replicas_is_refused(chart: helm.Chart) -> None:
    values = {"replicaCount": 2, "operator": {"peeringPriority": 10}}
    with pytest.raises(helm.HelmError, match=r"operator\.peeringPriority must be null"):
        chart.render(values, name=RELEASE, namespace=NAMESPACE)


def test_fixed_peering_priority_with_one_replica_reaches_the_config(render) -> None:
    docs = render({"operator": {"peeringPriority": 10}})
    text = next(d for d in by_kind(docs, "ConfigMap") if "config.yaml" in d["data"])["data"]
    assert yaml.safe_load(text["config.yaml"])["operator"]["peeringPriority"] == 10

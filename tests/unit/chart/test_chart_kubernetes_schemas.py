"""Every rendered core manifest is valid for Kubernetes 1.30 (kubernetes-validate, strict)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from chart_support import ALL_ON, CHART_DIR, NAMESPACED, by_kind

KUBERNETES = "1.30"
# Custom resources of other projects: kubernetes-validate has no schema for them, so their
# shape is checked below instead (the Prometheus Operator's and kopf's CRDs are not vendored).
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule", "ClusterKopfPeering", "KopfPeering"}
DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


def validate(doc: dict[str, Any]) -> None:
    try:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


@pytest.mark.parametrize(
    "values", [None, ALL_ON, NAMESPACED], ids=["defaults", "all-features", "namespaced"]
)
def test_every_core_manifest_validates_strictly(render, values) -> None:
    docs = render(values)
    core = [doc for doc in docs if doc["kind"] not in CUSTOM_KINDS]
    assert {doc["kind"] for doc in core} >= {"Deployment", "ConfigMap", "ClusterRole"}
    for doc in core:
        validate(doc)


def test_strict_validation_catches_a_bad_field(render) -> None:
    deployment = by_kind(render(None), "Deployment")[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


def test_chart_crds_validate_as_customresourcedefinitions() -> None:
    files = sorted((CHART_DIR / "crds").glob("*.yaml"))
    assert any(f.name == "kopf.dev_kopfpeerings.yaml" for f in files)
    for path in files:
        for doc in yaml.safe_load_all(Path(path).read_text()):
            if doc:
                assert doc["kind"] == "CustomResourceDefinition", path
                validate(doc)


def test_custom_resources_have_the_expected_shape(render) -> None:
    docs = render(ALL_ON) + render(NAMESPACED)
    for monitor in by_kind(docs, "ServiceMonitor"):
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["path"] == "/metrics"
            assert DURATION.match(endpoint["interval"])
            assert DURATION.match(endpoint["scrapeTimeout"])
    for rule in by_kind(docs, "PrometheusRule"):
        assert rule["apiVersion"] == "monitoring.coreos.com/v1"
        for group in rule["spec"]["groups"]:
            assert group["name"] and group["rules"]
            for alert in group["rules"]:
                assert set(alert) <= {"alert", "expr", "for", "labels", "annotations"}
                assert "for" not in alert or DURATION.match(alert["for"])
                assert isinstance(alert["expr"], str)
    peerings = by_kind(docs, "ClusterKopfPeering") + by_kind(docs, "KopfPeering")
    assert peerings
    for peering in peerings:
        assert peering["apiVersion"] == "kopf.dev/v1"
        assert set(peering) == {"apiVersion", "kind", "metadata"}
        assert re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", peering["metadata"]["name"])

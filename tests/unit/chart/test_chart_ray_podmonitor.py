"""The PodMonitor that lets Prometheus scrape the Ray pods (rendered with Helm's Go SDK).

KubeRay (v1.7.0) opens the Ray container's metrics port, named `metrics` (utils/constant.go
`MetricsPortName`, `DefaultMetricsPort` 8080, added by common/pod.go `BuildPod`), and labels every
Ray pod `ray.io/is-ray-node: "yes"`, `ray.io/cluster`, `ray.io/node-type` (utils/constant.go), but
creates no ServiceMonitor or PodMonitor. The prometheus-operator CRD is not vendored here, so the
PodMonitor's shape is checked against the fields its v1 schema defines.
"""

from __future__ import annotations

import re

import helm_python as helm
import pytest
from chart_support import NAMESPACE, RELEASE, by_kind, one

from drover.k8s.metrics import healthy_replicas_query

ON = {"metrics": {"rayPodMonitor": {"enabled": True}}}
DURATION = re.compile(
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# monitoring.coreos.com/v1 PodMonitor: spec fields and podMetricsEndpoints fields used here.
SPEC_FIELDS = {
    "selector",
    "namespaceSelector",
    "podMetricsEndpoints",
    "jobLabel",
    "podTargetLabels",
}
ENDPOINT_FIELDS = {"port", "path", "interval", "scrapeTimeout", "relabelings", "honorLabels"}
RELABEL_FIELDS = {"sourceLabels", "targetLabel", "regex", "replacement", "action", "separator"}


def test_no_pod_monitor_unless_asked(render) -> None:
    assert not by_kind(render(None), "PodMonitor")


def test_the_pod_monitor_has_the_prometheus_operator_shape(render) -> None:
    monitor = one(render(ON), "PodMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"] == {
        "name": f"{RELEASE}-ray",
        "namespace": NAMESPACE,
        "labels": monitor["metadata"]["labels"],
    }
    spec = monitor["spec"]
    assert set(spec) <= SPEC_FIELDS
    for endpoint in spec["podMetricsEndpoints"]:
        assert set(endpoint) <= ENDPOINT_FIELDS
        assert isinstance(endpoint["port"], str)
        assert DURATION.match(endpoint["interval"]) and DURATION.match(endpoint["scrapeTimeout"])
        for rule in endpoint["relabelings"]:
            assert set(rule) <= RELABEL_FIELDS
            assert all(LABEL_NAME.match(label) for label in rule["sourceLabels"])
            assert LABEL_NAME.match(rule["targetLabel"])


def test_it_scrapes_kuberays_metrics_port_on_drovers_ray_pods(render) -> None:
    from drover.builders.raycluster import Placement, build_ray_cluster_spec

    spec = one(render(ON), "PodMonitor")["spec"]
    wanted = {"ray.io/is-ray-node": "yes", "app.kubernetes.io/managed-by": "drover"}
    assert spec["selector"] == {"matchLabels": wanted}
    cluster = build_ray_cluster_spec(image="x", placement=Placement(class_name="cpu"))
    for group in (cluster["headGroupSpec"], *cluster["workerGroupSpecs"]):
        # KubeRay adds ray.io/is-ray-node itself (common/pod.go); Drover's label is on the template
        assert group["template"]["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "drover"
    assert spec["namespaceSelector"] == {"any": True}
    (endpoint,) = spec["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")


def test_it_adds_the_labels_the_replica_query_groups_by(render) -> None:
    (endpoint,) = one(render(ON), "PodMonitor")["spec"]["podMetricsEndpoints"]
    added = {r["targetLabel"]: r["sourceLabels"] for r in endpoint["relabelings"]}
    assert added["ray_io_cluster"] == ["__meta_kubernetes_pod_label_ray_io_cluster"]
    query = healthy_replicas_query("team-a", ["chat-abc"], "model")
    assert "ray_io_cluster" in query and 'namespace="team-a"' in query


def test_watched_namespaces_narrow_it_and_values_reach_it(render) -> None:
    values = {
        "watchNamespaces": ["team-a", "team-b"],
        "metrics": {
            "rayPodMonitor": {
                "enabled": True,
                "interval": "30s",
                "scrapeTimeout": "5s",
                "labels": {"release": "kube-prometheus-stack"},
                "podLabels": {"app.kubernetes.io/created-by": "kuberay-operator"},
            }
        },
    }
    monitor = one(render(values), "PodMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    spec = monitor["spec"]
    assert spec["namespaceSelector"] == {"matchNames": ["team-a", "team-b"]}
    assert spec["selector"]["matchLabels"] == {
        "ray.io/is-ray-node": "yes",
        "app.kubernetes.io/managed-by": "drover",
        "app.kubernetes.io/created-by": "kuberay-operator",
    }
    (endpoint,) = spec["podMetricsEndpoints"]
    assert (endpoint["interval"], endpoint["scrapeTimeout"]) == ("30s", "5s")


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"metrics": {"rayPodMonitor": {"interval": "often"}}}, "/metrics/rayPodMonitor/interval"),
        ({"metrics": {"rayPodMonitor": {"enabeld": True}}}, "'enabeld'"),
        ({"metrics": {"rayPodMonitor": {"podLabels": {"a": 1}}}}, "/metrics/rayPodMonitor"),
    ],
)
def test_bad_pod_monitor_values_are_refused(chart: helm.Chart, values, field) -> None:
    with pytest.raises(helm.HelmValuesError) as refused:
        chart.validate_schema(values)
    assert field in str(refused.value)

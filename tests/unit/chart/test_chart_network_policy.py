"""The chart's optional NetworkPolicy admits exactly the traffic Drover's Ray pods need.

Who may talk to whom is judged by NetworkPolicy's own rules (networking.k8s.io/v1,
staging/src/k8s.io/api/networking/v1/types.go, NetworkPolicyIngressRule and NetworkPolicyPeer):
a pod no policy selects admits everything; a selected pod admits a connection when one ingress
rule matches both its source (an empty `from` matches every source; a peer with both selectors
means pods matching podSelector in namespaces matching namespaceSelector; podSelector alone
means the policy's own namespace) and its port (empty `ports`: every port). The pod labels are
the ones the builders write (their golden files) and the chart's Deployment sets; namespaces
carry `kubernetes.io/metadata.name`, which the API server sets on every namespace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_support import NAMESPACE, WATCHED, by_kind, one

GOLDEN = Path(__file__).resolve().parents[1] / "builders" / "golden"
ENABLED = {"networkPolicy": {"enabled": True}, "watchNamespaces": WATCHED}
KUBERAY_OPERATOR = {
    "app.kubernetes.io/name": "kuberay-operator",  # KubeRay's Helm chart, templates/deployment.yaml
    "app.kubernetes.io/instance": "kuberay-operator",
    "app.kubernetes.io/component": "kuberay-operator",
}


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    wanted = selector.get("matchLabels") or {}
    assert not selector.get("matchExpressions"), "this evaluator reads matchLabels only"
    return all(labels.get(k) == v for k, v in wanted.items())


def _peer_admits(peer: dict[str, Any], policy_ns: str, src_ns: str, src: dict[str, str]) -> bool:
    assert "ipBlock" not in peer, "this evaluator does not judge ipBlock peers"
    ns_labels = {"kubernetes.io/metadata.name": src_ns}
    if "namespaceSelector" in peer:
        if not _matches(peer["namespaceSelector"], ns_labels):
            return False
    elif src_ns != policy_ns:
        return False
    return "podSelector" not in peer or _matches(peer["podSelector"], src)


def admits(
    policies: list[dict[str, Any]],
    *,
    src_ns: str,
    src: dict[str, str],
    dst_ns: str,
    dst: dict[str, str],
    port: int,
) -> bool:
    selecting = [
        p
        for p in policies
        if p["metadata"]["namespace"] == dst_ns and _matches(p["spec"]["podSelector"], dst)
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get("ingress") or []:
            peers = rule.get("from") or []
            source_ok = not peers or any(_peer_admits(peer, dst_ns, src_ns, src) for peer in peers)
            ports = rule.get("ports") or []
            port_ok = not ports or any(p.get("port") == port for p in ports)
            if source_ok and port_ok:
                return True
    return False


def _template_labels(doc: Any, found: list[dict[str, str]]) -> list[dict[str, str]]:
    """Labels of every pod template in a builder's golden manifest (head, workers, submitter)."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key in ("template", "submitterPodTemplate") and isinstance(value, dict):
                found.append(dict((value.get("metadata") or {}).get("labels") or {}))
            _template_labels(value, found)
    elif isinstance(doc, list):
        for item in doc:
            _template_labels(item, found)
    return found


def _ray_pods() -> list[dict[str, str]]:
    pods: list[dict[str, str]] = []
    for path in sorted(GOLDEN.glob("*.yaml")):
        _template_labels(yaml.safe_load(path.read_text()), pods)
    # KubeRay adds its own labels to each Ray pod (common/pod.go); they select nothing here.
    return [{**labels, "ray.io/is-ray-node": "yes"} for labels in pods]


@pytest.fixture(scope="module")
def policies(render) -> list[dict[str, Any]]:
    return by_kind(render(ENABLED), "NetworkPolicy")


@pytest.fixture(scope="module")
def operator_pod(render) -> dict[str, str]:
    return one(render(ENABLED), "Deployment")["spec"]["template"]["metadata"]["labels"]


def test_one_policy_per_watched_namespace_and_none_by_default(render, policies) -> None:
    assert sorted(p["metadata"]["namespace"] for p in policies) == sorted(WATCHED)
    assert by_kind(render(None), "NetworkPolicy") == []


def test_every_pod_template_the_builders_write_is_selected(policies) -> None:
    pods = _ray_pods()
    # Head and workers of the RayService and RayJobs, and the RayJobs' submitters.
    assert len(pods) >= 7
    for labels in pods:
        assert _matches(policies[0]["spec"]["podSelector"], labels), labels


@pytest.mark.parametrize("port", [6379, 8265, 10001, 8080, 37123])
def test_ray_pods_reach_each_other_on_every_port(policies, port) -> None:
    head, *others = _ray_pods()
    for src in others:
        assert admits(policies, src_ns="team-a", src=src, dst_ns="team-a", dst=head, port=port)


def test_the_operators_reach_the_dashboard_and_nothing_else(policies, operator_pod) -> None:
    head = _ray_pods()[0]
    kuberay = {"src_ns": "default", "src": KUBERAY_OPERATOR}
    drover = {"src_ns": NAMESPACE, "src": operator_pod}
    for source in (kuberay, drover):
        assert admits(policies, **source, dst_ns="team-b", dst=head, port=8265)
        assert not admits(policies, **source, dst_ns="team-b", dst=head, port=6379)
        assert not admits(policies, **source, dst_ns="team-b", dst=head, port=10001)
    # The same labels in another namespace are not KubeRay's operator.
    assert not admits(
        policies, src_ns="team-a", src=KUBERAY_OPERATOR, dst_ns="team-b", dst=head, port=8265
    )


def test_other_pods_reach_only_serve_and_metrics(policies) -> None:
    head = _ray_pods()[0]
    stranger = {"src_ns": "shop", "src": {"app": "frontend"}}
    assert admits(policies, **stranger, dst_ns="team-a", dst=head, port=8000)
    assert admits(policies, **stranger, dst_ns="team-a", dst=head, port=8080)
    for port in (6379, 8265, 10001, 52365):
        assert not admits(policies, **stranger, dst_ns="team-a", dst=head, port=port)
    # A pod of the same namespace that Drover did not make is a stranger too.
    neighbour = {"src_ns": "team-a", "src": {"app": "notebook"}}
    assert not admits(policies, **neighbour, dst_ns="team-a", dst=head, port=6379)


def test_serving_and_metrics_sources_narrow_to_what_the_values_name(render) -> None:
    values = {
        "watchNamespaces": WATCHED,
        "networkPolicy": {
            "enabled": True,
            "servingFrom": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gw"}}}
            ],
            "metricsFrom": [],
        },
    }
    policies = by_kind(render(values), "NetworkPolicy")
    head = _ray_pods()[0]
    assert admits(policies, src_ns="gw", src={}, dst_ns="team-a", dst=head, port=8000)
    assert not admits(policies, src_ns="shop", src={}, dst_ns="team-a", dst=head, port=8000)
    assert not admits(policies, src_ns="monitoring", src={}, dst_ns="team-a", dst=head, port=8080)


def test_cluster_wide_mode_needs_the_namespaces_listed(render) -> None:
    with pytest.raises(Exception, match=r"networkPolicy.namespaces"):
        render({"networkPolicy": {"enabled": True}})
    listed = render({"networkPolicy": {"enabled": True, "namespaces": ["ml"]}})
    assert [p["metadata"]["namespace"] for p in by_kind(listed, "NetworkPolicy")] == ["ml"]

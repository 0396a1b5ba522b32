"""RBAC grants exactly what the operator uses: no wildcard, no verb it does not need."""

from __future__ import annotations

from typing import Any

import pytest
from chart_support import ALL_ON, NAMESPACED, WATCHED, by_kind, one

DROVER = ("foundationmodels", "finetunejobs", "vectorindexes", "inferenceservices")

# (apiGroup, resource) -> verbs: the operator's whole need in a watched namespace.
NAMESPACED_NEEDS: dict[tuple[str, str], set[str]] = {
    **{("drover.dev", r): {"get", "list", "watch", "create", "patch"} for r in DROVER},
    **{("drover.dev", f"{r}/status"): {"get", "patch"} for r in DROVER},
    **{("drover.dev", f"{r}/finalizers"): {"update"} for r in DROVER},
    ("ray.io", "rayjobs"): {"get", "list", "watch", "create", "patch", "delete"},
    ("ray.io", "rayservices"): {"get", "list", "watch", "create", "patch", "delete"},
    ("ray.io", "rayjobs/status"): {"get"},
    ("ray.io", "rayservices/status"): {"get"},
    ("", "persistentvolumeclaims"): {"get", "list", "watch", "create", "patch", "delete"},
    ("", "configmaps"): {"get", "list", "watch"},
    ("", "events"): {"create", "patch"},
    ("events.k8s.io", "events"): {"create", "patch"},
}
CRDS = {("apiextensions.k8s.io", "customresourcedefinitions"): {"get", "list", "watch"}}
CLUSTERWIDE_ONLY = {
    ("", "namespaces"): {"list", "watch"},
    ("kopf.dev", "clusterkopfpeerings"): {"get", "list", "watch", "patch"},
}
PER_NAMESPACE_PEERING = {("kopf.dev", "kopfpeerings"): {"get", "list", "watch", "patch"}}


def grants(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    """Flatten a role's rules into (apiGroup, resource) -> verbs."""
    table: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert "nonResourceURLs" not in rule
        assert "resourceNames" not in rule or rule["resourceNames"]
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                table.setdefault((group, resource), set()).update(rule["verbs"])
    return table


def all_roles(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return by_kind(docs, "ClusterRole") + by_kind(docs, "Role")


@pytest.mark.parametrize(
    "values", [None, ALL_ON, NAMESPACED], ids=["defaults", "all-features", "namespaced"]
)
def test_no_rule_uses_a_wildcard(render, values) -> None:
    roles = all_roles(render(values))
    assert roles
    for role in roles:
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert not any("*" in item for item in rule.get(field, [])), (role, rule)


def test_clusterwide_role_grants_exactly_what_the_operator_uses(render) -> None:
    role = one(render(None), "ClusterRole")
    assert grants(role) == {**CRDS, **CLUSTERWIDE_ONLY, **NAMESPACED_NEEDS}


def test_secrets_are_readable_only_when_asked_and_only_with_get(render) -> None:
    assert ("", "secrets") not in grants(one(render(None), "ClusterRole"))
    with_secrets = grants(one(render({"rbac": {"readSecrets": True}}), "ClusterRole"))
    assert with_secrets[("", "secrets")] == {"get"}


def test_namespaced_mode_grants_nothing_cluster_wide_but_crd_discovery(render) -> None:
    docs = render(NAMESPACED)
    assert grants(one(docs, "ClusterRole")) == CRDS
    roles = by_kind(docs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == WATCHED
    for role in roles:
        expected = {**PER_NAMESPACE_PEERING, **NAMESPACED_NEEDS, ("", "secrets"): {"get"}}
        assert grants(role) == expected


def test_bindings_point_at_the_roles_and_the_operator_service_account(render) -> None:
    docs = render(NAMESPACED)
    account = one(docs, "ServiceAccount")["metadata"]
    cluster_binding = one(docs, "ClusterRoleBinding")
    assert cluster_binding["roleRef"]["name"] == one(docs, "ClusterRole")["metadata"]["name"]
    for binding in [cluster_binding, *by_kind(docs, "RoleBinding")]:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
        ]
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == account["name"]


def test_rbac_can_be_left_to_the_cluster_admin(render) -> None:
    docs = render({"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "ops"}})
    assert not all_roles(docs)
    assert not by_kind(docs, "ClusterRoleBinding") and not by_kind(docs, "ServiceAccount")
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "ops"

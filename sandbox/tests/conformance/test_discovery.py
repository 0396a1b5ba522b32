"""Discovery: /version, /api, /apis and resource lists, and CRDs registering their resources."""

from __future__ import annotations

import copy

from kubernetes import client

from .conftest import GROUP, PLURAL, ensure_crd, raw, wait_for


def test_version_reports_major_and_minor(k8s_api):
    info = client.VersionApi(k8s_api).get_code()
    assert info.major == "1"
    assert info.git_version.startswith("v1.")


def test_core_api_lists_v1(k8s_api):
    versions = client.CoreApi(k8s_api).get_api_versions()
    assert "v1" in versions.versions


def test_core_v1_resources_have_kind_verbs_and_short_names(k8s_api):
    found = {r.name: r for r in client.CoreV1Api(k8s_api).get_api_resources().resources}
    for name in (
        "namespaces",
        "configmaps",
        "secrets",
        "services",
        "serviceaccounts",
        "persistentvolumeclaims",
        "pods",
        "events",
    ):
        assert name in found, name
    assert found["configmaps"].kind == "ConfigMap"
    assert found["configmaps"].namespaced is True
    assert found["namespaces"].namespaced is False
    assert "cm" in found["configmaps"].short_names
    assert {"create", "get", "list", "watch", "patch", "delete"} <= set(found["pods"].verbs)
    assert "pods/status" in found


def test_api_groups_include_the_builtin_groups(k8s_api):
    groups = {g.name: g for g in client.ApisApi(k8s_api).get_api_versions().groups}
    for name in (
        "apps",
        "batch",
        "coordination.k8s.io",
        "events.k8s.io",
        "rbac.authorization.k8s.io",
        "apiextensions.k8s.io",
    ):
        assert name in groups, name
    assert groups["apps"].preferred_version.group_version == "apps/v1"


def test_group_version_resource_list_names_its_group_version(k8s_api):
    found = client.AppsV1Api(k8s_api).get_api_resources()
    assert found.group_version == "apps/v1"
    deployments = next(r for r in found.resources if r.name == "deployments")
    assert deployments.kind == "Deployment"
    assert "deploy" in deployments.short_names
    assert "all" in deployments.categories


def test_crd_registers_resource_with_names_and_subresources(k8s_api, widget_crd):
    found = client.CustomObjectsApi(k8s_api).get_api_resources(GROUP, "v1")
    by_name = {r.name: r for r in found.resources}
    assert by_name[PLURAL].kind == "Widget"
    assert by_name[PLURAL].short_names == ["wdg"]
    assert by_name[PLURAL].categories == ["conformance"]
    assert f"{PLURAL}/status" in by_name
    assert f"{PLURAL}/scale" in by_name
    groups = {g.name for g in client.ApisApi(k8s_api).get_api_versions().groups}
    assert GROUP in groups


def test_crd_is_established(k8s_api, widget_crd):
    crd = client.ApiextensionsV1Api(k8s_api).read_custom_resource_definition(
        widget_crd["metadata"]["name"]
    )
    conditions = {c.type: c.status for c in crd.status.conditions}
    assert conditions.get("Established") == "True"


def test_deleting_crd_unregisters_its_resources(k8s_api):
    crd = copy.deepcopy(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "gadgets.tmp.drover.dev"},
            "spec": {
                "group": "tmp.drover.dev",
                "scope": "Cluster",
                "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            }
                        },
                    }
                ],
            },
        }
    )
    ensure_crd(k8s_api, crd)
    custom = client.CustomObjectsApi(k8s_api)
    custom.create_cluster_custom_object(
        "tmp.drover.dev",
        "v1",
        "gadgets",
        {
            "apiVersion": "tmp.drover.dev/v1",
            "kind": "Gadget",
            "metadata": {"name": "g1"},
            "spec": {"a": 1},
        },
    )
    client.ApiextensionsV1Api(k8s_api).delete_custom_resource_definition(crd["metadata"]["name"])

    def gone() -> bool:
        groups = {g.name for g in client.ApisApi(k8s_api).get_api_versions().groups}
        return "tmp.drover.dev" not in groups

    wait_for(gone)
    try:
        custom.list_cluster_custom_object("tmp.drover.dev", "v1", "gadgets")
    except client.ApiException as exc:
        assert exc.status == 404
    else:
        raise AssertionError("the resource of a deleted CRD still answers")


def test_unknown_resource_is_404_status(k8s_api):
    code, body, _ = raw(k8s_api, "GET", "/api/v1/nothings")
    assert code == 404
    assert body["kind"] == "Status"
    assert body["reason"] == "NotFound"


def test_aggregated_discovery_lists_groups_with_resources(k8s_api, widget_crd):
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    code, body, headers = raw(k8s_api, "GET", "/apis", accept=accept)
    assert code == 200
    assert body["kind"] == "APIGroupDiscoveryList"
    assert "as=APIGroupDiscoveryList" in headers["Content-Type"]
    groups = {item["metadata"]["name"]: item for item in body["items"]}
    widgets = next(r for r in groups[GROUP]["versions"][0]["resources"] if r["resource"] == PLURAL)
    assert widgets["responseKind"]["kind"] == "Widget"
    assert widgets["scope"] == "Namespaced"
    assert {s["subresource"] for s in widgets["subresources"]} == {"status", "scale"}
    code, core, _ = raw(k8s_api, "GET", "/api", accept=accept)
    assert [item["metadata"]["name"] for item in core["items"]] == [""]

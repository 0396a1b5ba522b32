"""PATCH: JSON merge, JSON patch, strategic merge (built-ins) and server-side apply."""

from __future__ import annotations

import pytest
import yaml
from kubernetes import client

from .conftest import GROUP, PLURAL, create_widget, get_widget, raw


def _path(ns: str, name: str) -> str:
    return f"/apis/{GROUP}/v1/namespaces/{ns}/{PLURAL}/{name}"


def test_merge_patch_changes_only_given_fields(custom, namespace):
    create_widget(custom, namespace, "m", replicas=2, label="abc")
    out = custom.patch_namespaced_custom_object(
        GROUP, "v1", namespace, PLURAL, "m", {"spec": {"replicas": 3}}
    )
    assert out["spec"]["replicas"] == 3
    assert out["spec"]["label"] == "abc"


def test_merge_patch_null_deletes_field(custom, namespace):
    create_widget(custom, namespace, "mn", label="abc")
    out = custom.patch_namespaced_custom_object(
        GROUP, "v1", namespace, PLURAL, "mn", {"spec": {"label": None}}
    )
    assert "label" not in out["spec"]


def test_json_patch_replace_and_add(k8s_api, custom, namespace):
    create_widget(custom, namespace, "jp")
    code, body, _ = raw(
        k8s_api,
        "PATCH",
        _path(namespace, "jp"),
        [
            {"op": "replace", "path": "/spec/color", "value": "green"},
            {"op": "add", "path": "/metadata/labels", "value": {"a": "b"}},
        ],
        content_type="application/json-patch+json",
    )
    assert code == 200
    assert body["spec"]["color"] == "green"
    assert body["metadata"]["labels"] == {"a": "b"}


def test_json_patch_failed_test_op_is_422(k8s_api, custom, namespace):
    create_widget(custom, namespace, "jt")
    code, body, _ = raw(
        k8s_api,
        "PATCH",
        _path(namespace, "jt"),
        [
            {"op": "test", "path": "/spec/color", "value": "blue"},
            {"op": "replace", "path": "/spec/color", "value": "green"},
        ],
        content_type="application/json-patch+json",
    )
    assert code == 422
    assert body["kind"] == "Status"
    assert get_widget(custom, namespace, "jt")["spec"]["color"] == "red"


def test_strategic_merge_on_custom_resource_is_415(k8s_api, custom, namespace):
    create_widget(custom, namespace, "smp")
    code, body, _ = raw(
        k8s_api,
        "PATCH",
        _path(namespace, "smp"),
        {"spec": {"color": "blue"}},
        content_type="application/strategic-merge-patch+json",
    )
    assert code == 415
    assert body["reason"] == "UnsupportedMediaType"


def test_strategic_merge_merges_containers_by_name(k8s_api, namespace):
    apps = client.AppsV1Api(k8s_api)
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "d"},
            "spec": {
                "selector": {"matchLabels": {"app": "d"}},
                "template": {
                    "metadata": {"labels": {"app": "d"}},
                    "spec": {
                        "containers": [
                            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
                            {"name": "b", "image": "b:1"},
                        ]
                    },
                },
            },
        },
    )
    out = apps.patch_namespaced_deployment(
        "d",
        namespace,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "2"}]}
                        ]
                    }
                }
            }
        },
    )
    containers = {c.name: c for c in out.spec.template.spec.containers}
    assert containers["a"].image == "a:2"
    assert containers["b"].image == "b:1"
    assert {e.name for e in containers["a"].env} == {"X", "Y"}


def test_strategic_merge_delete_directive_removes_list_item(k8s_api, namespace):
    core = client.CoreV1Api(k8s_api)
    core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "s"},
            "spec": {"ports": [{"name": "http", "port": 80}, {"name": "grpc", "port": 9000}]},
        },
    )
    out = core.patch_namespaced_service(
        "s", namespace, {"spec": {"ports": [{"port": 9000, "$patch": "delete"}]}}
    )
    assert [p.port for p in out.spec.ports] == [80]


def test_patch_with_stale_resource_version_is_409(custom, namespace):
    obj = create_widget(custom, namespace, "prv")
    custom.patch_namespaced_custom_object(
        GROUP, "v1", namespace, PLURAL, "prv", {"spec": {"replicas": 2}}
    )
    with pytest.raises(client.ApiException) as info:
        custom.patch_namespaced_custom_object(
            GROUP,
            "v1",
            namespace,
            PLURAL,
            "prv",
            {
                "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
                "spec": {"replicas": 4},
            },
        )
    assert info.value.status == 409


def test_apply_creates_missing_object_and_records_manager(k8s_api, widget_crd, namespace):
    doc = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": "ap"},
        "spec": {"color": "blue", "replicas": 2},
    }
    code, body, _ = raw(
        k8s_api,
        "PATCH",
        _path(namespace, "ap"),
        yaml.safe_dump(doc),
        content_type="application/apply-patch+yaml",
        query={"fieldManager": "tester"},
    )
    assert code in (200, 201)
    assert body["spec"]["color"] == "blue"
    managers = {m["manager"]: m for m in body["metadata"]["managedFields"]}
    assert managers["tester"]["operation"] == "Apply"


def test_apply_conflict_with_other_manager_is_409_unless_forced(k8s_api, widget_crd, namespace):
    def apply(manager: str, replicas: int, force: bool = False):
        doc = {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Widget",
            "metadata": {"name": "ac"},
            "spec": {"color": "blue", "replicas": replicas},
        }
        query = {"fieldManager": manager, **({"force": "true"} if force else {})}
        return raw(
            k8s_api,
            "PATCH",
            _path(namespace, "ac"),
            yaml.safe_dump(doc),
            content_type="application/apply-patch+yaml",
            query=query,
        )

    assert apply("one", 2)[0] in (200, 201)
    code, body, _ = apply("two", 3)
    assert code == 409
    assert body["reason"] == "Conflict"
    code, body, _ = apply("two", 3, force=True)
    assert code == 200
    assert body["spec"]["replicas"] == 3


def test_apply_without_field_manager_is_400(k8s_api, widget_crd, namespace):
    code, _, _ = raw(
        k8s_api,
        "PATCH",
        _path(namespace, "nofm"),
        "kind: Widget\n",
        content_type="application/apply-patch+yaml",
    )
    assert code == 400

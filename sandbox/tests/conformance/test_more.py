"""More conformance: dry-run writes, multi-version CRDs, PUT /status, CRD schema updates,
media types, single-object watch, custom-resource deletecollection and 405s."""

from __future__ import annotations

import copy

import pytest
from kubernetes import client, watch

from .conftest import GROUP, PLURAL, create_widget, ensure_crd, get_widget, raw, wait_for


def test_dry_run_patch_changes_nothing(custom, namespace):
    obj = create_widget(custom, namespace, "dp")
    out = custom.patch_namespaced_custom_object(
        GROUP, "v1", namespace, PLURAL, "dp", {"spec": {"color": "blue"}}, dry_run="All"
    )
    assert out["spec"]["color"] == "blue"
    stored = get_widget(custom, namespace, "dp")
    assert stored["spec"]["color"] == "red"
    assert stored["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]


def test_dry_run_invalid_object_is_still_422(k8s_api, widget_crd, namespace):
    body = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": "dv"},
        "spec": {"color": "purple"},
    }
    code, _, _ = raw(
        k8s_api,
        "POST",
        f"/apis/{GROUP}/v1/namespaces/{namespace}/{PLURAL}",
        body,
        query={"dryRun": "All"},
    )
    assert code == 422


def test_replace_status_changes_only_status(custom, namespace):
    obj = create_widget(custom, namespace, "rs")
    obj["status"] = {"phase": "Done", "replicas": 1}
    obj["spec"]["color"] = "green"
    out = custom.replace_namespaced_custom_object_status(GROUP, "v1", namespace, PLURAL, "rs", obj)
    assert out["status"]["phase"] == "Done"
    assert out["spec"]["color"] == "red"


def test_every_served_version_of_a_crd_answers(k8s_api, namespace):
    schema = {
        "openAPIV3Schema": {
            "type": "object",
            "properties": {
                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
            },
        }
    }
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "dials.multi.drover.dev"},
        "spec": {
            "group": "multi.drover.dev",
            "scope": "Namespaced",
            "names": {"plural": "dials", "singular": "dial", "kind": "Dial"},
            "versions": [
                {"name": "v1beta1", "served": True, "storage": False, "schema": schema},
                {"name": "v1", "served": True, "storage": True, "schema": schema},
            ],
        },
    }
    ensure_crd(k8s_api, crd)
    custom = client.CustomObjectsApi(k8s_api)
    custom.create_namespaced_custom_object(
        "multi.drover.dev",
        "v1beta1",
        namespace,
        "dials",
        {
            "apiVersion": "multi.drover.dev/v1beta1",
            "kind": "Dial",
            "metadata": {"name": "d"},
            "spec": {"x": 1},
        },
    )
    as_v1 = custom.get_namespaced_custom_object("multi.drover.dev", "v1", namespace, "dials", "d")
    assert as_v1["apiVersion"] == "multi.drover.dev/v1"
    assert as_v1["spec"] == {"x": 1}
    groups = {g.name: g for g in client.ApisApi(k8s_api).get_api_versions().groups}
    assert groups["multi.drover.dev"].preferred_version.version == "v1"


def test_crd_schema_update_takes_effect(k8s_api, namespace):
    def crd_with(enum):
        return {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "knobs.upd.drover.dev"},
            "spec": {
                "group": "upd.drover.dev",
                "scope": "Namespaced",
                "names": {"plural": "knobs", "singular": "knob", "kind": "Knob"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "spec": {
                                        "type": "object",
                                        "properties": {"mode": {"type": "string", "enum": enum}},
                                    }
                                },
                            }
                        },
                    }
                ],
            },
        }

    ensure_crd(k8s_api, crd_with(["a"]))
    ext = client.ApiextensionsV1Api(k8s_api)
    current = ext.read_custom_resource_definition("knobs.upd.drover.dev")
    updated = crd_with(["a", "b"])
    updated["metadata"]["resourceVersion"] = current.metadata.resource_version
    ext.replace_custom_resource_definition("knobs.upd.drover.dev", updated)
    custom = client.CustomObjectsApi(k8s_api)

    def accepted() -> bool:
        try:
            custom.create_namespaced_custom_object(
                "upd.drover.dev",
                "v1",
                namespace,
                "knobs",
                {
                    "apiVersion": "upd.drover.dev/v1",
                    "kind": "Knob",
                    "metadata": {"name": "k"},
                    "spec": {"mode": "b"},
                },
            )
        except client.ApiException as exc:
            assert exc.status == 422
            return False
        return True

    wait_for(accepted)


def test_protobuf_body_is_415(k8s_api, namespace):
    code, body, _ = raw(
        k8s_api,
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps",
        b"\x6b\x38\x73\x00",
        content_type="application/vnd.kubernetes.protobuf",
    )
    assert code == 415
    assert body["reason"] == "UnsupportedMediaType"


def test_watch_of_one_object_by_name(core, namespace):
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "one"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "two"}})
    events = list(
        watch.Watch().stream(
            core.list_namespaced_config_map,
            namespace,
            field_selector="metadata.name=two",
            timeout_seconds=1,
        )
    )
    assert [e["object"].metadata.name for e in events] == ["two"]


def test_custom_resource_delete_collection(custom, namespace):
    for name in ("a", "b"):
        create_widget(custom, namespace, name)
    custom.delete_collection_namespaced_custom_object(GROUP, "v1", namespace, PLURAL)
    assert custom.list_namespaced_custom_object(GROUP, "v1", namespace, PLURAL)["items"] == []


def test_post_to_a_named_url_is_405(k8s_api, namespace):
    code, body, _ = raw(
        k8s_api, "POST", f"/api/v1/namespaces/{namespace}/configmaps/x", {"metadata": {"name": "x"}}
    )
    assert code == 405
    assert body["kind"] == "Status"


def test_wrong_kind_in_body_is_400(k8s_api, namespace):
    code, body, _ = raw(
        k8s_api,
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}},
    )
    assert code == 400
    assert body["reason"] == "BadRequest"


def test_unconditional_update_of_custom_resource_needs_resource_version(custom, namespace):
    obj = create_widget(custom, namespace, "nrv")
    body = copy.deepcopy(obj)
    del body["metadata"]["resourceVersion"]
    with pytest.raises(client.ApiException) as info:
        custom.replace_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, "nrv", body)
    assert info.value.status == 422
    assert "metadata.resourceVersion" in info.value.body

"""Server-side apply merges, records managedFields and detects conflicts like kube-apiserver."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from drover_sandbox.apiserver.apply import (
    fields_to_paths,
    list_map_keys_from_schema,
    paths_to_fields,
    record_update,
    server_side_apply,
)
from drover_sandbox.apiserver.errors import ApiError
from drover_sandbox.apiserver.patch import json_merge_patch, merge_keys_for

T0, T1, T2 = "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z"


def _isvc(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "drover.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": "bot", "namespace": "d", "labels": {"app": "bot"}},
        "spec": {"replicas": {"min": 1, "max": 3}, "model": "m", **spec},
    }


def _with_managed(obj: dict[str, Any], managed: list[dict[str, Any]]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"]["managedFields"] = managed
    return out


def test_apply_creates_and_records_fields_v1() -> None:
    obj, managed = server_side_apply(None, _isvc(), "kubectl", force=False, now=T0)
    assert obj["spec"] == {"replicas": {"min": 1, "max": 3}, "model": "m"}
    assert managed == [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "drover.dev/v1alpha1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:model": {}, "f:replicas": {"f:max": {}, "f:min": {}}},
            },
        }
    ]
    assert obj["metadata"]["managedFields"] == managed


def test_update_by_another_manager_takes_ownership_of_changed_fields() -> None:
    live, managed = server_side_apply(None, _isvc(), "kubectl", force=False, now=T0)
    after = json_merge_patch(live, {"spec": {"replicas": {"min": 2}}})
    managed = record_update(live, after, "kubectl-client-side-apply", T1)
    owners = {e["manager"]: fields_to_paths(e["fieldsV1"]) for e in managed}
    assert (("f", "spec"), ("f", "replicas"), ("f", "min")) in owners["kubectl-client-side-apply"]
    assert (("f", "spec"), ("f", "replicas"), ("f", "min")) not in owners["kubectl"]
    assert [e["operation"] for e in managed] == ["Apply", "Update"]


def test_apply_conflicts_with_other_owner_of_a_different_value() -> None:
    live, _ = server_side_apply(None, _isvc(), "kubectl", force=False, now=T0)
    after = json_merge_patch(live, {"spec": {"replicas": {"min": 2}}})
    after = _with_managed(after, record_update(live, after, "kubectl-client-side-apply", T1))
    with pytest.raises(ApiError) as err:
        server_side_apply(after, _isvc(), "kubectl", force=False, now=T2)
    assert err.value.code == 409 and err.value.reason == "Conflict"
    assert err.value.message == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using '
        "drover.dev/v1alpha1: .spec.replicas.min"
    )
    assert err.value.details["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "kubectl-client-side-apply" using drover.dev/v1alpha1',
            "field": ".spec.replicas.min",
        }
    ]


def test_apply_with_force_takes_ownership() -> None:
    live, _ = server_side_apply(None, _isvc(), "kubectl", force=False, now=T0)
    after = json_merge_patch(live, {"spec": {"replicas": {"min": 2}}})
    after = _with_managed(after, record_update(live, after, "other", T1))
    obj, managed = server_side_apply(after, _isvc(), "kubectl", force=True, now=T2)
    assert obj["spec"]["replicas"]["min"] == 1
    assert [e["manager"] for e in managed] == ["kubectl"]


def test_same_value_is_shared_without_conflict() -> None:
    live, _ = server_side_apply(None, _isvc(), "a", force=False, now=T0)
    obj, managed = server_side_apply(live, _isvc(), "b", force=False, now=T1)
    assert sorted(e["manager"] for e in managed) == ["a", "b"]
    assert obj["spec"] == live["spec"]


def test_several_conflicts_are_listed_per_manager() -> None:
    live, _ = server_side_apply(None, _isvc(), "a", force=False, now=T0)
    with pytest.raises(ApiError) as err:
        server_side_apply(
            live, _isvc(model="n", replicas={"min": 5, "max": 3}), "b", force=False, now=T1
        )
    assert err.value.message == (
        'Apply failed with 2 conflicts: conflicts with "a" using drover.dev/v1alpha1:\n'
        "- .spec.model\n- .spec.replicas.min"
    )


def test_fields_dropped_from_applied_config_are_removed() -> None:
    live, _ = server_side_apply(None, _isvc(extra="x"), "kubectl", force=False, now=T0)
    obj, managed = server_side_apply(live, _isvc(), "kubectl", force=False, now=T1)
    assert "extra" not in obj["spec"]
    assert "f:extra" not in managed[0]["fieldsV1"]["f:spec"]


def test_fields_owned_by_others_survive_removal_from_applied_config() -> None:
    live, _ = server_side_apply(None, _isvc(extra="x"), "kubectl", force=False, now=T0)
    live, _ = server_side_apply(live, _isvc(extra="x"), "helper", force=False, now=T1)
    obj, _ = server_side_apply(live, _isvc(), "kubectl", force=False, now=T2)
    assert obj["spec"]["extra"] == "x"


def test_apply_keeps_fields_set_by_others() -> None:
    live, _ = server_side_apply(None, _isvc(), "kubectl", force=False, now=T0)
    after = json_merge_patch(live, {"spec": {"paused": True}})
    after = _with_managed(after, record_update(live, after, "operator", T1))
    obj, _ = server_side_apply(after, _isvc(), "kubectl", force=False, now=T2)
    assert obj["spec"]["paused"] is True


def test_apply_merges_keyed_lists_by_key() -> None:
    keys = merge_keys_for("Deployment")
    base = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "1"}]}}},
    }
    live, managed = server_side_apply(None, base, "one", force=False, now=T0, merge_keys=keys)
    fields = managed[0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert fields == {'k:{"name":"a"}': {".": {}, "f:image": {}, "f:name": {}}}
    second = copy.deepcopy(base)
    second["spec"]["template"]["spec"]["containers"] = [{"name": "b", "image": "2"}]
    obj, _ = server_side_apply(live, second, "two", force=False, now=T1, merge_keys=keys)
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["a", "b"]


def test_apply_ignores_server_reset_fields() -> None:
    applied = {**_isvc(), "status": {"phase": "Ready"}}
    obj, managed = server_side_apply(
        None, applied, "kubectl", force=False, now=T0, ignore=("status",)
    )
    assert "status" not in obj
    assert "f:status" not in managed[0]["fieldsV1"]


def test_record_update_on_create_owns_everything() -> None:
    managed = record_update(None, _isvc(), "kubectl-create", T0)
    assert managed[0]["manager"] == "kubectl-create" and managed[0]["operation"] == "Update"
    assert fields_to_paths(managed[0]["fieldsV1"]) >= {(("f", "spec"), ("f", "model"))}


def test_record_update_drops_removed_fields_and_empty_managers() -> None:
    live = _with_managed(_isvc(extra="x"), record_update(None, _isvc(extra="x"), "a", T0))
    after = copy.deepcopy(live)
    del after["spec"]["extra"]
    managed = record_update(live, after, "b", T1)
    assert [e["manager"] for e in managed] == ["a"]
    assert "f:extra" not in managed[0]["fieldsV1"]["f:spec"]


def test_record_update_tracks_status_subresource_separately() -> None:
    live = _with_managed(_isvc(), record_update(None, _isvc(), "kubectl", T0))
    after = {**copy.deepcopy(live), "status": {"ready": True}}
    managed = record_update(live, after, "drover", T1, subresource="status")
    status_entry = next(e for e in managed if e.get("subresource") == "status")
    assert status_entry["fieldsV1"] == {"f:status": {"f:ready": {}}}


def test_fields_v1_round_trips() -> None:
    fields = {"f:spec": {"f:a": {}, "f:list": {'k:{"name":"x"}': {".": {}, "f:name": {}}}}}
    assert paths_to_fields(fields_to_paths(fields)) == fields


def test_list_map_keys_come_from_the_crd_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "disks": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {"type": "object"},
                    },
                    "tags": {
                        "type": "array",
                        "x-kubernetes-list-type": "set",
                        "items": {"type": "string"},
                    },
                },
            }
        },
    }
    assert list_map_keys_from_schema(schema) == {"spec.disks": "name", "spec.tags": "$set"}


def test_finalizers_and_owner_references_merge_for_every_kind() -> None:
    live = _isvc()
    live["metadata"]["finalizers"] = ["kopf.zalando.org/KopfFinalizerMarker"]
    live = _with_managed(live, record_update(None, live, "kopf", T0))
    applied = _isvc()
    applied["metadata"]["finalizers"] = ["drover.dev/cleanup"]
    obj, managed = server_side_apply(live, applied, "kubectl", force=False, now=T1)
    assert obj["metadata"]["finalizers"] == [
        "kopf.zalando.org/KopfFinalizerMarker",
        "drover.dev/cleanup",
    ]
    kubectl = next(e for e in managed if e["manager"] == "kubectl")
    assert kubectl["fieldsV1"]["f:metadata"]["f:finalizers"] == {'v:"drover.dev/cleanup"': {}}


def _deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "app", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]},
                        {"name": "side", "image": "busybox"},
                    ]
                }
            }
        },
    }


def test_conflicts_inside_keyed_lists_name_the_item() -> None:
    keys = merge_keys_for("Deployment")
    live, _ = server_side_apply(
        None, _deployment(), "kubectl", force=False, now=T0, merge_keys=keys
    )
    after = copy.deepcopy(live)
    after["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    after["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "B", "value": "2"})
    after["metadata"]["managedFields"] = record_update(
        live, after, "kubectl-set", T1, merge_keys=keys
    )
    with pytest.raises(ApiError) as err:
        server_side_apply(after, _deployment(), "kubectl", force=False, now=T2, merge_keys=keys)
    assert err.value.message == (
        'Apply failed with 1 conflict: conflict with "kubectl-set" using apps/v1: '
        '.spec.template.spec.containers[name="app"].image'
    )
    obj, managed = server_side_apply(
        after, _deployment(), "kubectl", force=True, now=T2, merge_keys=keys
    )
    app = obj["spec"]["template"]["spec"]["containers"][0]
    assert app["image"] == "nginx:1"
    assert [e["name"] for e in app["env"]] == ["A", "B"]  # B is still owned by kubectl-set
    kubectl = next(e for e in managed if e["manager"] == "kubectl")
    containers = kubectl["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert "." in containers['k:{"name":"app"}']


def test_builtin_kinds_merge_by_their_keys_without_being_told() -> None:
    live, _ = server_side_apply(None, _deployment(), "one", force=False, now=T0)
    other = _deployment()
    other["spec"]["template"]["spec"]["containers"] = [{"name": "extra", "image": "x"}]
    obj, _ = server_side_apply(live, other, "two", force=False, now=T1)
    names = [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]]
    assert names == ["app", "side", "extra"]


def test_custom_resource_lists_are_atomic_unless_the_schema_says_map() -> None:
    def isvc(steps: list[dict[str, Any]]) -> dict[str, Any]:
        return _isvc(rollout={"steps": steps})

    live, _ = server_side_apply(None, isvc([{"weight": 1}]), "one", force=False, now=T0)
    obj, _ = server_side_apply(live, isvc([{"weight": 1}]), "two", force=False, now=T1)
    assert obj["spec"]["rollout"]["steps"] == [{"weight": 1}]
    with pytest.raises(ApiError) as err:
        server_side_apply(obj, isvc([{"weight": 5}]), "two", force=False, now=T2)
    assert err.value.message.endswith(".spec.rollout.steps")


def test_list_items_dropped_from_applied_config_are_removed_whole() -> None:
    live, _ = server_side_apply(None, _deployment(), "kubectl", force=False, now=T0)
    smaller = _deployment()
    del smaller["spec"]["template"]["spec"]["containers"][1]
    obj, managed = server_side_apply(live, smaller, "kubectl", force=False, now=T1)
    assert obj["spec"]["template"]["spec"]["containers"] == [
        {"name": "app", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]}
    ]
    containers = managed[0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert list(containers) == ['k:{"name":"app"}']

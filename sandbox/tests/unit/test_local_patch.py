"""JSON merge, JSON and strategic merge patches behave as kube-apiserver applies them."""

from __future__ import annotations

import pytest

from drover_sandbox.apiserver.errors import ApiError
from drover_sandbox.apiserver.patch import (
    BUILTIN_MERGE_KEYS,
    json_merge_patch,
    json_patch,
    merge_keys_for,
    strategic_merge_patch,
    strategic_merge_unsupported,
)

DEPLOYMENT = {
    "metadata": {"name": "d", "finalizers": ["a"], "labels": {"x": "1"}},
    "spec": {
        "replicas": 1,
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "img:1",
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        "ports": [{"containerPort": 80, "name": "http"}],
                        "args": ["--a"],
                    },
                    {"name": "sidecar", "image": "side:1"},
                ],
                "tolerations": [{"key": "k1"}],
            }
        },
    },
}


def test_merge_patch_merges_objects_and_null_deletes() -> None:
    doc = {"a": {"b": 1, "c": 2}, "d": [1, 2], "e": 1}
    assert json_merge_patch(doc, {"a": {"b": 9, "c": None}, "d": [3], "f": {"g": None}}) == {
        "a": {"b": 9},
        "d": [3],
        "e": 1,
        "f": {},
    }
    assert doc["a"] == {"b": 1, "c": 2}


def test_merge_patch_with_non_object_replaces_whole_document() -> None:
    assert json_merge_patch({"a": 1}, [1]) == [1]


def test_json_patch_add_replace_remove_move_copy() -> None:
    doc = {"a": [1, 2], "b": {"c": 1}, "x~y": 0, "p/q": 1}
    ops = [
        {"op": "add", "path": "/a/-", "value": 3},
        {"op": "add", "path": "/a/0", "value": 0},
        {"op": "replace", "path": "/b/c", "value": 5},
        {"op": "remove", "path": "/x~0y"},
        {"op": "move", "from": "/p~1q", "path": "/moved"},
        {"op": "copy", "from": "/b", "path": "/b2"},
        {"op": "test", "path": "/a", "value": [0, 1, 2, 3]},
    ]
    assert json_patch(doc, ops) == {"a": [0, 1, 2, 3], "b": {"c": 5}, "moved": 1, "b2": {"c": 5}}
    assert doc["a"] == [1, 2]


def test_json_patch_failed_test_is_422() -> None:
    with pytest.raises(ApiError) as err:
        json_patch(
            {"spec": {"replicas": 1}}, [{"op": "test", "path": "/spec/replicas", "value": 2}]
        )
    status = err.value.to_status()
    assert status["code"] == 422 and status["reason"] == "Invalid"
    assert status["message"] == "the server rejected our request due to an error in our request"
    assert err.value.cause == "testing value /spec/replicas failed: test failed"


def test_json_patch_test_distinguishes_booleans_from_numbers() -> None:
    with pytest.raises(ApiError):
        json_patch({"a": True}, [{"op": "test", "path": "/a", "value": 1}])


@pytest.mark.parametrize(
    ("op", "message"),
    [
        ({"op": "replace", "path": "/spec/x", "value": 1},
         "replace operation does not apply: doc is missing key: /spec/x: missing value"),
        ({"op": "remove", "path": "/spec/x"},
         'remove operation does not apply: doc is missing path: "/spec/x": missing value'),
        ({"op": "add", "path": "/nope/x", "value": 1},
         'add operation does not apply: doc is missing path: "/nope/x": missing value'),
        ({"op": "add", "path": "/spec/list/5", "value": 1},
         'add operation does not apply: doc is missing path: "/spec/list/5": missing value'),
    ],
)  # fmt: skip
def test_json_patch_invalid_paths_are_422(op: dict, message: str) -> None:
    with pytest.raises(ApiError) as err:
        json_patch({"spec": {"list": [1]}}, [op])
    assert err.value.code == 422
    assert err.value.cause == message


def test_json_patch_must_be_a_list_of_operations() -> None:
    with pytest.raises(ApiError) as err:
        json_patch({}, {"op": "add"})
    assert err.value.code == 400


def test_json_patch_unknown_op_is_rejected() -> None:
    with pytest.raises(ApiError) as err:
        json_patch({}, [{"op": "frobnicate", "path": "/a"}])
    assert err.value.code == 422


def test_strategic_merge_merges_containers_and_env_by_name() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "app", "image": "img:2", "env": [{"name": "C", "value": "3"}]}
                    ]
                }
            }
        }
    }
    result = strategic_merge_patch(DEPLOYMENT, patch, merge_keys_for("Deployment"))
    containers = result["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["app", "sidecar"]
    assert containers[0]["image"] == "img:2"
    assert containers[0]["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "2"},
        {"name": "C", "value": "3"},
    ]
    assert containers[0]["ports"] == [{"containerPort": 80, "name": "http"}]


def test_strategic_merge_replaces_atomic_lists() -> None:
    patch = {"spec": {"template": {"spec": {"tolerations": [{"key": "k2"}]}}}}
    result = strategic_merge_patch(DEPLOYMENT, patch, merge_keys_for("Deployment"))
    assert result["spec"]["template"]["spec"]["tolerations"] == [{"key": "k2"}]


def test_strategic_merge_delete_directive_removes_list_item() -> None:
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}
    }
    result = strategic_merge_patch(DEPLOYMENT, patch, merge_keys_for("Deployment"))
    assert [c["name"] for c in result["spec"]["template"]["spec"]["containers"]] == ["app"]


def test_strategic_merge_replace_directive_on_map_and_list() -> None:
    keys = merge_keys_for("Deployment")
    patch = {"metadata": {"labels": {"$patch": "replace", "y": "2"}}}
    assert strategic_merge_patch(DEPLOYMENT, patch, keys)["metadata"]["labels"] == {"y": "2"}
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "only"}, {"$patch": "replace"}]}}}
    }
    result = strategic_merge_patch(DEPLOYMENT, patch, keys)
    assert result["spec"]["template"]["spec"]["containers"] == [{"name": "only"}]


def test_strategic_merge_null_deletes_and_retain_keys_prunes() -> None:
    keys = merge_keys_for("Deployment")
    assert (
        "replicas"
        not in strategic_merge_patch(DEPLOYMENT, {"spec": {"replicas": None}}, keys)["spec"]
    )
    patch = {"spec": {"$retainKeys": ["template"], "template": {}}}
    assert set(strategic_merge_patch(DEPLOYMENT, patch, keys)["spec"]) == {"template"}


def test_strategic_merge_finalizers_merge_as_a_set() -> None:
    result = strategic_merge_patch(
        DEPLOYMENT, {"metadata": {"finalizers": ["b", "a"]}}, merge_keys_for("Deployment")
    )
    assert result["metadata"]["finalizers"] == ["a", "b"]


def test_strategic_merge_delete_from_primitive_list() -> None:
    doc = {"metadata": {"finalizers": ["a", "b"]}}
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}
    assert strategic_merge_patch(doc, patch, merge_keys_for("ConfigMap"))["metadata"][
        "finalizers"
    ] == ["b"]


def test_strategic_merge_set_element_order_reorders_merged_list() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
                    "containers": [{"name": "app", "image": "img:3"}],
                }
            }
        }
    }
    result = strategic_merge_patch(DEPLOYMENT, patch, merge_keys_for("Deployment"))
    containers = result["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["sidecar", "app"]
    assert containers[1]["image"] == "img:3"


def test_strategic_merge_list_item_without_merge_key_is_400() -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}
    with pytest.raises(ApiError) as err:
        strategic_merge_patch(DEPLOYMENT, patch, merge_keys_for("Deployment"))
    assert err.value.code == 400


def test_service_ports_merge_by_port_and_pod_by_spec_containers() -> None:
    svc = {"spec": {"ports": [{"port": 80, "name": "http"}]}}
    result = strategic_merge_patch(
        svc, {"spec": {"ports": [{"port": 443, "name": "https"}]}}, BUILTIN_MERGE_KEYS["Service"]
    )
    assert [p["port"] for p in result["spec"]["ports"]] == [80, 443]
    assert BUILTIN_MERGE_KEYS["Pod"]["spec.containers"] == "name"
    assert BUILTIN_MERGE_KEYS["Pod"]["spec.containers.volumeMounts"] == "mountPath"
    assert BUILTIN_MERGE_KEYS["Job"]["spec.template.spec.containers.ports"] == "containerPort"
    assert BUILTIN_MERGE_KEYS["Deployment"]["metadata.ownerReferences"] == "uid"
    assert "spec.template.spec.tolerations" not in BUILTIN_MERGE_KEYS["Deployment"]


def test_strategic_merge_on_custom_resources_is_415() -> None:
    err = strategic_merge_unsupported()
    assert err.code == 415 and err.reason == "UnsupportedMediaType"
    assert err.message.endswith(
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )


def test_strategic_merge_delete_directive_removes_a_map() -> None:
    patch = {"metadata": {"labels": {"$patch": "delete"}}}
    result = strategic_merge_patch(DEPLOYMENT, patch, merge_keys_for("Deployment"))
    assert "labels" not in result["metadata"]
    assert result["metadata"]["name"] == "d"

"""CRUD: server-set metadata, generateName, optimistic concurrency, delete, dryRun."""

from __future__ import annotations

import pytest
from kubernetes import client

from .conftest import GROUP, PLURAL, create_widget, get_widget, raw, widget


def test_create_sets_uid_timestamp_resource_version_and_generation(custom, namespace):
    obj = create_widget(custom, namespace, "w1")
    meta = obj["metadata"]
    assert len(meta["uid"]) >= 32
    assert meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) > 0
    assert meta["generation"] == 1
    assert meta["namespace"] == namespace


def test_create_answers_201(k8s_api, widget_crd, namespace):
    code, body, _ = raw(
        k8s_api, "POST", f"/apis/{GROUP}/v1/namespaces/{namespace}/{PLURAL}", widget("w201")
    )
    assert code == 201
    assert body["kind"] == "Widget"


def test_generate_name_appends_random_suffix(core, namespace):
    cm = core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="gen-"), data={"a": "b"}),
    )
    assert cm.metadata.name.startswith("gen-")
    assert len(cm.metadata.name) == len("gen-") + 5


def test_create_existing_name_is_409_already_exists(custom, namespace):
    create_widget(custom, namespace, "dup")
    with pytest.raises(client.ApiException) as info:
        create_widget(custom, namespace, "dup")
    assert info.value.status == 409
    assert '"reason":"AlreadyExists"' in info.value.body.replace(" ", "")


def test_create_without_name_is_422(core, namespace):
    with pytest.raises(client.ApiException) as info:
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(data={"a": "b"}))
    assert info.value.status == 422
    assert "metadata.name" in info.value.body


def test_create_in_missing_namespace_is_404(core):
    with pytest.raises(client.ApiException) as info:
        core.create_namespaced_config_map(
            "no-such-ns-xyz", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="a"))
        )
    assert info.value.status == 404


def test_get_missing_object_is_404_not_found_status(custom, namespace):
    with pytest.raises(client.ApiException) as info:
        get_widget(custom, namespace, "absent")
    assert info.value.status == 404
    assert f'{PLURAL}.{GROUP} \\"absent\\" not found' in info.value.body


def test_invalid_name_is_422_naming_metadata_name(core, namespace):
    with pytest.raises(client.ApiException) as info:
        core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="Bad_Name"))
        )
    assert info.value.status == 422
    assert "metadata.name" in info.value.body


def test_replace_with_current_resource_version_succeeds(custom, namespace):
    obj = create_widget(custom, namespace, "rep")
    obj["spec"]["color"] = "blue"
    new = custom.replace_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, "rep", obj)
    assert new["spec"]["color"] == "blue"
    assert int(new["metadata"]["resourceVersion"]) > int(obj["metadata"]["resourceVersion"])


def test_replace_with_stale_resource_version_is_409_conflict(custom, namespace):
    obj = create_widget(custom, namespace, "stale")
    first = dict(obj, spec={**obj["spec"], "color": "blue"})
    custom.replace_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, "stale", first)
    second = dict(obj, spec={**obj["spec"], "color": "green"})
    with pytest.raises(client.ApiException) as info:
        custom.replace_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, "stale", second)
    assert info.value.status == 409
    assert '"reason":"Conflict"' in info.value.body.replace(" ", "")


def test_replace_name_mismatch_is_400(custom, namespace):
    obj = create_widget(custom, namespace, "mis")
    obj["metadata"]["name"] = "other"
    with pytest.raises(client.ApiException) as info:
        custom.replace_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, "mis", obj)
    assert info.value.status == 400


def test_uid_and_creation_timestamp_survive_updates(custom, namespace):
    obj = create_widget(custom, namespace, "keep")
    obj["spec"]["color"] = "green"
    obj["metadata"]["uid"] = "00000000-0000-0000-0000-000000000000"
    new = custom.replace_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, "keep", obj)
    assert new["metadata"]["uid"] != "00000000-0000-0000-0000-000000000000"
    assert new["metadata"]["creationTimestamp"] == obj["metadata"]["creationTimestamp"]


def test_delete_removes_object(custom, namespace):
    create_widget(custom, namespace, "del")
    custom.delete_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, "del")
    with pytest.raises(client.ApiException) as info:
        get_widget(custom, namespace, "del")
    assert info.value.status == 404


def test_delete_with_stale_uid_precondition_is_409(core, namespace):
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="pre"))
    )
    with pytest.raises(client.ApiException) as info:
        core.delete_namespaced_config_map(
            "pre",
            namespace,
            body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="not-the-uid")),
        )
    assert info.value.status == 409
    assert core.read_namespaced_config_map("pre", namespace).metadata.name == "pre"


def test_delete_collection_by_label_keeps_others(core, namespace):
    for name, team in (("a", "x"), ("b", "x"), ("c", "y")):
        core.create_namespaced_config_map(
            namespace,
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels={"team": team})),
        )
    core.delete_collection_namespaced_config_map(namespace, label_selector="team=x")
    left = [c.metadata.name for c in core.list_namespaced_config_map(namespace).items]
    assert left == ["c"]


def test_dry_run_create_persists_nothing(custom, namespace):
    out = custom.create_namespaced_custom_object(
        GROUP, "v1", namespace, PLURAL, widget("dry"), dry_run="All"
    )
    assert out["metadata"]["name"] == "dry"
    with pytest.raises(client.ApiException) as info:
        get_widget(custom, namespace, "dry")
    assert info.value.status == 404


def test_dry_run_delete_keeps_object(custom, namespace):
    create_widget(custom, namespace, "drydel")
    custom.delete_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, "drydel", dry_run="All")
    assert get_widget(custom, namespace, "drydel")["metadata"]["name"] == "drydel"


def test_builtin_kinds_round_trip(k8s_api, namespace):
    core = client.CoreV1Api(k8s_api)
    core.create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="s"), string_data={"k": "v"})
    )
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="sa"))
    )
    core.create_namespaced_persistent_volume_claim(
        namespace,
        {
            "metadata": {"name": "pvc"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    client.CoordinationV1Api(k8s_api).create_namespaced_lease(
        namespace, {"metadata": {"name": "l"}, "spec": {"holderIdentity": "me"}}
    )
    client.BatchV1Api(k8s_api).create_namespaced_job(
        namespace,
        {
            "metadata": {"name": "j"},
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "c", "image": "busybox"}],
                    }
                }
            },
        },
    )
    client.RbacAuthorizationV1Api(k8s_api).create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "r"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
        },
    )
    assert core.read_namespaced_secret("s", namespace).metadata.name == "s"
    assert core.read_namespaced_persistent_volume_claim("pvc", namespace).status.phase == "Pending"
    lease = client.CoordinationV1Api(k8s_api).read_namespaced_lease("l", namespace)
    assert lease.spec.holder_identity == "me"
    job = client.BatchV1Api(k8s_api).read_namespaced_job("j", namespace)
    assert job.metadata.generation == 1


def test_invalid_label_value_is_422_naming_metadata_labels(k8s_api, namespace):
    code, body, _ = raw(
        k8s_api,
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps",
        {"metadata": {"name": "lbl", "labels": {"source": "hf://org/model"}}},
    )
    assert code == 422
    assert [c["field"] for c in body["details"]["causes"]] == ["metadata.labels"]
    assert "a valid label must be an empty string" in body["message"]


def test_label_update_is_validated_too(core, namespace):
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "lu"}})
    with pytest.raises(client.ApiException) as info:
        core.patch_namespaced_config_map("lu", namespace, {"metadata": {"labels": {"a": "x" * 64}}})
    assert info.value.status == 422


def test_owner_reference_without_uid_is_422(k8s_api, namespace):
    code, body, _ = raw(
        k8s_api,
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps",
        {"metadata": {"name": "or", "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "x"}]}},
    )  # fmt: skip
    assert code == 422
    assert "metadata.ownerReferences[0].uid" in [c["field"] for c in body["details"]["causes"]]

"""Finalizers, deletionTimestamp, owner-reference GC (background/foreground/orphan) and
namespace deletion."""

from __future__ import annotations

import pytest
from kubernetes import client

from .conftest import GROUP, PLURAL, create_widget, get_widget, wait_for


def _gone(fn, *args) -> bool:
    try:
        fn(*args)
    except client.ApiException as exc:
        return exc.status == 404
    return False


def _owned_cm(core, ns, name, owner, block=False):
    return core.create_namespaced_config_map(
        ns,
        {
            "metadata": {
                "name": name,
                "ownerReferences": [
                    {
                        "apiVersion": f"{GROUP}/v1",
                        "kind": "Widget",
                        "name": owner["metadata"]["name"],
                        "uid": owner["metadata"]["uid"],
                        "blockOwnerDeletion": block,
                    }
                ],
            }
        },
    )


def test_delete_with_finalizer_sets_deletion_timestamp_and_keeps_object(custom, namespace):
    body = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": "f", "finalizers": ["example.com/hold"]},
        "spec": {"color": "red"},
    }
    custom.create_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, body)
    custom.delete_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, "f")
    obj = get_widget(custom, namespace, "f")
    assert obj["metadata"]["deletionTimestamp"]
    assert obj["metadata"]["finalizers"] == ["example.com/hold"]


def test_removing_last_finalizer_deletes_object(custom, namespace):
    body = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": "f2", "finalizers": ["example.com/hold"]},
        "spec": {"color": "red"},
    }
    custom.create_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, body)
    custom.delete_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, "f2")
    custom.patch_namespaced_custom_object(
        GROUP, "v1", namespace, PLURAL, "f2", {"metadata": {"finalizers": None}}
    )
    assert _gone(get_widget, custom, namespace, "f2")


def test_new_finalizer_on_deleting_object_is_422(custom, namespace):
    body = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": "f3", "finalizers": ["example.com/a"]},
        "spec": {"color": "red"},
    }
    custom.create_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, body)
    custom.delete_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, "f3")
    with pytest.raises(client.ApiException) as info:
        custom.patch_namespaced_custom_object(
            GROUP,
            "v1",
            namespace,
            PLURAL,
            "f3",
            {"metadata": {"finalizers": ["example.com/a", "example.com/b"]}},
        )
    assert info.value.status == 422


def test_background_deletion_collects_dependents(custom, core, namespace):
    owner = create_widget(custom, namespace, "own-bg")
    _owned_cm(core, namespace, "dep-bg", owner)
    custom.delete_namespaced_custom_object(
        GROUP, "v1", namespace, PLURAL, "own-bg", propagation_policy="Background"
    )
    wait_for(lambda: _gone(core.read_namespaced_config_map, "dep-bg", namespace))


def test_orphan_deletion_keeps_dependents_without_owner_reference(custom, core, namespace):
    owner = create_widget(custom, namespace, "own-or")
    _owned_cm(core, namespace, "dep-or", owner)
    custom.delete_namespaced_custom_object(
        GROUP, "v1", namespace, PLURAL, "own-or", propagation_policy="Orphan"
    )
    wait_for(lambda: _gone(get_widget, custom, namespace, "own-or"))
    dep = core.read_namespaced_config_map("dep-or", namespace)
    assert not dep.metadata.owner_references


def test_foreground_deletion_waits_for_blocking_dependents(custom, core, namespace):
    owner = create_widget(custom, namespace, "own-fg")
    core.create_namespaced_config_map(
        namespace,
        {
            "metadata": {
                "name": "dep-fg",
                "finalizers": ["example.com/slow"],
                "ownerReferences": [
                    {
                        "apiVersion": f"{GROUP}/v1",
                        "kind": "Widget",
                        "name": "own-fg",
                        "uid": owner["metadata"]["uid"],
                        "blockOwnerDeletion": True,
                    }
                ],
            }
        },
    )
    custom.delete_namespaced_custom_object(
        GROUP, "v1", namespace, PLURAL, "own-fg", propagation_policy="Foreground"
    )
    obj = wait_for(lambda: get_widget(custom, namespace, "own-fg"))
    assert "foregroundDeletion" in obj["metadata"]["finalizers"]
    wait_for(
        lambda: core.read_namespaced_config_map("dep-fg", namespace).metadata.deletion_timestamp
    )
    assert get_widget(custom, namespace, "own-fg")["metadata"]["deletionTimestamp"]
    core.patch_namespaced_config_map("dep-fg", namespace, {"metadata": {"finalizers": None}})
    wait_for(lambda: _gone(get_widget, custom, namespace, "own-fg"))


def test_dependent_of_missing_owner_is_collected(core, namespace):
    core.create_namespaced_config_map(
        namespace,
        {
            "metadata": {
                "name": "dangling",
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "name": "never-existed",
                        "uid": "11111111-2222-3333-4444-555555555555",
                    }
                ],
            }
        },
    )
    wait_for(lambda: _gone(core.read_namespaced_config_map, "dangling", namespace))


def test_namespace_deletion_removes_contents(core, custom, widget_crd):
    ns = "t-nsdel-contents"
    core.create_namespace({"metadata": {"name": ns}})
    core.create_namespaced_config_map(ns, {"metadata": {"name": "c"}})
    create_widget(custom, ns, "w")
    core.delete_namespace(ns)
    assert core.read_namespace(ns).status.phase == "Terminating" or _gone(core.read_namespace, ns)
    wait_for(lambda: _gone(core.read_namespace, ns))
    assert _gone(core.read_namespaced_config_map, "c", ns)


def test_create_in_terminating_namespace_is_403(core):
    ns = "t-nsdel-forbid"
    core.create_namespace({"metadata": {"name": ns}})
    core.create_namespaced_config_map(
        ns, {"metadata": {"name": "held", "finalizers": ["example.com/x"]}}
    )
    core.delete_namespace(ns)
    with pytest.raises(client.ApiException) as info:
        core.create_namespaced_config_map(ns, {"metadata": {"name": "late"}})
    assert info.value.status == 403
    assert 'configmaps \\"late\\" is forbidden' in info.value.body
    assert "because it is being terminated" in info.value.body
    core.patch_namespaced_config_map("held", ns, {"metadata": {"finalizers": None}})
    wait_for(lambda: _gone(core.read_namespace, ns))

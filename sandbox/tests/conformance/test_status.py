"""Generation bumps only on spec changes; /status is separate from the main resource."""

from __future__ import annotations

from .conftest import GROUP, PLURAL, create_widget, get_widget


def _patch(custom, ns, name, body):
    return custom.patch_namespaced_custom_object(GROUP, "v1", ns, PLURAL, name, body)


def _patch_status(custom, ns, name, body):
    return custom.patch_namespaced_custom_object_status(GROUP, "v1", ns, PLURAL, name, body)


def test_spec_change_bumps_generation(custom, namespace):
    create_widget(custom, namespace, "g")
    assert _patch(custom, namespace, "g", {"spec": {"replicas": 5}})["metadata"]["generation"] == 2


def test_metadata_change_keeps_generation(custom, namespace):
    create_widget(custom, namespace, "gm")
    out = _patch(custom, namespace, "gm", {"metadata": {"labels": {"x": "y"}}})
    assert out["metadata"]["generation"] == 1
    assert out["metadata"]["labels"] == {"x": "y"}


def test_status_write_keeps_generation_and_spec(custom, namespace):
    create_widget(custom, namespace, "gs")
    out = _patch_status(
        custom, namespace, "gs", {"status": {"phase": "Ready"}, "spec": {"color": "blue"}}
    )
    assert out["status"]["phase"] == "Ready"
    assert out["spec"]["color"] == "red"
    assert out["metadata"]["generation"] == 1


def test_main_resource_write_ignores_status(custom, namespace):
    create_widget(custom, namespace, "gi")
    _patch_status(custom, namespace, "gi", {"status": {"phase": "Ready"}})
    out = _patch(custom, namespace, "gi", {"status": {"phase": "Broken"}})
    assert out["status"]["phase"] == "Ready"


def test_create_drops_status_when_subresource_enabled(custom, namespace):
    body = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": "cs"},
        "spec": {"color": "red"},
        "status": {"phase": "Faked"},
    }
    out = custom.create_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, body)
    assert "phase" not in (out.get("status") or {})


def test_noop_update_keeps_resource_version(custom, namespace):
    obj = create_widget(custom, namespace, "noop")
    out = _patch(custom, namespace, "noop", {"spec": {"color": "red"}})
    assert out["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]


def test_scale_subresource_reads_and_writes_replicas(custom, namespace):
    create_widget(custom, namespace, "sc", replicas=2)
    scale = custom.get_namespaced_custom_object_scale(GROUP, "v1", namespace, PLURAL, "sc")
    assert scale["kind"] == "Scale"
    assert scale["spec"]["replicas"] == 2
    custom.patch_namespaced_custom_object_scale(
        GROUP, "v1", namespace, PLURAL, "sc", {"spec": {"replicas": 4}}
    )
    assert get_widget(custom, namespace, "sc")["spec"]["replicas"] == 4

"""List: kind/apiVersion/resourceVersion, label and field selectors, limit/continue."""

from __future__ import annotations

import pytest
from kubernetes import client

from .conftest import GROUP, PLURAL, create_widget, raw


def _cm(core, ns, name, **labels):
    core.create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels or None))
    )


def test_list_has_kind_api_version_and_resource_version(custom, namespace):
    create_widget(custom, namespace, "l1")
    out = custom.list_namespaced_custom_object(GROUP, "v1", namespace, PLURAL)
    assert out["kind"] == "WidgetList"
    assert out["apiVersion"] == f"{GROUP}/v1"
    assert int(out["metadata"]["resourceVersion"]) >= int(
        out["items"][0]["metadata"]["resourceVersion"]
    )


def test_list_is_scoped_to_its_namespace(core, namespace, k8s_api):
    other = f"{namespace}-b"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    try:
        _cm(core, namespace, "mine")
        _cm(core, other, "theirs")
        names = {c.metadata.name for c in core.list_namespaced_config_map(namespace).items}
        assert "mine" in names and "theirs" not in names
        everywhere = {
            (c.metadata.namespace, c.metadata.name)
            for c in core.list_config_map_for_all_namespaces().items
        }
        assert {(namespace, "mine"), (other, "theirs")} <= everywhere
    finally:
        core.delete_namespace(other)


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("tier=web", {"a", "b"}),
        ("tier!=web", {"c", "d"}),
        ("tier in (web,db)", {"a", "b", "c"}),
        ("tier notin (web)", {"c", "d"}),
        ("tier", {"a", "b", "c"}),
        ("!tier", {"d"}),
        ("tier=web,env=prod", {"a"}),
    ],
)
def test_label_selector(core, namespace, selector, expected):
    _cm(core, namespace, "a", tier="web", env="prod")
    _cm(core, namespace, "b", tier="web")
    _cm(core, namespace, "c", tier="db")
    _cm(core, namespace, "d")
    got = {
        c.metadata.name
        for c in core.list_namespaced_config_map(namespace, label_selector=selector).items
    }
    assert got == expected


def test_field_selector_on_metadata_name(core, namespace):
    _cm(core, namespace, "x")
    _cm(core, namespace, "y")
    got = [
        c.metadata.name
        for c in core.list_namespaced_config_map(namespace, field_selector="metadata.name=y").items
    ]
    assert got == ["y"]
    got = {
        c.metadata.name
        for c in core.list_namespaced_config_map(namespace, field_selector="metadata.name!=y").items
    }
    assert got == {"x"}


def test_limit_and_continue_page_through_everything_once(core, namespace):
    names = {f"p{i:02d}" for i in range(7)}
    for name in names:
        _cm(core, namespace, name)
    seen, token, pages = [], None, 0
    while True:
        page = core.list_namespaced_config_map(namespace, limit=3, _continue=token)
        pages += 1
        seen += [c.metadata.name for c in page.items]
        token = page.metadata._continue
        if not token:
            break
        assert page.metadata.remaining_item_count is not None
    assert pages == 3
    assert sorted(seen) == sorted(names)


def test_invalid_label_selector_is_400(k8s_api, namespace):
    code, body, _ = raw(
        k8s_api,
        "GET",
        f"/api/v1/namespaces/{namespace}/configmaps",
        query={"labelSelector": "a in (b"},
    )
    assert code == 400
    assert body["reason"] == "BadRequest"


def test_field_selector_on_unsupported_field_is_400(k8s_api, widget_crd, namespace):
    code, body, _ = raw(
        k8s_api,
        "GET",
        f"/apis/{GROUP}/v1/namespaces/{namespace}/{PLURAL}",
        query={"fieldSelector": "spec.color=red"},
    )
    assert code == 400
    assert "field label not supported: spec.color" in body["message"]


def test_field_selector_on_supported_builtin_field(core, namespace):
    core.create_namespaced_secret(namespace, {"metadata": {"name": "o"}, "type": "Opaque"})
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "t"}, "type": "kubernetes.io/basic-auth",
                    "stringData": {"username": "u", "password": "p"}}
    )  # fmt: skip
    got = core.list_namespaced_secret(namespace, field_selector="type=Opaque").items
    assert [s.metadata.name for s in got] == ["o"]

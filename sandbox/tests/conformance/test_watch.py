"""Watch: events, resume from resourceVersion, bookmarks, timeoutSeconds, 410 Gone, selectors,
cluster-wide and content type."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest
from kubernetes import client, watch

from drover_sandbox.apiserver import launcher

from .conftest import GROUP, PLURAL, create_widget


def _events(fn, *args, timeout=3, stop_after=None, **kwargs):
    w = watch.Watch()
    out = []
    for ev in w.stream(fn, *args, timeout_seconds=timeout, **kwargs):
        out.append(ev)
        if stop_after and len(out) >= stop_after:
            w.stop()
    return out


def _later(delay, fn, *args, **kwargs):
    timer = threading.Timer(delay, fn, args, kwargs)
    timer.start()
    return timer


def test_watch_streams_added_modified_deleted(core, namespace):
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version

    def act():
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "w"}})
        core.patch_namespaced_config_map("w", namespace, {"data": {"a": "b"}})
        core.delete_namespaced_config_map("w", namespace)

    _later(0.3, act)
    events = _events(
        core.list_namespaced_config_map, namespace, resource_version=rv, stop_after=3, timeout=10
    )
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[1]["object"].data == {"a": "b"}


def test_watch_resumes_from_resource_version(core, namespace):
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "r1"}})
    rv = core.read_namespaced_config_map("r1", namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "r2"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "r3"}})
    events = _events(
        core.list_namespaced_config_map, namespace, resource_version=rv, stop_after=2, timeout=5
    )
    assert [e["object"].metadata.name for e in events] == ["r2", "r3"]


def test_watch_without_resource_version_starts_with_current_objects(core, namespace):
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "now"}})
    events = _events(core.list_namespaced_config_map, namespace, stop_after=1, timeout=5)
    assert events[0]["type"] == "ADDED"
    assert events[0]["object"].metadata.name == "now"


def test_watch_timeout_seconds_ends_stream(core, namespace):
    start = time.monotonic()
    events = _events(
        core.list_namespaced_config_map,
        namespace,
        resource_version=core.list_namespaced_config_map(namespace).metadata.resource_version,
        timeout=1,
    )
    assert events == []
    assert time.monotonic() - start < 30


def test_watch_sends_bookmarks_when_allowed(k8s_api, namespace):
    url = (
        f"{k8s_api.configuration.host}/api/v1/namespaces/{namespace}/configmaps?watch=true"
        f"&allowWatchBookmarks=true&timeoutSeconds=3&resourceVersion="
        f"{client.CoreV1Api(k8s_api).list_namespaced_config_map(namespace).metadata.resource_version}"
    )
    if not url.startswith("http://"):
        pytest.skip("raw bookmark check needs a plain-HTTP server (the local control plane)")
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("application/json")
        lines = [json.loads(line) for line in resp.read().splitlines() if line.strip()]
    bookmarks = [e for e in lines if e["type"] == "BOOKMARK"]
    assert bookmarks
    assert bookmarks[0]["object"]["metadata"]["resourceVersion"]


def test_watch_label_selector_filters_events(core, namespace):
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version

    def act():
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "no"}})
        core.create_namespaced_config_map(
            namespace, {"metadata": {"name": "yes", "labels": {"pick": "me"}}}
        )

    _later(0.3, act)
    events = _events(
        core.list_namespaced_config_map,
        namespace,
        resource_version=rv,
        label_selector="pick=me",
        stop_after=1,
        timeout=10,
    )
    assert [e["object"].metadata.name for e in events] == ["yes"]


def test_cluster_wide_watch_sees_all_namespaces(custom, namespace):
    rv = custom.list_cluster_custom_object(GROUP, "v1", PLURAL)["metadata"]["resourceVersion"]
    _later(0.3, create_widget, custom, namespace, "cw")
    w = watch.Watch()
    seen = None
    for ev in w.stream(
        custom.list_cluster_custom_object,
        GROUP,
        "v1",
        PLURAL,
        resource_version=rv,
        timeout_seconds=10,
    ):
        if ev["object"]["metadata"]["name"] == "cw":
            seen = ev
            w.stop()
    assert seen is not None
    assert seen["object"]["metadata"]["namespace"] == namespace


def test_watch_from_too_old_resource_version_is_410(apiserver, k8s_api, namespace):
    """Uses a server with a 5-event history (started by this test) to make versions expire."""
    if not apiserver.local:
        pytest.skip("needs the local control plane's --watch-history to expire versions")
    data_dir = apiserver.data_dir / "small-history"
    data_dir.mkdir(exist_ok=True)
    proc, url = launcher.start(data_dir, "--watch-history", "5")
    try:
        api = client.CoreV1Api(client.ApiClient(client.Configuration(host=url)))
        first = api.create_namespaced_config_map("default", {"metadata": {"name": "c0"}})
        for i in range(1, 12):
            api.create_namespaced_config_map("default", {"metadata": {"name": f"c{i}"}})
        with pytest.raises(client.ApiException) as info:
            _events(
                api.list_namespaced_config_map,
                "default",
                resource_version=first.metadata.resource_version,
                timeout=3,
            )
        assert info.value.status == 410
    finally:
        launcher.stop(proc)


def test_watch_list_ends_initial_events_with_a_marked_bookmark(k8s_api, namespace):
    core = client.CoreV1Api(k8s_api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "init"}})
    url = (
        f"{k8s_api.configuration.host}/api/v1/namespaces/{namespace}/configmaps?watch=true"
        f"&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
        f"&timeoutSeconds=1"
    )
    if not url.startswith("http://"):
        pytest.skip("raw watch-list check needs a plain-HTTP server (the local control plane)")
    with urllib.request.urlopen(url, timeout=10) as resp:
        events = [json.loads(line) for line in resp.read().splitlines() if line.strip()]
    assert events[0]["type"] == "ADDED"
    assert events[0]["object"]["metadata"]["name"] == "init"
    marker = events[1]
    assert marker["type"] == "BOOKMARK"
    assert marker["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}

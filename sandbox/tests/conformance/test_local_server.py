"""Features of the local control plane itself: fault injection, the on-disk snapshot, the CLI's
kubeconfig. They have no kube-apiserver counterpart, so they skip against a real cluster."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from kubernetes import client

from drover_sandbox.apiserver import launcher


@pytest.fixture
def local(apiserver):
    if not apiserver.local:
        pytest.skip("fault injection and snapshots are features of the local control plane")
    yield apiserver
    apiserver.admin(
        "/_drover/faults",
        {"error_rate": 0.0, "latency_ms": 0, "watch_cut_after": 0, "codes": [500], "methods": []},
    )


def _status(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def test_faults_answer_the_configured_fraction_with_errors(local, namespace):
    local.admin("/_drover/faults", {"error_rate": 0.5, "codes": [500, 429], "seed": 7})
    answers = [_status(f"{local.url}/api/v1/namespaces/{namespace}/configmaps") for _ in range(40)]
    codes = [code for code, _ in answers]
    assert {500, 429} <= set(codes)
    assert all(h.get("Retry-After") for code, h in answers if code == 429)
    assert 5 <= codes.count(200) <= 35


def test_faults_can_inject_conflicts_on_writes_only(local, core, namespace):
    local.admin("/_drover/faults", {"error_rate": 1.0, "codes": [409], "methods": ["PATCH"]})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "f"}})
    with pytest.raises(client.ApiException) as info:
        core.patch_namespaced_config_map("f", namespace, {"data": {"a": "b"}})
    assert info.value.status == 409
    assert core.read_namespaced_config_map("f", namespace).data is None


def test_fault_settings_are_validated(local):
    with pytest.raises(urllib.error.HTTPError) as info:
        local.admin("/_drover/faults", {"error_rate": 2})
    assert info.value.code == 400


def test_faults_cut_watch_streams_after_n_events(local, core, namespace):
    for i in range(5):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": f"c{i}"}})
    local.admin("/_drover/faults", {"watch_cut_after": 2})
    from kubernetes import watch

    events = list(
        watch.Watch().stream(core.list_namespaced_config_map, namespace, timeout_seconds=10)
    )
    assert len(events) == 2


def test_snapshot_keeps_objects_across_restart(local, tmp_path):
    data_dir = tmp_path / "snap"
    proc, url = launcher.start(data_dir, "--snapshot")
    try:
        api = client.CoreV1Api(client.ApiClient(client.Configuration(host=url)))
        api.create_namespaced_config_map(
            "default", {"metadata": {"name": "keep"}, "data": {"k": "v"}}
        )
        rv = api.list_namespaced_config_map("default").metadata.resource_version
    finally:
        launcher.stop(proc)
    assert (data_dir / "snapshot.json").exists()
    proc, url = launcher.start(data_dir, "--snapshot")
    try:
        api = client.CoreV1Api(client.ApiClient(client.Configuration(host=url)))
        assert api.read_namespaced_config_map("keep", "default").data == {"k": "v"}
        after = api.create_namespaced_config_map("default", {"metadata": {"name": "new"}})
        assert int(after.metadata.resource_version) > int(rv)
    finally:
        launcher.stop(proc)


def test_cli_writes_a_kubeconfig_that_the_client_loads(local):
    from kubernetes import config

    api = config.new_client_from_config(config_file=str(local.kubeconfig))
    assert client.VersionApi(api).get_code().major == "1"
    with urllib.request.urlopen(f"{local.url}/healthz", timeout=5) as resp:
        assert resp.read() == b"ok"


def test_events_expire_after_event_ttl(local, tmp_path):
    proc, url = launcher.start(tmp_path / "ttl", "--event-ttl", "1")
    try:
        api = client.CoreV1Api(client.ApiClient(client.Configuration(host=url)))
        api.create_namespaced_config_map("default", {"metadata": {"name": "stays"}})
        api.create_namespaced_event(
            "default",
            {
                "metadata": {"name": "old"},
                "reason": "R",
                "message": "m",
                "involvedObject": {"kind": "ConfigMap", "name": "stays"},
            },
        )
        from .conftest import wait_for

        wait_for(lambda: not api.list_namespaced_event("default").items, timeout=20)
        assert api.read_namespaced_config_map("stays", "default").metadata.name == "stays"
    finally:
        launcher.stop(proc)

"""Features of the local control plane itself: fault injection, the on-disk snapshot, the CLI's
kubeconfig. They have no kube-apiserver counterpart, so they skip against a real cluster."""

from __future__ import annotations

import json
import time
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
        {
            "error_rate": 0.0,
            "latency_ms": 0,
            "latency_rate": 1.0,
            "watch_cut_after": 0,
            "rewatch_gone_rate": 0.0,
            "retry_after_s": 1,
            "codes": [500],
            "methods": [],
            "exempt_user_agents": [],
        },
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


def test_faults_answer_a_rewatch_from_an_old_version_with_410_gone(local, core, namespace):
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    old = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "b"}})
    local.admin("/_drover/faults", {"rewatch_gone_rate": 1.0})
    url = (
        f"{local.url}/api/v1/namespaces/{namespace}/configmaps"
        f"?watch=true&resourceVersion={old}&timeoutSeconds=5"
    )
    with urllib.request.urlopen(url, timeout=10) as resp:
        # As kube-apiserver's cacher: HTTP 200, then one ERROR event carrying the 410 Status.
        assert resp.status == 200
        events = [json.loads(line) for line in resp.read().splitlines() if line.strip()]
    assert [e["type"] for e in events] == ["ERROR"]
    assert local.admin("/_drover/faults")["injected"]["410-rewatch"] >= 1
    status = events[0]["object"]
    assert status["code"] == 410 and status["reason"] == "Expired"
    assert status["message"].startswith(f"too old resource version: {old} (")
    # A first watch (no resourceVersion: the current state) is never refused.
    fresh = f"{url.split('&resourceVersion=')[0]}&timeoutSeconds=1"
    with urllib.request.urlopen(fresh, timeout=10) as resp:
        assert b"ERROR" not in resp.read()


def test_an_injected_429_carries_the_configured_retry_after(local):
    local.admin("/_drover/faults", {"error_rate": 1.0, "codes": [429], "retry_after_s": 3})
    code, headers = _status(f"{local.url}/api/v1/namespaces/default/configmaps")
    assert code == 429 and headers.get("Retry-After") == "3"


def test_exempt_clients_see_no_faults_and_latency_hits_the_set_fraction(local, namespace):
    local.admin(
        "/_drover/faults",
        {
            "error_rate": 1.0,
            "exempt_user_agents": ["harness/"],
            "latency_ms": 300,
            "latency_rate": 0.5,
            "seed": 3,
        },
    )
    url = f"{local.url}/api/v1/namespaces/{namespace}/configmaps"
    req = urllib.request.Request(url, headers={"User-Agent": "harness/1"})
    slow = 0
    for _ in range(20):
        started = time.monotonic()
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200
        slow += time.monotonic() - started >= 0.3
    assert slow == 0  # exempt: neither errors nor latency
    local.admin("/_drover/faults", {"error_rate": 0.0, "exempt_user_agents": []})
    for _ in range(20):
        started = time.monotonic()
        _status(url)
        slow += time.monotonic() - started >= 0.3
    assert 3 <= slow <= 17


def test_requests_are_counted_by_verb_resource_code_and_client(local, core, namespace):
    def creates() -> int:
        items = local.admin("/_drover/requests")["items"]
        return sum(
            i["count"]
            for i in items
            if i["verb"] == "create" and i["resource"] == "configmaps" and i["code"] == 201
        )

    before = creates()
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "counted"}})
    with pytest.raises(client.ApiException):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "counted"}})
    assert creates() == before + 1
    items = local.admin("/_drover/requests")["items"]
    assert any(
        i["verb"] == "create" and i["resource"] == "configmaps" and i["code"] == 409 for i in items
    )
    assert all(i["userAgent"].startswith("OpenAPI-Generator") for i in items if i["code"] == 409)


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

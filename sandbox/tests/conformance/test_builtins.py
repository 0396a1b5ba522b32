"""Built-in kinds the operator and kopf use: events (core/v1 and events.k8s.io/v1), Lease
(leader election), Pod/Service status defaults, RBAC, Secret stringData, Deployment scale."""

from __future__ import annotations

from kubernetes import client


def test_core_v1_event_can_be_posted_and_listed_by_field_selector(core, namespace):
    core.create_namespaced_event(
        namespace,
        {
            "metadata": {"generateName": "ev-"},
            "reason": "Tested",
            "message": "hello",
            "type": "Normal",
            "involvedObject": {"kind": "ConfigMap", "name": "x", "namespace": namespace},
        },
    )
    got = core.list_namespaced_event(
        namespace, field_selector="involvedObject.name=x,reason=Tested"
    )
    assert [e.message for e in got.items] == ["hello"]


def test_events_k8s_io_v1_event_round_trips(k8s_api, namespace):
    api = client.EventsV1Api(k8s_api)
    api.create_namespaced_event(
        namespace,
        {
            "metadata": {"name": "e1"},
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "reportingController": "drover.dev/test",
            "reportingInstance": "t",
            "action": "Test",
            "reason": "Tested",
            "type": "Normal",
            "note": "n",
            "regarding": {"kind": "Pod", "name": "p", "namespace": namespace},
        },
    )
    assert api.read_namespaced_event("e1", namespace).note == "n"


def test_lease_update_with_stale_version_is_409(k8s_api, namespace):
    api = client.CoordinationV1Api(k8s_api)
    lease = api.create_namespaced_lease(
        namespace, {"metadata": {"name": "leader"}, "spec": {"holderIdentity": "a"}}
    )
    lease.spec.holder_identity = "b"
    api.replace_namespaced_lease("leader", namespace, lease)
    lease.spec.holder_identity = "c"
    try:
        api.replace_namespaced_lease("leader", namespace, lease)
    except client.ApiException as exc:
        assert exc.status == 409
    else:
        raise AssertionError("a stale lease update must conflict")


def test_pod_starts_pending_and_status_is_a_subresource(core, namespace):
    pod = core.create_namespaced_pod(
        namespace,
        {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
    )
    assert pod.status.phase == "Pending"
    core.patch_namespaced_pod_status("p", namespace, {"status": {"phase": "Running"}})
    assert core.read_namespaced_pod("p", namespace).status.phase == "Running"


def test_service_gets_cluster_ip(core, namespace):
    svc = core.create_namespaced_service(
        namespace, {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
    )
    assert svc.spec.cluster_ip
    assert svc.spec.type == "ClusterIP"


def test_secret_string_data_is_stored_as_base64_data(core, namespace):
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "s"}, "stringData": {"token": "abc"}}
    )
    secret = core.read_namespaced_secret("s", namespace)
    assert secret.data == {"token": "YWJj"}
    assert not secret.string_data


def test_rbac_cluster_role_and_binding(k8s_api):
    rbac = client.RbacAuthorizationV1Api(k8s_api)
    rbac.create_cluster_role(
        {
            "metadata": {"name": "t-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
        }
    )
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": "t-reader"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "t-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "x", "namespace": "default"}],
        }
    )
    try:
        assert rbac.read_cluster_role_binding("t-reader").role_ref.name == "t-reader"
    finally:
        rbac.delete_cluster_role_binding("t-reader")
        rbac.delete_cluster_role("t-reader")


def test_deployment_scale_subresource(k8s_api, namespace):
    apps = client.AppsV1Api(k8s_api)
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "d"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"a": "b"}},
                "template": {
                    "metadata": {"labels": {"a": "b"}},
                    "spec": {"containers": [{"name": "c", "image": "x"}]},
                },
            },
        },
    )
    apps.patch_namespaced_deployment_scale("d", namespace, {"spec": {"replicas": 3}})
    assert apps.read_namespaced_deployment("d", namespace).spec.replicas == 3

"""kopf runs unmodified against the server: peering, finalizers, events, timers, status patches."""

from __future__ import annotations

import textwrap

import pytest
from kubernetes import client

from .conftest import ensure_crd, wait_for

GROUP = "kopf.conformance.drover.dev"
OPEN = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def _crd(group, plural, kind, scope="Namespaced", status=True):
    version = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {
            "openAPIV3Schema": {"type": "object", "properties": {"spec": OPEN, "status": OPEN}}
        },
    }
    if status:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": scope,
            "versions": [version],
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
        },
    }


OPERATOR = textwrap.dedent(f'''
    import kopf

    @kopf.on.startup()
    def configure(settings, **_):
        settings.watching.server_timeout = 10
        settings.watching.client_timeout = 15
        settings.peering.priority = 100

    @kopf.on.create("{GROUP}", "v1", "things")
    def created(spec, body, patch, **_):
        kopf.info(body, reason="Seen", message="created by the test")
        patch.status["phase"] = "Seen"
        return {{"color": spec.get("color")}}

    @kopf.timer("{GROUP}", "v1", "things", interval=0.3)
    def tick(status, patch, **_):
        patch.status["ticks"] = int(status.get("ticks") or 0) + 1

    @kopf.on.delete("{GROUP}", "v1", "things")
    def deleted(body, **_):
        kopf.info(body, reason="Bye", message="deleted")
''')


@pytest.fixture
def kopf_crds(k8s_api):
    ensure_crd(k8s_api, _crd(GROUP, "things", "Thing"))
    ensure_crd(
        k8s_api,
        _crd(
            "kopf.dev", "clusterkopfpeerings", "ClusterKopfPeering", scope="Cluster", status=False
        ),
    )
    ensure_crd(k8s_api, _crd("kopf.dev", "kopfpeerings", "KopfPeering", status=False))
    client.CustomObjectsApi(k8s_api).create_cluster_custom_object(
        "kopf.dev",
        "v1",
        "clusterkopfpeerings",
        {
            "apiVersion": "kopf.dev/v1",
            "kind": "ClusterKopfPeering",
            "metadata": {"name": "conformance"},
        },
    )
    yield
    client.CustomObjectsApi(k8s_api).delete_cluster_custom_object(
        "kopf.dev", "v1", "clusterkopfpeerings", "conformance"
    )


@pytest.mark.timeout(120)
def test_kopf_operator_runs_handlers_finalizers_events_timers_and_peering(
    k8s_api, kubeconfig, namespace, kopf_crds, tmp_path, monkeypatch
):
    import kubernetes.config.kube_config
    from kopf.testing import KopfRunner

    # kopf logs in through the kubernetes client, which read $KUBECONFIG when it was imported.
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setattr(
        kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig)
    )
    script = tmp_path / "operator.py"
    script.write_text(OPERATOR)
    custom = client.CustomObjectsApi(k8s_api)
    core = client.CoreV1Api(k8s_api)

    def thing():
        return custom.get_namespaced_custom_object(GROUP, "v1", namespace, "things", "t1")

    def gone() -> bool:
        try:
            thing()
        except client.ApiException as exc:
            return exc.status == 404
        return False

    args = ["run", "--all-namespaces", "--verbose", "--peering", "conformance", str(script)]
    with KopfRunner(args, timeout=90) as runner:
        custom.create_namespaced_custom_object(
            GROUP,
            "v1",
            namespace,
            "things",
            {
                "apiVersion": f"{GROUP}/v1",
                "kind": "Thing",
                "metadata": {"name": "t1"},
                "spec": {"color": "red"},
            },
        )
        obj = wait_for(lambda: (t := thing()).get("status", {}).get("created") and t, 40)
        assert obj["status"]["phase"] == "Seen"
        assert obj["status"]["created"] == {"color": "red"}
        assert obj["metadata"]["finalizers"]
        wait_for(lambda: int(thing().get("status", {}).get("ticks") or 0) >= 2, 40)
        events = wait_for(
            lambda: [
                e
                for e in core.list_namespaced_event(namespace).items
                if e.involved_object.name == "t1" and e.reason == "Seen"
            ],
            20,
        )
        assert events[0].involved_object.kind == "Thing"
        peering = custom.get_cluster_custom_object(
            "kopf.dev", "v1", "clusterkopfpeerings", "conformance"
        )
        assert peering.get("status"), "kopf did not announce itself in the peering object"
        custom.delete_namespaced_custom_object(GROUP, "v1", namespace, "things", "t1")
        wait_for(gone, 40)
    assert runner.exception is None
    assert runner.exit_code == 0
    assert "Handler 'created' succeeded" in runner.output
    assert "Handler 'deleted' succeeded" in runner.output

"""kubectl as the real user: apply -f, get (printer-column table), get -o yaml, get -w, explain,
wait --for=condition=Ready, delete, apply --server-side; and the Drover CRDs and examples."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import yaml

from .conftest import GROUP, PLURAL, WIDGET_CRD, create_widget, get_widget, raw

ROOT = Path(__file__).resolve().parents[3]
WIDGET_YAML = """\
apiVersion: conformance.drover.dev/v1
kind: Widget
metadata:
  name: {name}
spec:
  color: {color}
  replicas: 3
"""


def _apply(kubectl, namespace, text, *extra):
    return kubectl("apply", "-n", namespace, "-f", "-", *extra, input=text)


def test_kubectl_apply_creates_and_then_configures(kubectl, widget_crd, namespace):
    out = _apply(kubectl, namespace, WIDGET_YAML.format(name="ka", color="red"))
    assert "widget.conformance.drover.dev/ka created" in out.stdout
    out = _apply(kubectl, namespace, WIDGET_YAML.format(name="ka", color="blue"))
    assert "configured" in out.stdout


def test_kubectl_apply_with_default_validation_rejects_unknown_field(
    kubectl, widget_crd, namespace
):
    doc = WIDGET_YAML.format(name="kv", color="red") + "  bogus: 1\n"
    out = kubectl("apply", "-n", namespace, "-f", "-", input=doc, check=False)
    assert out.returncode != 0
    assert "bogus" in out.stderr


def test_kubectl_apply_invalid_value_reports_field(kubectl, widget_crd, namespace):
    out = kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        check=False,
        input=WIDGET_YAML.format(name="kbad", color="purple"),
    )
    assert out.returncode != 0
    assert "spec.color" in out.stderr


def test_kubectl_get_shows_printer_columns(kubectl, custom, namespace):
    create_widget(custom, namespace, "kg", replicas=2)
    out = kubectl("get", PLURAL, "-n", namespace)
    header, row = out.stdout.splitlines()[:2]
    assert header.split() == ["NAME", "COLOR", "REPLICAS", "PHASE", "AGE"]
    assert row.split()[:3] == ["kg", "red", "2"]


def test_server_answers_table_when_asked(k8s_api, custom, namespace):
    create_widget(custom, namespace, "tb")
    code, body, _ = raw(
        k8s_api,
        "GET",
        f"/apis/{GROUP}/v1/namespaces/{namespace}/{PLURAL}",
        accept="application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    )
    assert code == 200
    assert body["kind"] == "Table"
    assert [c["name"] for c in body["columnDefinitions"]][:3] == ["Name", "Color", "Replicas"]
    assert body["rows"][0]["cells"][:2] == ["tb", "red"]


def test_kubectl_get_by_short_name_and_category(kubectl, custom, namespace):
    create_widget(custom, namespace, "sn")
    assert "sn" in kubectl("get", "wdg", "-n", namespace).stdout
    assert "sn" in kubectl("get", "conformance", "-n", namespace).stdout


def test_kubectl_get_yaml_round_trips(kubectl, custom, namespace):
    create_widget(custom, namespace, "ky", replicas=4)
    doc = yaml.safe_load(kubectl("get", PLURAL, "ky", "-n", namespace, "-o", "yaml").stdout)
    assert doc["kind"] == "Widget"
    assert doc["spec"]["replicas"] == 4
    assert doc["metadata"]["uid"]


def test_kubectl_get_watch_prints_changes_until_request_timeout(kubectl, custom, namespace):
    create_widget(custom, namespace, "kw")

    def later():
        time.sleep(1.0)
        custom.patch_namespaced_custom_object(
            GROUP, "v1", namespace, PLURAL, "kw", {"spec": {"color": "green"}}
        )

    threading.Thread(target=later, daemon=True).start()
    out = kubectl(
        "get",
        PLURAL,
        "-n",
        namespace,
        "-w",
        "--request-timeout=4s",
        "--output-watch-events",
        check=False,
        timeout=30,
    )
    assert "ADDED" in out.stdout
    assert "MODIFIED" in out.stdout and "green" in out.stdout


def test_kubectl_explain_reads_field_descriptions(kubectl, widget_crd):
    out = kubectl("explain", f"{PLURAL}.spec.rollout")
    assert "How new versions are rolled out." in out.stdout
    assert "steps" in out.stdout


def test_kubectl_wait_for_condition_ready(kubectl, custom, namespace):
    create_widget(custom, namespace, "kr")

    def later():
        time.sleep(1.0)
        custom.patch_namespaced_custom_object_status(
            GROUP,
            "v1",
            namespace,
            PLURAL,
            "kr",
            {
                "status": {
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "Done",
                            "message": "ok",
                            "lastTransitionTime": "2026-01-01T00:00:00Z",
                        }
                    ]
                }
            },
        )

    threading.Thread(target=later, daemon=True).start()
    out = kubectl(
        "wait",
        "--for=condition=Ready",
        f"{PLURAL}/kr",
        "-n",
        namespace,
        "--timeout=30s",
        timeout=60,
    )
    assert "condition met" in out.stdout


def test_kubectl_delete_removes_object(kubectl, custom, namespace):
    create_widget(custom, namespace, "kd")
    kubectl("delete", PLURAL, "kd", "-n", namespace)
    assert "kd" not in kubectl("get", PLURAL, "-n", namespace).stdout


def test_kubectl_apply_server_side_records_kubectl_manager(kubectl, custom, namespace):
    _apply(kubectl, namespace, WIDGET_YAML.format(name="ss", color="red"), "--server-side")
    obj = get_widget(custom, namespace, "ss")
    assert obj["spec"]["replicas"] == 3
    assert any(
        m["manager"] == "kubectl" and m["operation"] == "Apply"
        for m in obj["metadata"]["managedFields"]
    )


def test_kubectl_apply_deployment_merges_containers(kubectl, k8s_api, namespace):
    from kubernetes import client

    dep = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: a, image: "{image}"}}]
"""
    _apply(kubectl, namespace, dep.format(image="nginx:1"))
    _apply(kubectl, namespace, dep.format(image="nginx:2"))
    got = client.AppsV1Api(k8s_api).read_namespaced_deployment("web", namespace)
    assert [c.image for c in got.spec.template.spec.containers] == ["nginx:2"]
    assert got.metadata.generation == 2


def test_kubectl_applies_its_own_crd_file(kubectl, tmp_path):
    crd = json.loads(json.dumps(WIDGET_CRD))
    path = tmp_path / "crd.yaml"
    path.write_text(yaml.safe_dump(crd))
    out = kubectl("apply", "-f", str(path))
    assert "customresourcedefinition.apiextensions.k8s.io/widgets.conformance.drover.dev" in (
        out.stdout
    )


def test_kubectl_apply_drover_crds_and_examples(kubectl):
    if not list((ROOT / "crds").glob("*.yaml")):
        pytest.fail("crds/*.yaml are missing: run make crds")
    out = kubectl("apply", "-f", str(ROOT / "crds"))
    assert out.stdout.count("customresourcedefinition") == len(list((ROOT / "crds").glob("*.yaml")))
    examples = sorted((ROOT / "examples").glob("*.yaml"))
    if not examples:
        pytest.fail("examples/*.yaml are missing: they are part of the project")
    # The examples name their namespace (default); they are removed again at the end.
    try:
        out = kubectl("apply", "-f", str(examples[0]))
        assert "created" in out.stdout or "configured" in out.stdout
        assert "drover.dev" in kubectl("get", "drover", "-o", "name").stdout
    finally:
        kubectl("delete", "--ignore-not-found", "-f", str(examples[0]))


def test_kubectl_explain_infsvc_rollout(kubectl):
    if not list((ROOT / "crds").glob("*inferenceservices*.yaml")):
        pytest.fail("the InferenceService CRD is missing: run make crds")
    kubectl("apply", "-f", str(ROOT / "crds"))
    out = kubectl("explain", "infsvc.spec.rollout")
    assert "KIND:" in out.stdout and "InferenceService" in out.stdout
    assert "FIELDS:" in out.stdout


def test_kubectl_get_builtin_kinds_shows_their_columns(kubectl, core, namespace):
    core.create_namespaced_pod(
        namespace,
        {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
    )
    header, row = kubectl("get", "pods", "-n", namespace).stdout.splitlines()[:2]
    assert header.split()[:4] == ["NAME", "READY", "STATUS", "RESTARTS"]
    assert row.split()[:3] == ["p", "0/1", "Pending"]
    out = kubectl("get", "namespace", namespace).stdout
    assert "Active" in out


def test_kubectl_reapplying_a_changed_crd_updates_it_in_place(kubectl, k8s_api, tmp_path):
    from kubernetes import client

    crd = json.loads(json.dumps(WIDGET_CRD))
    crd["metadata"]["name"] = f"sprockets.{GROUP}"
    crd["spec"]["names"] = {"plural": "sprockets", "singular": "sprocket", "kind": "Sprocket"}
    path = tmp_path / "crd.yaml"
    path.write_text(yaml.safe_dump(crd))
    kubectl("apply", "-f", str(path))
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["properties"]["color"]["description"] = "Changed by the test."
    path.write_text(yaml.safe_dump(crd))
    assert "configured" in kubectl("apply", "-f", str(path)).stdout
    got = client.ApiextensionsV1Api(k8s_api).read_custom_resource_definition(
        crd["metadata"]["name"]
    )
    version = got.spec.versions[0]
    assert (
        version.schema.open_apiv3_schema.properties["spec"].properties["color"].description
        == "Changed by the test."
    )
    assert [c.name for c in version.additional_printer_columns][:2] == ["Color", "Replicas"]
    assert version.subresources.scale.spec_replicas_path == ".spec.replicas"


def test_kubectl_diff_shows_change_without_applying_it(kubectl, custom, namespace):
    _apply(kubectl, namespace, WIDGET_YAML.format(name="df", color="red"))
    out = kubectl(
        "diff", "-n", namespace, "-f", "-", check=False,
        input=WIDGET_YAML.format(name="df", color="blue"),
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert "+  color: blue" in out.stdout
    assert get_widget(custom, namespace, "df")["spec"]["color"] == "red"


def test_kubectl_imperative_create_of_simple_kinds(kubectl, core, namespace):
    kubectl("create", "configmap", "cfg", "-n", namespace, "--from-literal=a=b")
    kubectl("create", "secret", "generic", "sec", "-n", namespace, "--from-literal=token=abc")
    kubectl("create", "serviceaccount", "robot", "-n", namespace)
    assert core.read_namespaced_config_map("cfg", namespace).data == {"a": "b"}
    assert core.read_namespaced_secret("sec", namespace).data == {"token": "YWJj"}
    assert core.read_namespaced_service_account("robot", namespace).metadata.name == "robot"

"""The local Ray executor deploys RayServices on the local Serve proxy under `/<ns>/<name>` and
writes KubeRay's RayService status; config changes apply in place; deletion removes the app.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client
from sandbox.tests.local.helpers import APPS_DIR, RayExec, assert_valid_status, wait_for

from drover.builders.raycluster import Mount, Placement, build_ray_cluster_spec

pytestmark = pytest.mark.timeout(240)
NAME = "echo"


def serve_config(suffix: str) -> str:
    app = {
        "name": "chat",
        "route_prefix": "/",
        "import_path": "drover_test_echo:app_builder",
        "args": {"greetingFile": "/models/greetings/hello.txt"},
        "deployments": [
            {
                "name": "Echo",
                "num_replicas": 1,
                "user_config": {"suffix": suffix},
                "ray_actor_options": {"num_cpus": 0.5},
            }
        ],
    }
    return yaml.safe_dump({"applications": [app]})


def get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except OSError:
        return 0, None


@pytest.fixture(scope="module")
def service(k8s_api, custom, rayexec: RayExec) -> Iterator[dict[str, Any]]:
    """One RayService shaped as the operator builds one, in a namespace of its own."""
    ns = f"t-{uuid.uuid4().hex[:10]}"
    client.CoreV1Api(k8s_api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=ns))
    )
    greetings = rayexec.data_dir / "pvc" / ns / "greetings"
    greetings.mkdir(parents=True)
    (greetings / "hello.txt").write_text("hello from the claim\n")
    cluster = build_ray_cluster_spec(
        image="local",
        placement=Placement(class_name="cpu", cpu="1", memory="1Gi"),
        mounts=[Mount("greetings")],
        env={"PYTHONPATH": str(APPS_DIR)},
        serve=True,
    )
    manifest = {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": NAME},
        "spec": {"serveConfigV2": serve_config("one"), "rayClusterConfig": cluster},
    }
    custom.create_namespaced_custom_object("ray.io", "v1", ns, "rayservices", manifest)
    yield {"namespace": ns, "url": f"http://127.0.0.1:{rayexec.serve_port}/{ns}/{NAME}"}
    try:
        custom.delete_namespaced_custom_object("ray.io", "v1", ns, "rayservices", NAME)
    except client.ApiException as exc:
        if exc.status != 404:
            raise


def get_status(custom, ns: str) -> dict[str, Any]:
    return (
        custom.get_namespaced_custom_object("ray.io", "v1", ns, "rayservices", NAME).get("status")
        or {}
    )


def test_rayservice_becomes_ready_and_answers_under_its_prefix(custom, service, rayexec):
    ns = service["namespace"]
    st = wait_for(
        lambda: (s := get_status(custom, ns)).get("serviceStatus") == "Running" and s,
        150,
        "the RayService to be Ready",
        rayexec,
    )

    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "NonZeroServeEndpoints")
    assert st["numServeEndpoints"] == 1 and st["observedGeneration"] == 1
    app = st["activeServiceStatus"]["applicationStatuses"]["chat"]
    assert app["status"] == "RUNNING"
    assert app["serveDeploymentStatuses"]["Echo"]["status"] == "HEALTHY"
    assert_valid_status("rayservices", st)
    code, body = get_json(service["url"] + "/")
    assert code == 200, body
    assert body["greeting"] == "hello from the claim" and body["suffix"] == "one"


def test_serve_config_change_is_applied_in_place(custom, service, rayexec):
    ns = service["namespace"]
    wait_for(lambda: get_json(service["url"])[0] == 200, 150, "the service to answer", rayexec)
    before = get_json(service["url"])[1]
    custom.patch_namespaced_custom_object(
        "ray.io", "v1", ns, "rayservices", NAME, {"spec": {"serveConfigV2": serve_config("two")}}
    )

    after = wait_for(
        lambda: (b := get_json(service["url"])[1]) and b["suffix"] == "two" and b,
        90,
        "the new user_config to reach the replica",
        rayexec,
    )
    assert after["pid"] == before["pid"], "the same replica process serves the new config"
    st = wait_for(
        lambda: (s := get_status(custom, ns)).get("observedGeneration") == 2 and s,
        30,
        "observedGeneration 2",
        rayexec,
    )
    assert st["serviceStatus"] == "Running"


def test_an_appended_worker_group_updates_the_cluster_in_place(custom, service, rayexec):
    # KubeRay v1.7.0 rayservice_controller.go isClusterSpecHashEqual(partial=true): groups
    # appended at the end update the running cluster, no new one. A replica asking for a custom
    # resource only the new group offers (rayStartParams.resources) runs: locally the one node
    # stands for that group's pods.
    ns = service["namespace"]
    wait_for(lambda: get_json(service["url"])[0] == 200, 150, "the service to answer", rayexec)
    obj = custom.get_namespaced_custom_object("ray.io", "v1", ns, "rayservices", NAME)
    cluster_before = obj["status"]["activeServiceStatus"]["rayClusterName"]
    spec = obj["spec"]["rayClusterConfig"]
    extra = json.loads(json.dumps(spec["workerGroupSpecs"][0]))
    extra["groupName"] = "cpu-1"
    extra["resources"] = {"drover-claim-other": "1000"}
    spec["workerGroupSpecs"].append(extra)
    config = yaml.safe_load(serve_config("three"))
    config["applications"][0]["deployments"][0]["ray_actor_options"]["resources"] = {
        "drover-claim-other": 0.001
    }
    custom.patch_namespaced_custom_object(
        "ray.io",
        "v1",
        ns,
        "rayservices",
        NAME,
        {"spec": {"rayClusterConfig": spec, "serveConfigV2": yaml.safe_dump(config)}},
    )

    wait_for(
        lambda: (b := get_json(service["url"])[1]) and b["suffix"] == "three",
        120,
        "the replica on the appended group's resource",
        rayexec,
    )
    st = get_status(custom, ns)
    assert st["activeServiceStatus"]["rayClusterName"] == cluster_before
    assert not (st.get("pendingServiceStatus") or {}).get("rayClusterName")
    upgrading = next(c for c in st["conditions"] if c["type"] == "UpgradeInProgress")
    assert upgrading["status"] == "False"


def test_deleting_the_rayservice_removes_its_serve_application(custom, service, rayexec):
    ns = service["namespace"]
    wait_for(lambda: get_json(service["url"])[0] == 200, 150, "the service to answer", rayexec)
    custom.delete_namespaced_custom_object("ray.io", "v1", ns, "rayservices", NAME)

    wait_for(lambda: get_json(service["url"])[0] == 404, 60, "the route to disappear", rayexec)
    dashboard = rayexec.proc.args[rayexec.proc.args.index("--dashboard-url") + 1]

    def gone() -> bool:
        apps = get_json(f"{dashboard}/api/serve/applications/")[1]["applications"]
        return not [name for name in apps if name.startswith(f"{ns}--")]

    wait_for(gone, 60, "Serve to delete the application", rayexec)

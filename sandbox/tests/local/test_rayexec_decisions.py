"""The Ray executor's pure parts: KubeRay's RayJob state machine, volume mapping, Serve renaming
and the RayService status (no Ray, no control plane)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sandbox.tests.local.helpers import assert_valid_status

from drover.builders.raycluster import Mount, Placement, build_ray_cluster_spec, secret_path
from drover_sandbox.rayexec import jobstate, servestate
from drover_sandbox.rayexec.jobstate import Action, Cluster, RayJobInfo
from drover_sandbox.rayexec.volumes import build_volume_map, rewrite_env

NOW = dt.datetime(2026, 11, 22, 8, 0, 0, tzinfo=dt.UTC)
CLUSTER = Cluster("127.0.0.1:8265")


def rayjob(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "fetch", "namespace": "ns", "uid": "0123456789ab", "generation": 1},
        "spec": {"entrypoint": "python -m x", "runtimeEnvYAML": "env_vars: {}", **spec},
        "status": status or {},
    }


def step(obj, info=None, existing=(), now=NOW):
    return jobstate.next_rayjob(obj, info, existing_ids=set(existing), cluster=CLUSTER, now=now)


def test_new_rayjob_initializes_with_a_stable_submission_id():
    st, action = step(rayjob())
    assert action is Action.NONE
    assert st["jobDeploymentStatus"] == "Initializing"
    assert st["jobId"] == "ns-fetch-01234567"
    assert st["dashboardURL"] == "127.0.0.1:8265" and st["startTime"] == "2026-11-22T08:00:00Z"
    assert_valid_status("rayjobs", st)


def test_initializing_without_a_ray_job_submits_and_with_one_runs():
    init, _ = step(rayjob())
    _, action = step(rayjob(init))
    assert action is Action.SUBMIT
    st, action = step(rayjob(init), RayJobInfo("RUNNING", "", 1795331341000))
    assert (st["jobDeploymentStatus"], st["jobStatus"], action) == (
        "Running",
        "RUNNING",
        Action.NONE,
    )
    assert st["rayJobInfo"]["startTime"].endswith("Z")


def test_failed_job_retries_while_under_backoff_limit_with_a_new_id():
    running, _ = step(rayjob(), None)
    running = {**running, "jobDeploymentStatus": "Running"}
    st, _ = step(rayjob(running, backoffLimit=1), RayJobInfo("FAILED", "exit 3"))
    assert (st["jobDeploymentStatus"], st["failed"]) == ("Retrying", 1)
    again, _ = step(rayjob(st, backoffLimit=1), None, existing={"ns-fetch-01234567"})
    assert again["jobId"] == "ns-fetch-01234567-2" and again["failed"] == 1
    again = {**again, "jobDeploymentStatus": "Running"}
    final, _ = step(rayjob(again, backoffLimit=1), RayJobInfo("FAILED", "exit 3"))
    assert (final["jobDeploymentStatus"], final["reason"], final["failed"]) == (
        "Failed",
        "AppFailed",
        2,
    )


def test_deadline_fails_without_retry_and_stops_the_job():
    running = {**step(rayjob())[0], "jobDeploymentStatus": "Running"}
    later = NOW + dt.timedelta(seconds=11)
    st, action = step(
        rayjob(running, activeDeadlineSeconds=10, backoffLimit=3), RayJobInfo("RUNNING"), now=later
    )
    assert (st["jobDeploymentStatus"], st["reason"], action) == (
        "Failed",
        "DeadlineExceeded",
        Action.STOP,
    )


def test_suspend_stops_a_running_job_then_clears_it():
    running = {**step(rayjob())[0], "jobDeploymentStatus": "Running"}
    st, action = step(rayjob(running, suspend=True), RayJobInfo("RUNNING"))
    assert (st["jobDeploymentStatus"], action) == ("Suspending", Action.STOP)
    st, action = step(rayjob(st, suspend=True), RayJobInfo("STOPPED"))
    assert st["jobDeploymentStatus"] == "Suspended" and "jobId" not in st


def test_a_finished_ray_job_is_deleted_only_after_rays_monitor_has_seen_it_end():
    # Ray 2.60, ray/dashboard/modules/job/job_manager.py JobManager._monitor_job_internal: once the
    # supervisor actor exits, the monitor finds no status for a deleted job and writes FAILED via
    # common.py JobInfoStorageClient.put_status, recreating the record without its metadata.
    # JobManager.delete_job refuses non-terminal jobs.
    end = 1_000_000
    stopped = RayJobInfo("STOPPED", end_time=end)
    assert not jobstate.ready_to_delete(RayJobInfo("RUNNING"), end + 60_000)
    assert not jobstate.ready_to_delete(stopped, end + 2_000)
    assert not jobstate.ready_to_delete(stopped, end + 14_999)
    assert jobstate.ready_to_delete(stopped, end + 15_000)
    assert jobstate.ready_to_delete(
        RayJobInfo("SUCCEEDED"), end
    )  # no end time: nothing to wait for


def test_the_driver_is_placed_like_ray_places_an_entrypoint_in_the_rayjobs_own_cluster():
    # KubeRay v1.7.0 common/pod.go generateRayStartCommand / addWellKnownAcceleratorResources:
    # a node advertises num-cpus from rayStartParams or its CPU limit, num-gpus from *gpu limits.
    from drover_sandbox.rayexec.entrypoint import node_resources, unplaceable_entrypoint

    cluster = build_ray_cluster_spec(
        image="x",
        placement=Placement(class_name="l4", resource_name="nvidia.com/gpu", count=2, cpu="4"),
    )
    assert node_resources(cluster["headGroupSpec"]) == {"CPU": 0.0, "GPU": 0.0}
    assert node_resources(cluster["workerGroupSpecs"][0]) == {"CPU": 4.0, "GPU": 2.0}

    def spec(**entry: float) -> dict[str, Any]:
        return {"rayClusterSpec": cluster, **entry}

    assert unplaceable_entrypoint(spec()) is None  # on the head
    assert unplaceable_entrypoint(spec(entrypointNumCpus=4, entrypointNumGpus=2)) is None
    assert "entrypointNumGpus=3" in (unplaceable_entrypoint(spec(entrypointNumGpus=3)) or "")
    assert unplaceable_entrypoint(spec(entrypointNumCpus=8)) is not None


def test_status_patch_is_none_when_nothing_changed_and_nulls_dropped_keys():
    assert jobstate.status_patch({"a": 1}, {"a": 1}) is None
    assert jobstate.status_patch({"a": 1, "b": 2}, {"a": 3}) == {"a": 3, "b": None}


def cluster_spec() -> dict[str, Any]:
    return build_ray_cluster_spec(
        image="local",
        placement=Placement(class_name="cpu"),
        mounts=[Mount("base-cache"), Mount("idx", path="/data/idx")],
        secrets=["hf-token"],
    )


def test_mount_paths_and_the_model_root_map_to_data_dir():
    vm = build_volume_map(cluster_spec(), "ns", "/d")
    assert (
        vm.rewrite("/models/base-cache/sha/config.json") == "/d/pvc/ns/base-cache/sha/config.json"
    )
    assert vm.rewrite("/models") == "/d/pvc/ns"
    assert vm.rewrite("/data/idx/index.faiss") == "/d/pvc/ns/idx/index.faiss"
    assert vm.rewrite(secret_path("hf-token", "token")) == "/d/secrets/ns/hf-token/token"
    assert vm.rewrite("/modelsX/a") == "/modelsX/a" and vm.rewrite("hf://org/x") == "hf://org/x"
    config = json.dumps({"cacheRoot": "/models/base-cache", "nested": ["/models/idx"]})
    env = rewrite_env({"DROVER_WORKER_CONFIG": config}, vm, ("DROVER_WORKER_CONFIG",))
    assert json.loads(env["DROVER_WORKER_CONFIG"]) == {
        "cacheRoot": "/d/pvc/ns/base-cache",
        "nested": ["/d/pvc/ns/idx"],
    }


def rayservice(config: str, status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "bot", "namespace": "ns", "generation": 2},
        "spec": {"serveConfigV2": config, "rayClusterConfig": cluster_spec()},
        "status": status or {},
    }


CONFIG = """
applications:
- name: bot
  route_prefix: /
  import_path: drover_workers.serve.app:build_router
  args: {service: {name: bot}}
  deployments:
  - name: router
    user_config: {versions: [v1, v2], routes: {v2: {engine: v1, adapterPath: /models/lora/x}}}
- name: bot-v1
  route_prefix: null
  import_path: drover_workers.serve.app:build_model
  args: {version: {name: v1, modelPath: /models/base-cache/sha}}
  deployments:
  - name: model
    user_config: {adapters: {v2: {adapterPath: /models/lora/x}}}
"""


def test_serve_apps_are_renamed_routed_and_rewritten():
    vm = build_volume_map(cluster_spec(), "ns", "/d")
    apps = servestate.build_serve_apps(rayservice(CONFIG), vm, {"HF_ENDPOINT": "http://hub"})
    original, app = apps.apps["ns--bot--bot"]
    assert original == "bot" and app["route_prefix"] == "/ns/bot"
    assert app["runtime_env"]["env_vars"]["HF_ENDPOINT"] == "http://hub"
    # A version application stays unexposed, and its name stays `<router app>-<version>`.
    original, version = apps.apps["ns--bot--bot-v1"]
    assert original == "bot-v1" and version["route_prefix"] is None
    assert version["args"]["version"]["modelPath"] == "/d/pvc/ns/base-cache/sha"
    # Paths in user_configs too (a LoRA version's adapter): on a pod they are mount paths.
    (router,) = app["deployments"]
    assert router["user_config"]["routes"]["v2"]["adapterPath"] == "/d/pvc/ns/lora/x"
    (model,) = version["deployments"]
    assert model["user_config"]["adapters"]["v2"]["adapterPath"] == "/d/pvc/ns/lora/x"
    config = servestate.build_deploy_config({"ns/bot": apps}, 8123)
    assert config["http_options"] == {"host": "127.0.0.1", "port": 8123}


def test_rayservice_status_ready_only_when_every_app_runs_and_stays_ready_while_updating():
    vm = build_volume_map(cluster_spec(), "ns", "/d")
    obj = rayservice(CONFIG)
    apps = servestate.build_serve_apps(obj, vm, {})
    serve = {
        "ns--bot--bot": {
            "status": "DEPLOYING",
            "deployments": {"router": {"status": "UPDATING", "message": ""}},
        },
        "ns--bot--bot-v1": {
            "status": "RUNNING",
            "deployments": {"model": {"status": "HEALTHY", "message": ""}},
        },
    }
    st = servestate.next_rayservice_status(obj, apps, serve, now=NOW)
    assert st["serviceStatus"] == "" and st["conditions"][0]["reason"] == "Initializing"
    serve["ns--bot--bot"]["status"] = "RUNNING"
    st = servestate.next_rayservice_status(rayservice(CONFIG, st), apps, serve, now=NOW)
    assert (st["serviceStatus"], st["numServeEndpoints"]) == ("Running", 1)
    assert st["activeServiceStatus"]["applicationStatuses"]["bot"]["status"] == "RUNNING"
    model = st["activeServiceStatus"]["applicationStatuses"]["bot-v1"]["serveDeploymentStatuses"]
    assert model["model"]["status"] == "HEALTHY"
    assert_valid_status("rayservices", st)
    serve["ns--bot--bot"]["status"] = "DEPLOYING"
    updating = servestate.next_rayservice_status(rayservice(CONFIG, st), apps, serve, now=NOW)
    assert updating["serviceStatus"] == "Running"
    serve["ns--bot--bot"]["status"] = "DEPLOY_FAILED"
    failed = servestate.next_rayservice_status(rayservice(CONFIG, st), apps, serve, now=NOW)
    ready = failed["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("False", "ZeroServeEndpoints")


def test_a_changed_cluster_config_is_served_by_the_old_cluster_until_the_new_one_takes_over():
    # KubeRay v1.7.0 rayservice_controller.go: `Reconcile` reconciles no Serve application of the
    # active cluster once its hash differs (`shouldPrepareNewCluster`), `calculateStatus` then
    # reports none and a pending cluster, `calculateConditions` sets UpgradeInProgress.
    from drover_sandbox.rayexec.upgrade import NEW_CLUSTER_SECONDS, cluster_name, plan_upgrade

    vm = build_volume_map(cluster_spec(), "ns", "/d")
    obj = rayservice(CONFIG)
    apps = servestate.build_serve_apps(obj, vm, {})
    serve = {
        name: {"status": "RUNNING", "deployments": {"model": {"status": "HEALTHY"}}}
        for name in apps.apps
    }
    first = plan_upgrade(obj, NOW)
    assert (first.active, first.pending) == (cluster_name(obj), "")
    st = servestate.next_rayservice_status(obj, apps, serve, now=NOW, upgrade=first)
    assert st["activeServiceStatus"]["rayClusterName"] == cluster_name(obj)

    changed = rayservice(CONFIG, st)
    changed["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartParams"]["num-cpus"] = "1"
    scaled = rayservice(CONFIG, st)
    scaled["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["replicas"] = 7
    assert plan_upgrade(scaled, NOW).pending == "", "replica counts never rebuild"

    up = plan_upgrade(changed, NOW)
    assert (up.active, up.pending) == (cluster_name(obj), cluster_name(changed))
    during = servestate.next_rayservice_status(changed, apps, serve, now=NOW, upgrade=up)
    assert during["activeServiceStatus"] == {"rayClusterName": cluster_name(obj)}
    assert during["pendingServiceStatus"] == {"rayClusterName": cluster_name(changed)}
    upgrading = {c["type"]: c for c in during["conditions"]}["UpgradeInProgress"]
    assert (upgrading["status"], upgrading["reason"]) == ("True", "BothActivePendingClustersExist")
    assert during["serviceStatus"] == "Running", "the active cluster keeps serving"
    assert_valid_status("rayservices", during)

    later = NOW + dt.timedelta(seconds=NEW_CLUSTER_SECONDS)
    assert plan_upgrade(
        rayservice(CONFIG, during) | {"spec": changed["spec"]}, later - dt.timedelta(seconds=1)
    ).pending
    done = plan_upgrade(rayservice(CONFIG, during) | {"spec": changed["spec"]}, later)
    assert (done.active, done.pending) == (cluster_name(changed), "")

    kept = rayservice(CONFIG, st)
    kept["spec"] = {**changed["spec"], "upgradeStrategy": {"type": "None"}}
    assert plan_upgrade(kept, NOW) == plan_upgrade(kept, NOW).__class__(active=cluster_name(obj))


def test_worker_groups_appended_update_the_running_cluster_in_place():
    # KubeRay v1.7.0 rayservice_controller.go isClusterSpecHashEqual(partial=true): the spec
    # without the appended groups equals the running one, so no new cluster is prepared.
    import copy

    from drover_sandbox.rayexec.upgrade import cluster_name, plan_upgrade

    obj = rayservice(CONFIG)
    running = copy.deepcopy(obj["spec"]["rayClusterConfig"])
    st = {"activeServiceStatus": {"rayClusterName": cluster_name(obj)}}
    grown = rayservice(CONFIG, st)
    extra = copy.deepcopy(running["workerGroupSpecs"][0])
    extra["groupName"] = "cpu-1"
    grown["spec"]["rayClusterConfig"]["workerGroupSpecs"].append(extra)
    in_place = plan_upgrade(grown, NOW, active_spec=running)
    assert (in_place.active, in_place.pending) == (cluster_name(obj), "")
    assert plan_upgrade(grown, NOW).pending, "without the running spec it cannot tell"


def test_resources_a_worker_group_offers_are_met_by_the_one_local_node():
    # KubeRay passes rayStartParams.resources to `ray start --resources=` (common/pod.go); a
    # replica asking for them lands on such a pod. Locally one node stands for every pod.
    spec = cluster_spec()
    spec["workerGroupSpecs"][0]["resources"] = {"drover-claim-base-cache": "1k", "cpu": "2"}
    assert servestate.offered_resources(spec) == {"drover-claim-base-cache"}
    quoted = cluster_spec()  # the older form: rayStartParams, JSON in shell quotes
    quoted["workerGroupSpecs"][0]["rayStartParams"] = {"resources": """'{"x": 1}'"""}
    assert servestate.offered_resources(quoted) == {"x"}
    config = """
applications:
- name: bot-v1
  route_prefix: null
  import_path: drover_workers.serve.app:build_model
  deployments:
  - name: model
    ray_actor_options: {num_cpus: 1, resources: {drover-claim-base-cache: 0.001, other: 1}}
    placement_group_bundles: [{CPU: 1, drover-claim-base-cache: 0.001}]
"""
    obj = rayservice(config)
    obj["spec"]["rayClusterConfig"] = spec
    apps = servestate.build_serve_apps(obj, build_volume_map(spec, "ns", "/d"), {})
    (deployment,) = apps.apps["ns--bot--bot-v1"][1]["deployments"]
    assert deployment["ray_actor_options"] == {"num_cpus": 1, "resources": {"other": 1}}
    assert deployment["placement_group_bundles"] == [{"CPU": 1}]


def test_unparsable_serve_config_is_a_validation_failure():
    vm = build_volume_map(cluster_spec(), "ns", "/d")
    obj = rayservice("applications: [oops")
    apps = servestate.build_serve_apps(obj, vm, {})
    st = servestate.next_rayservice_status(obj, apps, {}, now=NOW)
    assert st["conditions"][0]["reason"] == "ValidationFailed"
    assert "spec.serveConfigV2" in st["conditions"][0]["message"]
    # KubeRay v1.7.0 rayservice_controller.go Reconcile: only Ready and lastUpdateTime change.
    assert set(st) == {"conditions", "lastUpdateTime"}
    assert (
        servestate.next_rayservice_status(rayservice("applications: [oops", st), apps, {}, now=NOW)
        == st
    )


def test_rayservice_waiting_for_a_secret_says_which():
    obj = rayservice(CONFIG)
    apps = servestate.ServeApps(waiting="waiting for Secret(s) api-keys")
    st = servestate.next_rayservice_status(obj, apps, {}, now=NOW)
    ready = st["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("False", "Initializing")
    assert "api-keys" in ready["message"] and st["serviceStatus"] == ""

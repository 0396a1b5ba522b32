"""The Ray executor keeps a finished RayJob's cluster for its TTL, then lets it go, as KubeRay
v1.7.0 does: pure parts plus the executor's sweep against a fake Ray (no Ray, no control plane).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from kubernetes import client
from sandbox.tests.local.helpers import NOW, rayjob, step

from drover.builders.rayjob import CLUSTER_TTL_SECONDS
from drover_sandbox.rayexec import jobstate
from drover_sandbox.rayexec.executor import Executor, Settings
from drover_sandbox.rayexec.jobstate import Action, RayJobInfo
from drover_sandbox.rayexec.rayapi import OWNER_KEY, UID_KEY

# -- TTL: rayjob_controller.go (v1.7.0) Reconcile, case Complete/Failed →
#    handleShutdownAfterJobFinishes: shutdownTime = status.endTime + ttlSecondsAfterFinished;
#    before it, requeue; at or after it, deleteClusterResources (the RayCluster only: the RayJob
#    and the submitter Job stay, and the status is not written, so rayClusterName, dashboardURL
#    and jobId keep their values). A clusterSelector RayJob never deletes its cluster.


def finished(deployment: str = "Complete", **spec: Any) -> dict:
    status = {
        "jobDeploymentStatus": deployment,
        "jobStatus": "SUCCEEDED" if deployment == "Complete" else "FAILED",
        "jobId": "ns-fetch-01234567",
        "rayClusterName": "fetch-local",
        "dashboardURL": "127.0.0.1:8265",
        "startTime": "2026-11-22T07:58:00Z",
        "endTime": "2026-11-22T08:00:00Z",
    }
    spec = {"shutdownAfterJobFinishes": True, "ttlSecondsAfterFinished": 60, **spec}
    return rayjob(status=status, **spec)


@pytest.mark.parametrize(
    ("obj", "after", "expired"),
    [
        (finished(), 59, False),
        (finished(), 60, True),
        (finished("Failed"), 60, True),
        (finished(ttlSecondsAfterFinished=0), 0, True),
        (finished(shutdownAfterJobFinishes=False), 3600, False),
        (finished(clusterSelector={"ray.io/cluster": "shared"}), 3600, False),
        (finished("Running"), 3600, False),
        (rayjob(status={"jobDeploymentStatus": "Complete"}), 3600, False),  # no endTime
    ],
)
def test_a_finished_cluster_lives_until_end_time_plus_its_ttl(
    obj: dict, after: int, expired: bool
) -> None:
    assert jobstate.cluster_expired(obj, NOW + dt.timedelta(seconds=after)) is expired


def test_the_rayjob_status_is_left_as_it_was_when_the_cluster_goes() -> None:
    obj = finished()
    st, action = step(obj, None, now=NOW + dt.timedelta(hours=1))
    assert action is Action.NONE
    kept = ("jobDeploymentStatus", "jobStatus", "jobId", "rayClusterName", "dashboardURL")
    assert {k: st[k] for k in kept} == {k: obj["status"][k] for k in kept}


def test_drovers_ttl_is_short_and_outlasts_rays_resurrection_window() -> None:
    # The executor deletes the Ray job at the TTL; Ray recreates a record deleted within
    # DELETE_AFTER_END_SECONDS of the job's end (see jobstate.ready_to_delete).
    assert jobstate.DELETE_AFTER_END_SECONDS <= CLUSTER_TTL_SECONDS <= 60


class FakeRay:
    dashboard_hostport = "127.0.0.1:8265"

    def __init__(self) -> None:
        self.deleted: list[str] = []
        self.stopped: list[str] = []

    def delete(self, job_id: str) -> None:
        self.deleted.append(job_id)

    def stop(self, job_id: str) -> None:
        self.stopped.append(job_id)


def test_the_executor_deletes_a_ray_job_once_its_clusters_ttl_is_over() -> None:
    ray = FakeRay()
    settings = Settings(data_dir="/tmp", serve_port=0, local_env={}, owner="me")
    executor = Executor(client.ApiClient(), ray, settings)  # type: ignore[arg-type]
    wall = dt.datetime.now(dt.UTC)

    def job(name: str, uid: str, ended_ago: float) -> dict:
        obj = finished(ttlSecondsAfterFinished=60)
        end = jobstate.rfc3339(wall - dt.timedelta(seconds=ended_ago))
        obj["metadata"] = {**obj["metadata"], "name": name, "uid": uid}
        obj["status"] = {**obj["status"], "jobId": f"ns-{name}", "endTime": end}
        return obj

    executor.jobs.replace([job("old", "u-old", 61), job("new", "u-new", 30)])
    ended = (time.time() - 61) * 1000
    ray_jobs = {
        f"ns-{n}": (RayJobInfo("SUCCEEDED", end_time=int(ended)), {OWNER_KEY: "me", UID_KEY: u})
        for n, u in (("old", "u-old"), ("new", "u-new"))
    }
    executor._sweep(ray_jobs)
    assert ray.deleted == ["ns-old"] and ray.stopped == []

"""Local stack, Ray executor: the reconcile loop — RayJobs to Ray jobs, RayServices to Serve apps.

Runs a pass every `poll_seconds` (sooner when the watch reports a change): asks Ray once for all
jobs and all Serve applications, decides each object's next status with the pure modules, acts,
and writes the status subresource only when it changed.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from kubernetes import client

from drover_sandbox.rayexec import jobstate, servestate, upgrade
from drover_sandbox.rayexec.entrypoint import unplaceable_entrypoint
from drover_sandbox.rayexec.jobstate import Action, Cluster, RayJobInfo
from drover_sandbox.rayexec.rayapi import OWNER_KEY, UID_KEY, RayApis, RayUnavailable
from drover_sandbox.rayexec.validation import validate_rayservice_metadata
from drover_sandbox.rayexec.volumes import (
    VolumeMap,
    build_container_env,
    build_volume_map,
    ensure_volume_dirs,
    multi_attach_errors,
    rewrite_env,
)
from drover_sandbox.rayexec.watch import GROUP, VERSION, Cache, watch_forever

log = logging.getLogger("drover.rayexec")
WORKER_CONFIG_ENV = "DROVER_WORKER_CONFIG"
SERVE_REPUT_SECONDS = 15.0
STOP_RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class Settings:
    data_dir: str
    serve_port: int
    local_env: Mapping[str, str]  # HF_ENDPOINT, PATH, ... : set last, so they win
    owner: str  # identifies this control plane in Ray job metadata
    poll_seconds: float = 2.0


class Executor:
    def __init__(self, api_client: client.ApiClient, ray: RayApis, settings: Settings) -> None:
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.ray = ray
        self.settings = settings
        self.jobs = Cache("rayjobs")
        self.services = Cache("rayservices")
        self.stop = threading.Event()
        self.wake = threading.Event()
        self._last_put: dict[str, Any] | None = None
        self._last_put_at = 0.0
        self._stopped: dict[str, float] = {}
        # Ray jobs whose driver no node of their RayJob's cluster can place: what Ray reports
        # after its start timeout (see entrypoint.py), kept here since Ray never ran them.
        self._unplaceable: dict[str, RayJobInfo] = {}
        self._cluster_specs: dict[str, Any] = {}  # active cluster name -> the spec it runs

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self) -> None:
        for cache in (self.jobs, self.services):
            threading.Thread(
                target=watch_forever,
                args=(self.custom, cache, self.stop, self.wake.set),
                name=f"watch-{cache.plural}",
                daemon=True,
            ).start()
        while not self.stop.is_set():
            self.wake.wait(self.settings.poll_seconds)
            self.wake.clear()
            if self.stop.is_set():
                break
            self.run_once()

    def run_once(self) -> None:
        started = time.monotonic()
        try:
            if self.jobs.synced.is_set():
                self.reconcile_jobs()
            jobs_done = time.monotonic()
            if self.services.synced.is_set():
                self.reconcile_services()
            took = time.monotonic() - started
            if took > 3:
                log.info("slow pass: %.1fs (RayJobs %.1fs)", took, jobs_done - started)
        except RayUnavailable as exc:
            log.warning("Ray is unavailable (%s); keeping statuses, retrying", exc)
        except client.ApiException as exc:
            log.warning("control plane error %s: %s", exc.status, exc.reason)

    # -- RayJobs -----------------------------------------------------------------------------

    def reconcile_jobs(self) -> None:
        ray_jobs = self.ray.list_jobs()
        ray_jobs.update({job_id: (info, {}) for job_id, info in self._unplaceable.items()})
        for obj in self.jobs.snapshot():
            try:
                self._reconcile_job(obj, ray_jobs)
            except client.ApiException as exc:  # one bad object must not starve the others
                meta = obj["metadata"]
                log.warning(
                    "RayJob %s/%s: control plane error %s: %s",
                    meta.get("namespace"),
                    meta["name"],
                    exc.status,
                    (exc.body or exc.reason or "")[:300],
                )
        self.jobs.take_deleted()
        self._sweep(ray_jobs)

    def _sweep(self, ray_jobs: dict[str, Any]) -> None:
        """Stop Ray jobs no active RayJob wants; forget those whose RayJob is gone, or whose
        cluster KubeRay would have deleted (`jobstate.cluster_expired`: the job's TTL is over).

        KubeRay gets the same effect by deleting the RayJob's Ray cluster.
        """
        objects = self.jobs.snapshot()
        live = {str(o["metadata"].get("uid")) for o in objects}
        wall = dt.datetime.now(dt.UTC)
        expired = {
            str(o["metadata"].get("uid")) for o in objects if jobstate.cluster_expired(o, wall)
        }
        wanted = {
            str((o.get("status") or {}).get("jobId"))
            for o in objects
            if (o.get("status") or {}).get("jobDeploymentStatus") in ("Initializing", "Running")
        }
        now = time.monotonic()
        for job_id, (info, meta) in ray_jobs.items():
            if meta.get(OWNER_KEY) != self.settings.owner or job_id in wanted:
                continue
            if info.status in jobstate.TERMINAL_JOBS:
                gone = meta.get(UID_KEY) not in live
                if (gone or meta.get(UID_KEY) in expired) and jobstate.ready_to_delete(
                    info, time.time() * 1000
                ):
                    why = "its RayJob is gone" if gone else "its cluster's TTL is over"
                    log.info("deleting Ray job %s: %s", job_id, why)
                    self.ray.delete(job_id)
            elif now - self._stopped.get(job_id, 0.0) > STOP_RETRY_SECONDS:
                log.info("stopping Ray job %s (%s): no active RayJob wants it", job_id, info.status)
                self._stopped[job_id] = now
                self.ray.stop(job_id)

    def _reconcile_job(self, obj: dict[str, Any], ray_jobs: dict[str, Any]) -> None:
        cluster = Cluster(self.ray.dashboard_hostport)
        for _ in range(6):  # follow immediate transitions (New → Initializing → Running)
            old = dict(obj.get("status") or {})
            found = ray_jobs.get(str(old.get("jobId") or ""))
            info = found[0] if found else None
            now = dt.datetime.now(dt.UTC)
            new, action = jobstate.next_rayjob(
                obj, info, existing_ids=ray_jobs.keys(), cluster=cluster, now=now
            )
            if action is Action.STOP:
                self.ray.stop(str(new.get("jobId")))
            elif action is Action.SUBMIT:
                new = self._submit(obj, new, ray_jobs, now)
            patch = jobstate.status_patch(old, new)
            if patch is None:
                return
            obj = self._write_status("rayjobs", obj, patch)
            self.jobs.update_status(obj)

    def _submit(
        self, obj: dict[str, Any], st: dict[str, Any], ray_jobs: dict[str, Any], now: dt.datetime
    ) -> dict[str, Any]:
        meta, spec = obj["metadata"], obj.get("spec") or {}
        ns, job_id = meta.get("namespace", "default"), str(st["jobId"])
        volumes = build_volume_map(spec.get("rayClusterSpec") or {}, ns, self.settings.data_dir)
        missing = ensure_volume_dirs(volumes, lambda name: self._secret_data(ns, name))
        if missing:
            return {**st, "message": f"waiting for Secret(s) {', '.join(missing)} in {ns}"}
        cluster_spec = spec.get("rayClusterSpec") or {}
        blocked = multi_attach_errors(cluster_spec, meta["name"], lambda c: self._claim(ns, c))
        if blocked:  # Kubernetes leaves the pod in ContainerCreating; KubeRay waits for it
            return {**st, "message": f"waiting for volumes: {blocked[0]}"}
        unplaceable = unplaceable_entrypoint(spec)
        if unplaceable:
            millis = int(now.timestamp() * 1000)
            info = RayJobInfo("FAILED", unplaceable, millis, millis)
            self._unplaceable[job_id] = info
            ray_jobs[job_id] = (info, {})
            return st
        runtime_env = yaml.safe_load(spec.get("runtimeEnvYAML") or "{}") or {}
        runtime_env["env_vars"] = self._env(
            volumes, spec.get("rayClusterSpec") or {}, runtime_env.get("env_vars") or {}
        )
        try:
            self.ray.submit(
                job_id=job_id,
                entrypoint=str(spec["entrypoint"]),
                runtime_env=runtime_env,
                metadata={
                    OWNER_KEY: self.settings.owner,
                    UID_KEY: str(meta.get("uid")),
                    "namespace": ns,
                    "name": meta["name"],
                },
                # Checked against the job's own cluster above; not reserved on the shared Ray.
                num_gpus=float(spec.get("entrypointNumGpus") or 0) or None,
            )
        except (RuntimeError, ValueError, TypeError) as exc:
            if "already exists" in str(exc):  # a restarted executor: it was submitted before
                ray_jobs[job_id] = (RayJobInfo("PENDING"), {})
                return st
            log.warning("submitting %s/%s failed: %s", ns, meta["name"], exc)
            failed = {**st, "message": f"submitting the Ray job failed: {exc}"[:2000]}
            return jobstate.finish(failed, "Failed", now, spec, "SubmissionFailed")
        log.info("submitted Ray job %s for RayJob %s/%s", job_id, ns, meta["name"])
        ray_jobs[job_id] = (RayJobInfo("PENDING"), {})
        return st

    def _env(
        self, volumes: VolumeMap, cluster_spec: Mapping[str, Any], own: Mapping[str, Any]
    ) -> dict[str, str]:
        merged = {**build_container_env(cluster_spec), **{k: str(v) for k, v in own.items()}}
        return {**rewrite_env(merged, volumes, (WORKER_CONFIG_ENV,)), **self.settings.local_env}

    def _secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        try:
            secret = self.core.read_namespaced_secret(name, namespace)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(secret.data or {})

    def _claim(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            pvc = self.core.read_namespaced_persistent_volume_claim(name, namespace)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(self.core.api_client.sanitize_for_serialization(pvc))

    def _write_status(self, plural: str, obj: dict[str, Any], patch: dict[str, Any]) -> dict:
        meta = obj["metadata"]
        try:
            return self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, meta["namespace"], plural, meta["name"], {"status": patch}
            )
        except client.ApiException as exc:
            if exc.status == 404:  # deleted meanwhile
                return obj
            raise

    # -- RayServices -------------------------------------------------------------------------

    def _plan_upgrade(self, obj: dict[str, Any], now: dt.datetime) -> upgrade.Upgrade:
        """KubeRay's active/pending decision; remembers the spec each active cluster runs, as
        KubeRay keeps it on the RayCluster, so an in-place update is told from a rebuild."""
        active = str(
            ((obj.get("status") or {}).get("activeServiceStatus") or {}).get("rayClusterName") or ""
        )
        plan = upgrade.plan_upgrade(obj, now, self._cluster_specs.get(active))
        if not plan.pending:
            self._cluster_specs[plan.active] = (obj.get("spec") or {}).get("rayClusterConfig") or {}
        return plan

    def reconcile_services(self) -> None:
        services = self.services.snapshot()
        self.services.take_deleted()
        per_service: dict[str, servestate.ServeApps] = {}
        current = self.ray.serve_get().get("applications") or {}
        now = dt.datetime.now(dt.UTC)
        upgrades = {id(obj): self._plan_upgrade(obj, now) for obj in services}
        for obj in services:
            meta, spec = obj["metadata"], obj.get("spec") or {}
            ns = meta.get("namespace", "default")
            if upgrades[id(obj)].pending:  # KubeRay leaves the active cluster's apps alone
                per_service[f"{ns}/{meta['name']}"] = servestate.running_apps(obj, current)
                continue
            bad_name = validate_rayservice_metadata(meta)  # KubeRay deploys nothing for it
            if bad_name:
                per_service[f"{ns}/{meta['name']}"] = servestate.ServeApps(error=bad_name)
                continue
            cluster_spec = spec.get("rayClusterConfig") or {}
            volumes = build_volume_map(cluster_spec, ns, self.settings.data_dir)
            missing = ensure_volume_dirs(volumes, lambda name, ns=ns: self._secret_data(ns, name))
            env = self._env(volumes, cluster_spec, {})
            apps = servestate.build_serve_apps(obj, volumes, env)
            if missing and not apps.error:
                apps = servestate.ServeApps(waiting=f"waiting for Secret(s) {', '.join(missing)}")
            elif not apps.error and (
                blocked := multi_attach_errors(
                    cluster_spec, meta["name"], lambda c, ns=ns: self._claim(ns, c)
                )
            ):
                apps = servestate.ServeApps(waiting=f"waiting for volumes: {blocked[0]}")
            per_service[f"{ns}/{meta['name']}"] = apps
        desired = servestate.build_deploy_config(per_service, self.settings.serve_port)
        ours = {name for apps in per_service.values() for name in apps.apps}
        stale = any(name not in current for name in ours) or any(
            servestate.SEP in name and name not in ours for name in current
        )
        overdue = now.timestamp() - self._last_put_at > SERVE_REPUT_SECONDS
        if desired != self._last_put or (stale and overdue):
            if desired["applications"] or current:
                log.info("deploying %d Serve application(s)", len(desired["applications"]))
                self._last_put_at = now.timestamp()
                self._last_put = desired  # a refused config is retried only when overdue
                self.ray.serve_put(desired)
                current = self.ray.serve_get().get("applications") or {}
            self._last_put = desired
        for obj in services:
            meta = obj["metadata"]
            apps = per_service[f"{meta.get('namespace', 'default')}/{meta['name']}"]
            new = servestate.next_rayservice_status(
                obj, apps, current, now=now, upgrade=upgrades[id(obj)]
            )
            patch = jobstate.status_patch(obj.get("status") or {}, new)
            if patch is None:
                continue
            try:
                self.services.update_status(self._write_status("rayservices", obj, patch))
            except client.ApiException as exc:
                log.warning(
                    "RayService %s/%s: control plane error %s: %s",
                    meta.get("namespace"),
                    meta["name"],
                    exc.status,
                    (exc.body or exc.reason or "")[:300],
                )

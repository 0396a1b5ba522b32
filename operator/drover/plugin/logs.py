"""Plugin layer, I/O: `kubectl drover logs NAME` — the worker's log of a FoundationModel's fetch,
a FineTuneJob's training or a VectorIndex's build (its RayJob), or the Serve replicas' logs of
an InferenceService's versions.

Both come from Ray's dashboard, where KubeRay's own tooling reads them: a job's log from the Jobs
API (`GET /api/jobs/{job_id}/logs`, ray dashboard/modules/job/job_head.py), a replica's from the
State API (`GET /api/v0/actors` filtered on the replica actor's class name
`ServeReplica:{app}:{deployment}`, serve/_private/common.py
`DeploymentID.to_replica_actor_class_name`, then `GET /api/v0/logs/file?actor_id=…&suffix=err`,
dashboard/modules/state/state_head.py: Serve logs to stderr by default,
`RAY_SERVE_LOG_TO_STDERR`).

The dashboard is reached, in order: `--dashboard URL` (e.g. after `kubectl port-forward`); a
RayJob's `status.dashboardURL` when it is a loopback address (a local cluster); otherwise through
the API server's service proxy, as `kubectl get --raw
/api/v1/namespaces/NS/services/HEAD:8265/proxy/...`, HEAD being KubeRay's head service
`<rayClusterName>-head-svc` (kuberay utils/util.go `GenerateHeadServiceName`), so the plugin needs
no network path to the cluster beyond kubectl's own (RBAC: `services/proxy` get).
"""

from __future__ import annotations

import ipaddress
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from drover.plugin.kubectl import Kubectl, PluginError

DASHBOARD_PORT = 8265  # KubeRay's default dashboard port (utils/constant.go DefaultDashboardPort)
# The RayJob a Drover resource's status names, per kind.
JOB_FIELD = {
    "FoundationModel": "fetchJob",
    "FineTuneJob": "rayJobName",
    "VectorIndex": "buildJob",
}

Fetch = Callable[[str], bytes]  # GET a dashboard path (with query) → body


def logs(
    kubectl: Kubectl,
    resource: Mapping[str, Any],
    *,
    lines: int = 100,
    dashboard: str | None = None,
    version: str | None = None,
) -> str:
    kind, name = resource["kind"], resource["metadata"]["name"]
    status = resource.get("status") or {}
    if kind == "InferenceService":
        return _service_logs(kubectl, resource, lines, dashboard, version)
    job_name = status.get(JOB_FIELD[kind])
    if not job_name:
        raise PluginError(f"{kind} {name} has started no RayJob yet (status.{JOB_FIELD[kind]})")
    job = kubectl.get("rayjobs.ray.io", job_name)
    if job is None:
        raise PluginError(f"RayJob {job_name} of {kind} {name} is gone (KubeRay's TTL deleted it?)")
    js = job.get("status") or {}
    if not js.get("jobId"):
        raise PluginError(f"RayJob {job_name} has not submitted its Ray job yet (status.jobId)")
    fetch = _dashboard(kubectl, job, dashboard, js.get("dashboardURL"))
    text = json.loads(fetch(f"/api/jobs/{js['jobId']}/logs")).get("logs", "")
    return _tail(str(text), lines)


def _service_logs(
    kubectl: Kubectl,
    svc: Mapping[str, Any],
    lines: int,
    dashboard: str | None,
    version: str | None,
) -> str:
    name = svc["metadata"]["name"]
    rs_name = (svc.get("status") or {}).get("rayServiceName") or name
    rs = kubectl.get("rayservices.ray.io", rs_name)
    if rs is None:
        raise PluginError(f"InferenceService {name} has no RayService yet")
    apps = version_apps(rs, name)
    if version:
        apps = [a for a in apps if a == f"{name}-{version}"]
        if not apps:
            raise PluginError(f"no version {version} in RayService {rs_name}")
    fetch = _dashboard(kubectl, rs, dashboard, None)
    out = []
    for app in apps:
        for actor_id in replica_actors(fetch, app):
            query = urllib.parse.urlencode({"actor_id": actor_id, "suffix": "err", "lines": lines})
            text = fetch(f"/api/v0/logs/file?{query}").decode("utf-8", errors="replace")
            out += [f"[{app} {actor_id[:8]}] {row}" for row in text.splitlines()]
    if not out:
        raise PluginError(f"no running replica of {', '.join(apps) or name} found in Ray")
    return "\n".join(out) + "\n"


def version_apps(rayservice: Mapping[str, Any], service: str) -> list[str]:
    """The version applications of a service's RayService (all but the router, named after it)."""
    config = yaml.safe_load((rayservice.get("spec") or {}).get("serveConfigV2") or "{}") or {}
    return [a["name"] for a in config.get("applications") or [] if a.get("name") != service]


def replica_actors(fetch: Fetch, app: str) -> list[str]:
    """The live replica actors of `app`'s model deployment, from Ray's State API."""
    query = urllib.parse.urlencode(
        [
            ("filter_keys", "class_name"),
            ("filter_predicates", "="),
            ("filter_values", f"ServeReplica:{app}:model"),
            ("filter_keys", "state"),
            ("filter_predicates", "="),
            ("filter_values", "ALIVE"),
        ]
    )
    reply = json.loads(fetch(f"/api/v0/actors?{query}"))
    rows = ((reply.get("data") or {}).get("result") or {}).get("result") or []
    return [str(r["actor_id"]) for r in rows]


def proxy_path(namespace: str, cluster: str, path: str) -> str:
    """The API server's service-proxy path to KubeRay's head service dashboard."""
    return (
        f"/api/v1/namespaces/{namespace}/services/{cluster}-head-svc:{DASHBOARD_PORT}/proxy{path}"
    )


def _dashboard(
    kubectl: Kubectl, obj: Mapping[str, Any], given: str | None, reported: str | None
) -> Fetch:
    if given:
        return _direct(given if "://" in given else f"http://{given}")
    if reported and _is_loopback(reported):
        return _direct(f"http://{reported}")
    meta, status = obj["metadata"], obj.get("status") or {}
    cluster = status.get("rayClusterName") or (status.get("activeServiceStatus") or {}).get(
        "rayClusterName"
    )
    if not cluster:
        raise PluginError(f"{obj['kind']} {meta['name']} has no Ray cluster yet")
    namespace = meta.get("namespace") or "default"

    def via_proxy(path: str) -> bytes:
        done = kubectl.run("get", "--raw", proxy_path(namespace, cluster, path))
        if done.returncode != 0:
            raise PluginError(
                f"Ray's dashboard of {cluster} not reachable through the API server's service "
                f"proxy ({done.stderr.strip()}); run `kubectl port-forward "
                f"svc/{cluster}-head-svc {DASHBOARD_PORT}` and pass "
                f"--dashboard 127.0.0.1:{DASHBOARD_PORT}"
            )
        return done.stdout.encode()

    return via_proxy


def _direct(root: str) -> Fetch:
    def get(path: str) -> bytes:
        try:
            with urllib.request.urlopen(root.rstrip("/") + path, timeout=30) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            raise PluginError(f"Ray's dashboard at {root}: HTTP {exc.code} for {path}") from exc
        except urllib.error.URLError as exc:
            raise PluginError(f"Ray's dashboard at {root}: {exc.reason}") from exc

    return get


def _is_loopback(address: str) -> bool:
    host = urllib.parse.urlsplit(address if "://" in address else f"http://{address}").hostname
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _tail(text: str, lines: int) -> str:
    rows = text.splitlines()[-lines:] if lines > 0 else text.splitlines()
    return "\n".join(rows) + ("\n" if rows else "")

"""Local stack, Ray executor: RayService → Serve applications, and Serve → RayService status.

Pure. Every RayService's applications are renamed `<namespace>--<rayservice>--<app>` and routed
under `/<namespace>/<rayservice>` so many services share the one local Serve proxy (an application
with `route_prefix: null` stays unexposed; the renaming keeps the `<router app>-<version>` relation
by which Drover's router finds its version applications); the status
mirrors KubeRay v1.7.0 (Ready condition, serviceStatus, activeServiceStatus, numServeEndpoints).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from drover_sandbox.rayexec.jobstate import rfc3339
from drover_sandbox.rayexec.upgrade import Upgrade
from drover_sandbox.rayexec.volumes import VolumeMap, rewrite_strings

SEP = "--"


@dataclass(frozen=True)
class ServeApps:
    """The applications one RayService contributes: deployed name → (original name, config)."""

    apps: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    error: str = ""  # why serveConfigV2 cannot be deployed (names the field), else ""
    waiting: str = ""  # what must exist first (a Secret), as KubeRay's pods would wait


def route_prefix_for(namespace: str, name: str, original: str) -> str:
    """`/<ns>/<name>` plus the application's own prefix ("/" adds nothing)."""
    return f"/{namespace}/{name}" + ("" if original in ("", "/") else "/" + original.strip("/"))


# Group `resources` keys KubeRay maps to num-cpus, memory and num-gpus rather than to custom
# resources (common/pod.go, updateRayStartParamsResources).
_BUILTIN = ("cpu", "memory")


def offered_resources(cluster_spec: Mapping[str, Any]) -> set[str]:
    """The custom resources the cluster's worker groups offer: a group's `resources` (its
    non-CPU/memory/GPU entries) or its `rayStartParams.resources` (the JSON KubeRay passes to
    `ray start --resources=`, in its shell quotes)."""
    names: set[str] = set()
    for group in cluster_spec.get("workerGroupSpecs") or []:
        names |= {
            str(k)
            for k in (group.get("resources") or {})
            if k.lower() not in _BUILTIN and not k.lower().endswith("gpu")
        }
        raw = str((group.get("rayStartParams") or {}).get("resources") or "").strip().strip("'")
        try:
            value = json.loads(raw) if raw else {}
            value = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            continue
        if isinstance(value, dict):
            names |= {str(k) for k in value}
    return names


def _on_the_local_node(deployment: Mapping[str, Any], offered: set[str]) -> dict[str, Any]:
    """A deployment without its asks for resources some worker group offers: on a cluster a pod
    of that group provides them; here the one local Ray node stands for every pod (it sees every
    claim), so they are met. Resources no group offers stay, and stay unmet, as on a cluster."""
    out = dict(deployment)
    actor = dict(out.get("ray_actor_options") or {})
    if actor.get("resources"):
        kept = {k: v for k, v in actor["resources"].items() if k not in offered}
        actor = (
            {**actor, "resources": kept}
            if kept
            else {k: v for k, v in actor.items() if k != "resources"}
        )
        out["ray_actor_options"] = actor
    if out.get("placement_group_bundles"):
        out["placement_group_bundles"] = [
            {k: v for k, v in bundle.items() if k not in offered}
            for bundle in out["placement_group_bundles"]
        ]
    return out


def build_serve_apps(
    rayservice: Mapping[str, Any], volume_map: VolumeMap, env: Mapping[str, str]
) -> ServeApps:
    """The renamed, re-routed, path-rewritten applications of one RayService."""
    meta = rayservice["metadata"]
    ns, name = meta.get("namespace", "default"), meta["name"]
    raw = (rayservice.get("spec") or {}).get("serveConfigV2") or ""
    try:
        config = yaml.safe_load(raw) if raw else None
    except yaml.YAMLError as exc:
        return ServeApps(error=f"spec.serveConfigV2 is not valid YAML ({exc.__class__.__name__})")
    apps = config.get("applications") if isinstance(config, dict) else None
    if not isinstance(apps, list) or not apps:
        return ServeApps(error="spec.serveConfigV2 needs a non-empty `applications` list")
    offered = offered_resources((rayservice.get("spec") or {}).get("rayClusterConfig") or {})
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for i, app in enumerate(apps):
        if not isinstance(app, dict) or not app.get("import_path"):
            return ServeApps(error=f"spec.serveConfigV2 applications[{i}] needs an import_path")
        original = str(app.get("name") or "default")
        deployed = dict(app)
        deployed["name"] = f"{ns}{SEP}{name}{SEP}{original}"
        if "route_prefix" in app and app["route_prefix"] is None:
            deployed["route_prefix"] = None  # reached only through handles, as on KubeRay
        else:
            prefix = str(app.get("route_prefix") or "/")
            deployed["route_prefix"] = route_prefix_for(ns, name, prefix)
        if "args" in deployed:
            deployed["args"] = rewrite_strings(deployed["args"], volume_map.rewrite)
        # On a pod the mount paths exist; here they name directories of the data dir, wherever
        # they appear: args, and user_configs (a LoRA version's adapter path, in place).
        deployed["deployments"] = [
            _on_the_local_node(rewrite_strings(d, volume_map.rewrite), offered)
            if isinstance(d, dict)
            else d
            for d in deployed.get("deployments") or []
        ]
        runtime_env = dict(deployed.get("runtime_env") or {})
        own_env = runtime_env.get("env_vars") or {}
        own = {k: volume_map.rewrite(str(v)) for k, v in own_env.items()}
        runtime_env["env_vars"] = {**env, **own}
        deployed["runtime_env"] = runtime_env
        out[deployed["name"]] = (original, deployed)
    return ServeApps(out)


def running_apps(rayservice: Mapping[str, Any], serve_apps: Mapping[str, Any]) -> ServeApps:
    """The applications Serve runs now for one RayService, as they were deployed (Serve's
    `deployed_app_config`): what an active cluster keeps while KubeRay prepares a new one."""
    meta = rayservice["metadata"]
    prefix = f"{meta.get('namespace', 'default')}{SEP}{meta['name']}{SEP}"
    return ServeApps(
        {
            name: (name[len(prefix) :], dict(app["deployed_app_config"]))
            for name, app in serve_apps.items()
            if name.startswith(prefix) and isinstance(app.get("deployed_app_config"), dict)
        }
    )


def build_deploy_config(per_service: Mapping[str, ServeApps], serve_port: int) -> dict[str, Any]:
    """The one declarative config PUT to Serve: every RayService's applications, sorted."""
    applications = [
        cfg for key in sorted(per_service) for _, (_, cfg) in sorted(per_service[key].apps.items())
    ]
    return {
        "proxy_location": "HeadOnly",
        "http_options": {"host": "127.0.0.1", "port": serve_port},
        "applications": applications,
    }


def _condition(
    old: list[Mapping[str, Any]],
    kind: str,
    status: str,
    reason: str,
    message: str,
    generation: int,
    now: dt.datetime,
) -> dict[str, Any]:
    previous = next((c for c in old if c.get("type") == kind), None)
    changed = previous is None or previous.get("status") != status
    stamp = rfc3339(now) if changed else str(previous.get("lastTransitionTime"))  # type: ignore[union-attr]
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": stamp,
    }


def _app_status(serve_app: Mapping[str, Any]) -> dict[str, Any]:
    deployments = {
        name: {"status": str(d.get("status") or ""), "message": str(d.get("message") or "")}
        for name, d in (serve_app.get("deployments") or {}).items()
    }
    return {
        "status": str(serve_app.get("status") or ""),
        "message": str(serve_app.get("message") or ""),
        "serveDeploymentStatuses": deployments,
    }


def _validation_failed(old: dict[str, Any], error: str, now: dt.datetime) -> dict[str, Any]:
    """KubeRay v1.7.0 rayservice_controller.go `Reconcile`: a RayService failing
    `validateRayService` gets Ready=False (ValidationFailed, the error) and a lastUpdateTime;
    nothing else in its status changes and nothing is deployed. The condition keeps the
    status's last observedGeneration (`setCondition`)."""
    conditions = list(old.get("conditions") or [])
    observed = int(old.get("observedGeneration") or 0)
    ready = _condition(conditions, "Ready", "False", "ValidationFailed", error, observed, now)
    new = {**old, "conditions": [ready, *(c for c in conditions if c.get("type") != "Ready")]}
    if {k: v for k, v in new.items() if k != "lastUpdateTime"} == {
        k: v for k, v in old.items() if k != "lastUpdateTime"
    }:
        return old
    return {**new, "lastUpdateTime": rfc3339(now)}


def next_rayservice_status(
    rayservice: Mapping[str, Any],
    apps: ServeApps,
    serve_apps: Mapping[str, Any] | None,
    *,
    now: dt.datetime,
    upgrade: Upgrade | None = None,
) -> dict[str, Any]:
    """The RayService status from Serve's `GET /api/serve/applications/` `applications` map.

    `serve_apps` None means Serve could not be asked; the previous status is then kept. While
    `upgrade` has a pending cluster, KubeRay reconciles no Serve application of the active one
    and reports none (rayservice_controller.go at v1.7.0, `Reconcile`: "during the upgrade
    process, in-place update and updating the serve application status for the active cluster
    will not work"; `calculateStatus` copies the nil map), and sets UpgradeInProgress
    (`calculateConditions`: BothActivePendingClustersExist).
    """
    old: dict[str, Any] = dict(rayservice.get("status") or {})
    generation = int(rayservice["metadata"].get("generation") or 1)
    conditions = list(old.get("conditions") or [])
    if serve_apps is None and not apps.error:
        return old
    if apps.error:
        return _validation_failed(old, apps.error, now)
    upgrade = upgrade or Upgrade(active=f"{rayservice['metadata']['name']}-local")
    cluster = upgrade.active
    statuses = {
        original: _app_status(serve_apps[deployed])
        for deployed, (original, _) in apps.apps.items()
        if serve_apps is not None and deployed in serve_apps
    }
    was_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    # KubeRay counts proxy endpoints: once serving, an in-place update (DEPLOYING) keeps Ready.
    serving = ("RUNNING", "DEPLOYING") if was_ready else ("RUNNING",)
    ready = (
        bool(apps.apps)
        and len(statuses) == len(apps.apps)
        and all(s["status"] in serving for s in statuses.values())
    )
    if apps.error:
        reason, message = "ValidationFailed", apps.error
    elif ready:
        reason, message = "NonZeroServeEndpoints", "Number of serve endpoints is greater than 0"
    elif was_ready:
        reason, message = "ZeroServeEndpoints", "Number of serve endpoints dropped to 0"
    else:
        reason, message = "Initializing", apps.waiting or "RayService is initializing"
    ready_cond = _condition(
        conditions, "Ready", "True" if ready else "False", reason, message, generation, now
    )
    upgrading = _condition(
        conditions,
        "UpgradeInProgress",
        *(
            ("True", "BothActivePendingClustersExist", "Both active and pending Ray clusters exist")
            if upgrade.pending
            else (
                "False",
                "NoPendingCluster",
                "Active Ray cluster exists and no pending Ray cluster",
            )
        ),
        generation,
        now,
    )
    new: dict[str, Any] = {
        "conditions": [ready_cond, upgrading],
        "serviceStatus": "Running" if ready else "",
        "numServeEndpoints": 1 if ready else 0,
        "observedGeneration": generation,
        "activeServiceStatus": {"applicationStatuses": statuses, "rayClusterName": cluster},
    }
    if upgrade.pending:
        new["activeServiceStatus"] = {"rayClusterName": cluster}
        new["pendingServiceStatus"] = {"rayClusterName": upgrade.pending}
    comparable = {k: v for k, v in old.items() if k != "lastUpdateTime"}
    if comparable == new:
        return old
    return {**new, "lastUpdateTime": rfc3339(now)}

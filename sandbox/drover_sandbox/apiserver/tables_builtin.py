"""Local control plane, presentation layer: kube-apiserver's table columns for built-in kinds.

``kubectl get pods`` shows NAME READY STATUS RESTARTS AGE because the server computes those
cells; this module does the same for the built-in kinds the project uses (a simplified port of
kubernetes/pkg/printers/internalversion).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

__all__ = ["BUILTIN_API_VERSIONS", "Printer", "make_printers"]

BUILTIN_API_VERSIONS = frozenset(
    {"v1", "apps/v1", "batch/v1", "coordination.k8s.io/v1", "events.k8s.io/v1",
     "apiextensions.k8s.io/v1"}
)  # fmt: skip

Cells = list[Any]
Printer = tuple[list[dict[str, Any]], Callable[[dict[str, Any], datetime], Cells]]
Age = Callable[[Any, datetime], str]


def _col(name: str, kind: str = "string", priority: int = 0, fmt: str = "") -> dict[str, Any]:
    return {"name": name, "type": kind, "format": fmt, "description": "", "priority": priority}


_NAME = _col("Name", fmt="name")
_AGE = _col("Age")


def _dig(obj: Any, *keys: str, default: Any = None) -> Any:
    for key in keys:
        if not isinstance(obj, dict) or key not in obj:
            return default
        obj = obj[key]
    return obj


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def make_printers(age: Age) -> dict[str, Printer]:
    """The printers, given ``age(timestamp, now) -> "5m"`` (kept here to avoid a cycle)."""

    def created(obj: dict[str, Any], now: datetime) -> str:
        return age(_meta(obj).get("creationTimestamp"), now)

    def namespace(obj: dict[str, Any], now: datetime) -> Cells:
        return [_meta(obj).get("name", ""), _dig(obj, "status", "phase", default=""),
                created(obj, now)]  # fmt: skip

    def configmap(obj: dict[str, Any], now: datetime) -> Cells:
        count = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
        return [_meta(obj).get("name", ""), count, created(obj, now)]

    def secret(obj: dict[str, Any], now: datetime) -> Cells:
        count = len(obj.get("data") or {}) + len(obj.get("stringData") or {})
        return [_meta(obj).get("name", ""), obj.get("type", "Opaque"), count, created(obj, now)]

    def service_account(obj: dict[str, Any], now: datetime) -> Cells:
        return [_meta(obj).get("name", ""), len(obj.get("secrets") or []), created(obj, now)]

    def lease(obj: dict[str, Any], now: datetime) -> Cells:
        holder = _dig(obj, "spec", "holderIdentity", default="")
        return [_meta(obj).get("name", ""), holder, created(obj, now)]

    def crd(obj: dict[str, Any], now: datetime) -> Cells:
        return [_meta(obj).get("name", ""), _meta(obj).get("creationTimestamp", "")]

    def pod(obj: dict[str, Any], now: datetime) -> Cells:
        return [_meta(obj).get("name", ""), *_pod_cells(obj, now, age)]

    def deployment(obj: dict[str, Any], now: datetime) -> Cells:
        status = obj.get("status") or {}
        want = _dig(obj, "spec", "replicas", default=1)
        containers = _dig(obj, "spec", "template", "spec", "containers", default=[]) or []
        return [
            _meta(obj).get("name", ""),
            f"{status.get('readyReplicas', 0)}/{want}",
            status.get("updatedReplicas", 0),
            status.get("availableReplicas", 0),
            created(obj, now),
            ",".join(c.get("name", "") for c in containers),
            ",".join(c.get("image", "") for c in containers),
            _selector(_dig(obj, "spec", "selector", default={})),
        ]

    def job(obj: dict[str, Any], now: datetime) -> Cells:
        return [_meta(obj).get("name", ""), *_job_cells(obj, now, age), created(obj, now)]

    def service(obj: dict[str, Any], now: datetime) -> Cells:
        spec = obj.get("spec") or {}
        kind = spec.get("type", "ClusterIP")
        ports = [
            f"{p.get('port')}" + (f":{p['nodePort']}" if p.get("nodePort") else "")
            + f"/{p.get('protocol', 'TCP')}"
            for p in spec.get("ports") or []
        ]  # fmt: skip
        ingress = _dig(obj, "status", "loadBalancer", "ingress", default=[]) or []
        external = ",".join(i.get("ip") or i.get("hostname", "") for i in ingress)
        if not external:
            external = "<pending>" if kind == "LoadBalancer" else "<none>"
        return [
            _meta(obj).get("name", ""), kind, spec.get("clusterIP") or "<none>", external,
            ",".join(ports) or "<none>", created(obj, now),
            ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items()))
            or "<none>",
        ]  # fmt: skip

    def pvc(obj: dict[str, Any], now: datetime) -> Cells:
        spec = obj.get("spec") or {}
        modes = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX",
                 "ReadWriteOncePod": "RWOP"}  # fmt: skip
        access = ",".join(modes.get(m, m) for m in _dig(obj, "status", "accessModes", default=[]))
        return [
            _meta(obj).get("name", ""), _dig(obj, "status", "phase", default="Pending"),
            spec.get("volumeName", ""), _dig(obj, "status", "capacity", "storage", default=""),
            access, spec.get("storageClassName") or "<unset>",
            spec.get("volumeAttributesClassName") or "<unset>", created(obj, now),
            spec.get("volumeMode", "Filesystem"),
        ]  # fmt: skip

    def event(obj: dict[str, Any], now: datetime) -> Cells:
        regarding = obj.get("involvedObject") or obj.get("regarding") or {}
        last = (obj.get("lastTimestamp") or obj.get("deprecatedLastTimestamp")
                or obj.get("eventTime") or _meta(obj).get("creationTimestamp"))  # fmt: skip
        first = obj.get("firstTimestamp") or obj.get("deprecatedFirstTimestamp") or last
        source = obj.get("source") or {}
        return [
            age(last, now), obj.get("type", ""), obj.get("reason", ""),
            f"{str(regarding.get('kind', '')).lower()}/{regarding.get('name', '')}",
            regarding.get("fieldPath", ""),
            source.get("component") or obj.get("reportingController", ""),
            obj.get("message") or obj.get("note", ""), age(first, now),
            obj.get("count") or obj.get("deprecatedCount") or 1, _meta(obj).get("name", ""),
        ]  # fmt: skip

    return {
        "Namespace": ([_NAME, _col("Status"), _AGE], namespace),
        "ConfigMap": ([_NAME, _col("Data", "integer"), _AGE], configmap),
        "Secret": ([_NAME, _col("Type"), _col("Data", "integer"), _AGE], secret),
        "ServiceAccount": ([_NAME, _col("Secrets", "integer"), _AGE], service_account),
        "Lease": ([_NAME, _col("Holder"), _AGE], lease),
        "CustomResourceDefinition": ([_NAME, _col("Created At", "date")], crd),
        "Pod": (
            [
                _NAME,
                _col("Ready"),
                _col("Status"),
                _col("Restarts"),
                _AGE,
                _col("IP", priority=1),
                _col("Node", priority=1),
                _col("Nominated Node", priority=1),
                _col("Readiness Gates", priority=1),
            ],
            pod,
        ),
        "Deployment": (
            [
                _NAME,
                _col("Ready"),
                _col("Up-to-date", "integer"),
                _col("Available", "integer"),
                _AGE,
                _col("Containers", priority=1),
                _col("Images", priority=1),
                _col("Selector", priority=1),
            ],
            deployment,
        ),
        "Job": (
            [_NAME, _col("Status"), _col("Completions"), _col("Duration"), _AGE],
            job,
        ),
        "Service": (
            [
                _NAME,
                _col("Type"),
                _col("Cluster-IP"),
                _col("External-IP"),
                _col("Port(s)"),
                _AGE,
                _col("Selector", priority=1),
            ],
            service,
        ),
        "PersistentVolumeClaim": (
            [
                _NAME,
                _col("Status"),
                _col("Volume"),
                _col("Capacity"),
                _col("Access Modes"),
                _col("StorageClass"),
                _col("VolumeAttributesClass"),
                _AGE,
                _col("VolumeMode", priority=1),
            ],
            pvc,
        ),
        "Event": (
            [
                _col("Last Seen"),
                _col("Type"),
                _col("Reason"),
                _col("Object"),
                _col("Subobject", priority=1),
                _col("Source", priority=1),
                _col("Message"),
                _col("First Seen", priority=1),
                _col("Count", "integer", priority=1),
                _col("Name", priority=1),
            ],
            event,
        ),
    }


def _selector(selector: dict[str, Any]) -> str:
    labels = selector.get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


def _pod_cells(obj: dict[str, Any], now: datetime, age: Age) -> Cells:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    statuses = status.get("containerStatuses") or []
    total = len(spec.get("containers") or [])
    ready = sum(1 for s in statuses if s.get("ready"))
    reason = status.get("reason") or status.get("phase") or "Pending"
    restarts = 0
    for container in statuses:
        restarts += int(container.get("restartCount", 0))
        state = container.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated"):
            term = state["terminated"]
            reason = term.get("reason") or f"ExitCode:{term.get('exitCode', 0)}"
    for init in status.get("initContainerStatuses") or []:
        waiting = (init.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = f"Init:{waiting['reason']}"
    if _meta(obj).get("deletionTimestamp"):
        reason = "Terminating"
    gates = spec.get("readinessGates") or []
    return [
        f"{ready}/{total}", reason, str(restarts), age(_meta(obj).get("creationTimestamp"), now),
        status.get("podIP") or "<none>", spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        f"{len(gates)}/{len(gates)}" if gates else "<none>",
    ]  # fmt: skip


def _job_cells(obj: dict[str, Any], now: datetime, age: Age) -> Cells:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    conditions = {
        c.get("type"): c.get("status") for c in status.get("conditions") or []
    }  # fmt: skip
    if conditions.get("Complete") == "True":
        state = "Complete"
    elif conditions.get("Failed") == "True":
        state = "Failed"
    elif conditions.get("Suspended") == "True":
        state = "Suspended"
    else:
        state = "Running"
    succeeded = status.get("succeeded", 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif int(spec.get("parallelism", 1)) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    start = status.get("startTime")
    duration = ""
    if start:
        # Duration is the age of the start at the completion time (or now while running).
        end = status.get("completionTime")
        duration = age(start, _parse(end) or now) if end else age(start, now)
    return [state, completions, duration]


def _parse(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None

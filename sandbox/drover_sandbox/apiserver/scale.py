"""Local control plane, the `scale` subresource: an autoscaling/v1 Scale view of a resource's
replicas (paths from the CRD's `subresources.scale`, or Deployment's built-in ones).
"""

from __future__ import annotations

from typing import Any

from .errors import conflict, field_error, invalid
from .registry import Resource
from .strategy import clone


def _path(obj: dict[str, Any], dotted: str) -> list[str]:
    return [p for p in dotted.split(".") if p]


def _dig(obj: Any, dotted: str) -> Any:
    for seg in _path(obj, dotted):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(seg)
    return obj


def _put_path(obj: dict[str, Any], dotted: str, value: Any) -> None:
    segs = _path(obj, dotted)
    for seg in segs[:-1]:
        obj = obj.setdefault(seg, {})
    obj[segs[-1]] = value


def scale_of(res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    """The autoscaling/v1 Scale view of an object."""
    meta = obj["metadata"]
    paths = res.scale_paths
    status: dict[str, Any] = {"replicas": _dig(obj, paths.get("status", "")) or 0}
    if paths.get("selector") and _dig(obj, paths["selector"]) is not None:
        status["selector"] = _dig(obj, paths["selector"])
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": _dig(obj, paths.get("spec", "")) or 0},
        "status": status,
    }


def scaled(res: Resource, name: str, old: dict[str, Any], scale: Any) -> dict[str, Any]:
    """PUT/PATCH of /scale: the main resource with the Scale's replicas written to its path.

    Raises the API's errors for a bad count or a stale resourceVersion; the caller commits.
    """
    replicas = (scale.get("spec") or {}).get("replicas") if isinstance(scale, dict) else None
    if not isinstance(replicas, int) or replicas < 0:
        raise invalid(
            "autoscaling",
            "Scale",
            name,
            [
                field_error(
                    "FieldValueInvalid",
                    "spec.replicas",
                    replicas,
                    "must be greater than or equal to 0",
                )
            ],
        )
    rv = (scale.get("metadata") or {}).get("resourceVersion")
    if rv and rv != old["metadata"]["resourceVersion"]:
        raise conflict(res.group, res.plural, name)
    new = clone(old)
    _put_path(new, res.scale_paths["spec"], replicas)
    return new

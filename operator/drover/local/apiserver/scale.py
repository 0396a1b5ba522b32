"""Local control plane, the `scale` subresource: an autoscaling/v1 Scale view of a resource's
replicas (paths from the CRD's `subresources.scale`, or Deployment's built-in ones).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import conflict, field_error, invalid
from .registry import Resource
from .strategy import clone

if TYPE_CHECKING:
    from .crud import Api, Req, Result


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


def write_scale(api: Api, req: Req, old: dict[str, Any], scale: Any) -> Result:
    """PUT/PATCH of /scale: writes the replicas path of the main resource."""
    from .crud import Req, Result

    replicas = (scale.get("spec") or {}).get("replicas") if isinstance(scale, dict) else None
    if not isinstance(replicas, int) or replicas < 0:
        raise invalid(
            "autoscaling",
            "Scale",
            req.name,
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
        raise conflict(req.res.group, req.res.plural, req.name)
    new = clone(old)
    _put_path(new, req.res.scale_paths["spec"], replicas)
    main = Req(req.res, req.namespace, req.name, "", req.query, user_agent=req.user_agent)
    result = api.commit_update(main, old, new, api.manager(req))
    return Result(200, scale_of(req.res, result.body), result.warnings)

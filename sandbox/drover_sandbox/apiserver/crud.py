"""Local control plane, write verbs: create, get, replace, patch, delete, deletecollection.

Called by `server.py` with a parsed `Req`; answers a `Result` (code, body, warnings). Every
write goes through the strategy (strategy.py), the store and the collector (gc.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml

from . import patch as patching
from . import scale, strategy
from .errors import (
    ApiError,
    bad_request,
    conflict,
    field_error,
    forbidden,
    invalid,
    method_not_allowed,
    not_found,
    unsupported_media_type,
)
from .gc import Collector
from .registry import Registry, Resource
from .store import Store

CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Req:
    res: Resource
    namespace: str
    name: str
    subresource: str
    query: Any  # a multidict: .get(name)
    body: bytes = b""
    content_type: str = ""
    user_agent: str = ""
    accept: str = ""


@dataclass
class Result:
    code: int
    body: Any
    warnings: list[str] = field(default_factory=list)


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def as_version(obj: dict[str, Any], res: Resource) -> dict[str, Any]:
    if obj.get("apiVersion") == res.group_version:
        return obj
    return {**obj, "apiVersion": res.group_version}


def _decode(body: bytes, content_type: str = "application/json") -> Any:
    if "protobuf" in content_type:
        from .protobuf import Unsupported, decode

        try:
            return decode(body)
        except Unsupported:
            raise unsupported_media_type("application/json, application/yaml") from None
    if "cbor" in content_type:
        raise unsupported_media_type("application/json, application/yaml")
    try:
        if "yaml" in content_type:
            stripped = body.lstrip()
            if stripped[:1] in (b"{", b"["):  # kubectl sends apply patches as JSON
                try:
                    return json.loads(body)
                except ValueError:
                    pass
            return yaml.load(body.decode() or "null", Loader=_YAML_LOADER)
        return json.loads(body or b"null")
    except (ValueError, yaml.YAMLError) as exc:
        raise bad_request(f"error decoding request body: {exc}") from None


class Api:
    def __init__(self, store: Store, registry: Registry, collector: Collector) -> None:
        self.store = store
        self.registry = registry
        self.gc = collector

    # -- helpers ------------------------------------------------------------------------------
    @staticmethod
    def manager(req: Req, default: str = "") -> str:
        given = req.query.get("fieldManager")
        if given:
            return str(given)
        return default or (req.user_agent.split("/")[0] if req.user_agent else "unknown")

    @staticmethod
    def dry_run(req: Req, options: dict[str, Any] | None = None) -> bool:
        values = req.query.getall("dryRun", []) if hasattr(req.query, "getall") else []
        values += (options or {}).get("dryRun") or []
        for value in values:
            if value != "All":
                raise bad_request(f"Invalid dry run value: {value!r}; only 'All' is supported")
        return bool(values)

    @staticmethod
    def field_validation(req: Req) -> str:
        value = req.query.get("fieldValidation") or "Warn"
        if value not in ("Strict", "Warn", "Ignore"):
            raise bad_request(f"fieldValidation parameter unsupported: {value}")
        return str(value)

    def _check_namespace(self, res: Resource, namespace: str, name: str) -> None:
        if not res.namespaced:
            return
        ns = self.store.get(("", "namespaces"), "", namespace)
        if ns is None:
            raise not_found("", "namespaces", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise forbidden(
                res.group,
                res.plural,
                name,
                f"unable to create new content in "
                f"namespace {namespace} because it is being terminated",
            )

    def _load(self, req: Req) -> dict[str, Any]:
        obj = self.store.get(req.res.storage_key, req.namespace, req.name)
        if obj is None:
            raise not_found(req.res.group, req.res.plural, req.name)
        return obj

    def _check_subresource(self, req: Req) -> None:
        if req.subresource and req.subresource not in req.res.subresources:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})

    # -- verbs --------------------------------------------------------------------------------
    def create(
        self, req: Req, obj: Any = None, managed: list[dict[str, Any]] | None = None
    ) -> Result:
        res = req.res
        if req.subresource:
            raise method_not_allowed()
        if obj is None:
            obj = _decode(req.body, req.content_type)
        strategy.check_identity(res, obj, req.namespace, None)
        dry = self.dry_run(req)
        self._check_namespace(res, req.namespace, obj["metadata"].get("name") or "")
        now = now_rfc3339()
        obj = strategy.prepare_create(res, obj, now)
        causes = strategy.validate_meta(res, obj)
        if causes:
            raise invalid(res.group, res.kind, obj["metadata"].get("name", ""), causes)
        name = obj["metadata"]["name"]
        if self.store.get(res.storage_key, req.namespace if res.namespaced else "", name):
            raise _already_exists(res, name)
        obj, warnings = strategy.apply_schema(res, obj, None, self.field_validation(req))
        if res.storage_key == CRD_KEY:
            strategy.validate_crd(obj)
        obj["metadata"]["managedFields"] = (
            managed
            if managed is not None
            else patching.record_update(None, obj, self.manager(req), now)
        )
        if dry:
            return Result(201, as_version(obj, res), warnings)
        obj["apiVersion"] = _storage_gv(res)
        stored = self.store.put(res.storage_key, obj, "ADDED")
        if res.storage_key == CRD_KEY:
            self.registry.register_crd(stored)
        self.gc.after_write(res.storage_key, stored)
        return Result(201, as_version(stored, res), warnings)

    def get(self, req: Req) -> Result:
        self._check_subresource(req)
        obj = self._load(req)
        if req.subresource == "scale":
            return Result(200, scale.scale_of(req.res, obj))
        return Result(200, as_version(obj, req.res))

    def replace(self, req: Req) -> Result:
        self._check_subresource(req)
        new = _decode(req.body, req.content_type)
        old = self._load(req)
        if req.subresource == "scale":
            return self._write_scale(req, old, new)
        strategy.check_identity(req.res, new, req.namespace, req.name)
        rv = new["metadata"].get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise conflict(req.res.group, req.res.plural, req.name)
        if not rv and req.res.crd_name:
            raise invalid(
                req.res.group,
                req.res.kind,
                req.name,
                [
                    field_error(
                        "FieldValueInvalid",
                        "metadata.resourceVersion",
                        0,
                        "must be specified for an update",
                    )
                ],
            )
        return self.commit_update(req, old, new, self.manager(req))

    def commit_update(
        self,
        req: Req,
        old: dict[str, Any],
        new: dict[str, Any],
        manager: str,
        managed: list[dict[str, Any]] | None = None,
    ) -> Result:
        res = req.res
        new["apiVersion"] = _storage_gv(res)
        new = strategy.prepare_update(res, old, new, req.subresource)
        causes = strategy.check_finalizers(old, new) + strategy.validate_meta(res, new)
        if causes:
            raise invalid(res.group, res.kind, req.name, causes)
        new, warnings = strategy.apply_schema(res, new, old, self.field_validation(req))
        if res.storage_key == CRD_KEY:
            strategy.validate_crd(new)
        if strategy.equal_ignoring_rv(old, new) and managed is None:
            return Result(200, as_version(old, res), warnings)
        now = now_rfc3339()
        new["metadata"]["managedFields"] = (
            managed if managed is not None else patching.record_update(old, new, manager, now)
        )
        if self.dry_run(req):
            return Result(200, as_version(new, res), warnings)
        stored = self.store.put(res.storage_key, new, "MODIFIED")
        if res.storage_key == CRD_KEY:
            self.registry.register_crd(stored)
        self.gc.after_write(res.storage_key, stored)
        return Result(200, as_version(stored, res), warnings)

    def patch(self, req: Req) -> Result:
        self._check_subresource(req)
        ctype = req.content_type.split(";")[0].strip()
        res = req.res
        if ctype == "application/apply-patch+yaml":
            return self._apply(req)
        body = _decode(req.body)
        old = self._load(req)
        doc = scale.scale_of(res, old) if req.subresource == "scale" else strategy.clone(old)
        doc = as_version(doc, res) if req.subresource != "scale" else doc
        if ctype == "application/merge-patch+json":
            if not isinstance(body, dict):
                raise bad_request("a merge patch must be a JSON object")
            new = patching.json_merge_patch(doc, body)
        elif ctype == "application/json-patch+json":
            if not isinstance(body, list):
                raise bad_request("a JSON patch must be a JSON array of operations")
            new = patching.json_patch(doc, body)
        elif ctype == "application/strategic-merge-patch+json":
            if res.crd_name:
                raise unsupported_media_type(
                    "application/json-patch+json, application/merge-patch+json, "
                    "application/apply-patch+yaml"
                )
            if not isinstance(body, dict):
                raise bad_request("a strategic merge patch must be a JSON object")
            new = patching.strategic_merge_patch(doc, body, patching.merge_keys_for(res.kind))
        else:
            raise unsupported_media_type(
                "application/json-patch+json, application/merge-patch+json, "
                "application/apply-patch+yaml, application/strategic-merge-patch+json"
            )
        if req.subresource == "scale":
            return self._write_scale(req, old, new)
        if not isinstance(new, dict) or not isinstance(new.get("metadata"), dict):
            raise bad_request("the patch produced an object without metadata")
        rv = new["metadata"].get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise conflict(res.group, res.plural, req.name)
        strategy.check_identity(res, new, req.namespace, req.name)
        return self.commit_update(req, old, new, self.manager(req))

    def _write_scale(self, req: Req, old: dict[str, Any], body: Any) -> Result:
        """A write through /scale commits the main resource and answers with its Scale view."""
        new = scale.scaled(req.res, req.name, old, body)
        main = Req(req.res, req.namespace, req.name, "", req.query, user_agent=req.user_agent)
        result = self.commit_update(main, old, new, self.manager(req))
        return Result(200, scale.scale_of(req.res, result.body), result.warnings)

    def _apply(self, req: Req) -> Result:
        res = req.res
        if not req.query.get("fieldManager"):
            raise bad_request("PATCH /apply requires fieldManager")
        applied = _decode(req.body, "application/yaml")
        if not isinstance(applied, dict):
            raise bad_request("an apply patch must be an object")
        strategy.check_identity(res, applied, req.namespace, req.name)
        force = str(req.query.get("force", "")).lower() == "true"
        manager = self.manager(req)
        old = self.store.get(res.storage_key, req.namespace, req.name)
        now = now_rfc3339()
        live = (
            as_version(old, res)
            if old is not None
            else {"apiVersion": res.group_version, "kind": res.kind, "metadata": {}}
        )
        new, managed = patching.server_side_apply(
            strategy.clone(live), applied, manager, force=force, now=now
        )
        new["metadata"]["managedFields"] = managed
        if old is None:
            new["metadata"].setdefault("name", req.name)
            return self.create(req, new, managed)
        return self.commit_update(req, old, new, manager, managed)

    def delete(self, req: Req) -> Result:
        if req.subresource:
            raise method_not_allowed()
        options = _decode(req.body) if req.body.strip() else {}
        options = options if isinstance(options, dict) else {}
        obj = self._load(req)
        pre = options.get("preconditions") or {}
        meta = obj["metadata"]
        for key, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            if pre.get(key) and pre[key] != meta.get(key):
                raise conflict(
                    req.res.group,
                    req.res.plural,
                    req.name,
                    f"Precondition failed: {label} in precondition: {pre[key]}, "
                    f"{label} in object meta: {meta.get(key)}",
                )
        policy = req.query.get("propagationPolicy") or options.get("propagationPolicy")
        orphan = req.query.get("orphanDependents") or options.get("orphanDependents")
        if policy is None and str(orphan).lower() == "true":
            policy = "Orphan"
        if policy not in (None, "Foreground", "Background", "Orphan"):
            raise bad_request(f"invalid propagationPolicy: {policy}")
        if self.dry_run(req, options):
            return Result(200, as_version(obj, req.res))
        removed, out = self.gc.delete(req.res.storage_key, obj, policy)
        if removed and not req.res.crd_name and req.res.plural not in ("pods", "services"):
            return Result(
                200,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {
                        "name": req.name,
                        "group": req.res.group,
                        "kind": req.res.plural,
                        "uid": meta["uid"],
                    },
                },
            )
        return Result(200, as_version(out, req.res))

    def delete_collection(self, req: Req, matcher: Any) -> Result:
        res = req.res
        options = _decode(req.body) if req.body.strip() else {}
        options = options if isinstance(options, dict) else {}
        policy = req.query.get("propagationPolicy") or options.get("propagationPolicy")
        dry = self.dry_run(req, options)
        namespace = req.namespace if res.namespaced and req.namespace else None
        out = []
        for obj in [o for o in self.store.items(res.storage_key, namespace) if matcher(o)]:
            if not dry:
                _, obj = self.gc.delete(res.storage_key, obj, policy)
            out.append(as_version(obj, res))
        return Result(
            200,
            {
                "kind": f"{res.kind}List",
                "apiVersion": res.group_version,
                "metadata": {"resourceVersion": str(self.store.rv)},
                "items": out,
            },
        )


def _storage_gv(res: Resource) -> str:
    v = res.storage_version or res.version
    return f"{res.group}/{v}" if res.group else v


def _already_exists(res: Resource, name: str) -> ApiError:
    from .errors import already_exists

    return already_exists(res.group, res.plural, name)

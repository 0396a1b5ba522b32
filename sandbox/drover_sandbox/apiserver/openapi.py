"""Local control plane, discovery layer: the OpenAPI v3 documents kubectl reads.

:func:`build_openapi_v3_index` answers ``GET /openapi/v3``; :func:`build_group_version_doc`
answers ``GET /openapi/v3/apis/<group>/<version>``. The PATCH/POST/PUT operations declare the
``fieldValidation`` parameter, so ``kubectl apply`` leaves validation to the server, and the
component schemas carry ``x-kubernetes-group-version-kind`` for ``kubectl explain``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .openapi_builtin import builtin_schemas
from .openapi_meta import META_SCHEMAS, OBJECT_META_REF

__all__ = [
    "ResourceDoc",
    "build_group_version_doc",
    "build_openapi_v3_index",
    "doc_hash",
    "gv_path",
    "schema_name",
]

_BUILTIN_PREFIX = {
    "": "io.k8s.api.core",
    "apps": "io.k8s.api.apps",
    "batch": "io.k8s.api.batch",
    "coordination.k8s.io": "io.k8s.api.coordination",
    "events.k8s.io": "io.k8s.api.events",
    "rbac.authorization.k8s.io": "io.k8s.api.rbac",
    "policy": "io.k8s.api.policy",
    "autoscaling": "io.k8s.api.autoscaling",
    "apiextensions.k8s.io": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions",
}
_PATCH_TYPES_CUSTOM = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
]


@dataclass
class ResourceDoc:
    """One resource of a group-version: ``schema`` is the CRD's openAPIV3Schema (None: built-in)."""

    kind: str
    plural: str
    namespaced: bool
    schema: dict[str, Any] | None = None
    verbs: list[str] = field(
        default_factory=lambda: [
            "get", "list", "create", "update", "patch", "delete", "deletecollection", "watch",
        ]
    )  # fmt: skip
    subresources: list[str] = field(default_factory=list)


def gv_path(group: str, version: str) -> str:
    """``apis/<group>/<version>``, or ``api/v1`` for the core group."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def doc_hash(doc: Mapping[str, Any]) -> str:
    """A stable content hash (kube uses the SHA-512 of the document, upper-case hex)."""
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha512(text.encode()).hexdigest().upper()


def build_openapi_v3_index(
    group_versions: Mapping[tuple[str, str], Any] | Iterable[tuple[Any, ...]],
) -> dict[str, Any]:
    """The ``/openapi/v3`` index: ``{"paths": {"apis/g/v": {"serverRelativeURL": ...}}}``.

    ``group_versions`` maps ``(group, version)`` to its document (hashed here) or to a hash
    string, or is a list of ``(group, version)`` or ``(group, version, doc_or_hash)``. Pass the
    documents: kubectl caches them by URL, so the hash must change when a schema changes.
    """
    items: list[tuple[str, str, Any]] = []
    if isinstance(group_versions, Mapping):
        items = [(g, v, doc) for (g, v), doc in group_versions.items()]
    else:
        for entry in group_versions:
            group, version, *rest = entry
            items.append((group, version, rest[0] if rest else None))
    paths: dict[str, Any] = {}
    for group, version, doc in sorted(items, key=lambda i: (i[0], i[1])):
        path = gv_path(group, version)
        if isinstance(doc, str):
            digest = doc
        else:
            digest = doc_hash(doc if doc is not None else {"path": path})
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}


def schema_name(group: str, version: str, kind: str) -> str:
    """Component name as kube spells it: ``dev.drover.v1alpha1.FoundationModel``."""
    prefix = _BUILTIN_PREFIX.get(group) or ".".join(reversed(group.split(".")))
    return f"{prefix}.{version}.{kind}"


def _as_resource(resource: Any) -> ResourceDoc:
    if isinstance(resource, ResourceDoc):
        return resource
    if isinstance(resource, Mapping):
        return ResourceDoc(**dict(resource))
    if isinstance(resource, tuple):
        return ResourceDoc(*resource)
    # Any object with the same attributes (the server's registry entries).
    return ResourceDoc(
        kind=resource.kind,
        plural=resource.plural,
        namespaced=bool(resource.namespaced),
        schema=getattr(resource, "schema", None),
        verbs=list(getattr(resource, "verbs", None) or ResourceDoc("", "", True).verbs),
        subresources=sorted(getattr(resource, "subresources", None) or []),
    )


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object_schema(group: str, version: str, res: ResourceDoc, api_version: str) -> dict[str, Any]:
    base: dict[str, Any] = copy.deepcopy(res.schema) if res.schema else {"type": "object"}
    base.setdefault("type", "object")
    props = dict(base.get("properties") or {})
    props["apiVersion"] = {
        "type": "string",
        "description": "APIVersion defines the versioned schema of this representation of an "
        "object. Servers should convert recognized schemas to the latest internal value, and "
        "may reject unrecognized values.",
    }
    props["kind"] = {
        "type": "string",
        "description": "Kind is a string value representing the REST resource this object "
        "represents. Servers may infer this from the endpoint the client submits requests to.",
    }
    props["metadata"] = {
        "allOf": [_ref(OBJECT_META_REF)],
        "default": {},
        "description": "Standard object's metadata. More info: https://git.k8s.io/community/"
        "contributors/devel/sig-architecture/api-conventions.md#metadata",
    }
    if res.schema is None:
        base["x-kubernetes-preserve-unknown-fields"] = True
    base["properties"] = props
    base["x-kubernetes-group-version-kind"] = [
        {"group": group, "kind": res.kind, "version": version}
    ]
    return base


def _list_schema(group: str, version: str, res: ResourceDoc, item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"{res.kind}List is a list of {res.kind}",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string"},
            "items": {"type": "array", "items": _ref(item)},
            "kind": {"type": "string"},
            "metadata": {
                "allOf": [_ref("io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta")],
                "default": {},
            },
        },
        "x-kubernetes-group-version-kind": [
            {"group": group, "kind": f"{res.kind}List", "version": version}
        ],
    }


def _query(name: str, description: str, kind: str = "string") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": kind, "uniqueItems": True},
    }


_DRY_RUN = _query("dryRun", "When present, indicates that modifications should not be persisted.")
_FIELD_MANAGER = _query("fieldManager", "fieldManager is a name associated with the actor.")
_FIELD_VALIDATION = _query(
    "fieldValidation",
    "fieldValidation instructs the server on how to handle objects in the request containing "
    "unknown or duplicate fields. Valid values are: Ignore, Warn (default), Strict.",
)
_FORCE = _query("force", "Force is going to force Apply requests.", "boolean")


def _operation(
    action: str, op_id: str, gvk: dict[str, str], response: str, params: list[dict[str, Any]],
    body: list[str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    operation: dict[str, Any] = {
        "operationId": op_id,
        "parameters": params,
        "responses": {
            "200": {
                "description": "OK",
                "content": {"application/json": {"schema": _ref(response)}},
            },
            "401": {"description": "Unauthorized"},
        },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    }
    if action in ("post", "put"):
        operation["responses"]["201"] = operation["responses"]["200"]
    if body is not None:
        operation["requestBody"] = {
            "content": {ct: {"schema": _ref(response)} for ct in body},
            "required": True,
        }
    return operation


def _camel(group: str, version: str) -> str:
    parts = [p for p in group.replace("-", ".").split(".") if p] or ["core"]
    return "".join(p.capitalize() for p in parts) + version.capitalize()


def _paths(group: str, version: str, res: ResourceDoc, name: str) -> dict[str, Any]:
    root = f"/{gv_path(group, version)}"
    base = f"{root}/{res.plural}"
    if res.namespaced:
        base = f"{root}/namespaces/{{namespace}}/{res.plural}"
    scope = "Namespaced" if res.namespaced else ""
    gvk = {"group": group, "kind": res.kind, "version": version}
    tag = _camel(group, version)
    list_name = name + "List"
    write = [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION]
    json_body = ["application/json", "application/yaml"]
    patch_body = list(_PATCH_TYPES_CUSTOM)
    if res.schema is None:
        patch_body.insert(2, "application/strategic-merge-patch+json")
    collection: dict[str, Any] = {}
    item: dict[str, Any] = {}
    verbs = set(res.verbs)
    if "list" in verbs:
        collection["get"] = _operation("list", f"list{tag}{scope}{res.kind}", gvk, list_name, [])
    if "create" in verbs:
        collection["post"] = _operation(
            "post", f"create{tag}{scope}{res.kind}", gvk, name, write, json_body
        )
    if "deletecollection" in verbs:
        collection["delete"] = _operation(
            "deletecollection", f"deleteCollection{tag}{scope}{res.kind}", gvk,
            "io.k8s.apimachinery.pkg.apis.meta.v1.Status", [_DRY_RUN],
        )  # fmt: skip
    if "get" in verbs:
        item["get"] = _operation("get", f"read{tag}{scope}{res.kind}", gvk, name, [])
    if "update" in verbs:
        item["put"] = _operation(
            "put", f"replace{tag}{scope}{res.kind}", gvk, name, write, json_body
        )
    if "patch" in verbs:
        item["patch"] = _operation(
            "patch", f"patch{tag}{scope}{res.kind}", gvk, name, [*write, _FORCE], patch_body
        )
    if "delete" in verbs:
        item["delete"] = _operation(
            "delete", f"delete{tag}{scope}{res.kind}", gvk,
            "io.k8s.apimachinery.pkg.apis.meta.v1.Status", [_DRY_RUN],
        )  # fmt: skip
    name_param = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    ns_param = {"name": "namespace", "in": "path", "required": True, "schema": {"type": "string"}}
    scope_params = [ns_param] if res.namespaced else []
    paths: dict[str, Any] = {}
    if collection:
        paths[base] = {**collection, "parameters": scope_params}
    if item:
        paths[f"{base}/{{name}}"] = {**item, "parameters": [name_param, *scope_params]}
    for sub in res.subresources:
        sub_name = name if sub == "status" else "io.k8s.api.autoscaling.v1.Scale"
        sub_gvk = gvk if sub == "status" else {
            "group": "autoscaling", "kind": "Scale", "version": "v1"
        }  # fmt: skip
        cap = sub.capitalize()
        paths[f"{base}/{{name}}/{sub}"] = {
            "get": _operation("get", f"read{tag}{scope}{res.kind}{cap}", sub_gvk, sub_name, []),
            "put": _operation(
                "put", f"replace{tag}{scope}{res.kind}{cap}", sub_gvk, sub_name, write, json_body
            ),
            "patch": _operation(
                "patch",
                f"patch{tag}{scope}{res.kind}{cap}",
                sub_gvk,
                sub_name,
                [*write, _FORCE],
                patch_body,
            ),
            "parameters": [name_param, *scope_params],
        }
    if res.namespaced and "list" in verbs:
        paths[f"{root}/{res.plural}"] = {
            "get": _operation("list", f"list{tag}{res.kind}ForAllNamespaces", gvk, list_name, []),
        }
    return paths


def build_group_version_doc(
    group: str,
    version: str,
    resources: Iterable[Any],
) -> dict[str, Any]:
    """The OpenAPI v3 document of one group-version, with the meta.k8s.io schemas it uses.

    Each resource is a :class:`ResourceDoc`, a mapping with its fields, a tuple
    ``(kind, plural, namespaced, schema, verbs, subresources)`` or any object with those
    attributes (the server's registry entries).
    """
    schemas: dict[str, Any] = copy.deepcopy(META_SCHEMAS)
    paths: dict[str, Any] = {}
    api_version = f"{group}/{version}" if group else version
    for resource in resources:
        res = _as_resource(resource)
        name = schema_name(group, version, res.kind)
        schemas[name] = _object_schema(group, version, res, api_version)
        schemas[f"{name}List"] = _list_schema(group, version, res, name)
        builtin = builtin_schemas(name) if res.schema is None else {}
        if name in builtin:
            list_gvk = schemas[f"{name}List"]["x-kubernetes-group-version-kind"]
            schemas.update(builtin)
            schemas[name]["x-kubernetes-group-version-kind"] = [
                {"group": group, "kind": res.kind, "version": version}
            ]
            schemas.setdefault(f"{name}List", _list_schema(group, version, res, name))
            schemas[f"{name}List"]["x-kubernetes-group-version-kind"] = list_gvk
        paths.update(_paths(group, version, res, name))
        if "scale" in res.subresources:
            schemas.setdefault("io.k8s.api.autoscaling.v1.Scale", _scale_schema())
    title = "Kubernetes CRD Swagger" if group not in _BUILTIN_PREFIX else "Kubernetes"
    return {
        "openapi": "3.0.0",
        "info": {"title": title, "version": "v0.1.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _scale_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Scale represents a scaling request for a resource.",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"allOf": [_ref(OBJECT_META_REF)], "default": {}},
            "spec": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
            "status": {
                "type": "object",
                "properties": {"replicas": {"type": "integer"}, "selector": {"type": "string"}},
            },
        },
        "x-kubernetes-group-version-kind": [
            {"group": "autoscaling", "kind": "Scale", "version": "v1"}
        ],
    }

"""Local control plane, write strategy: what create/update do to an object before it is stored.

Pure functions (time comes in as `now`): server-set metadata, status-subresource separation,
generation bumps, built-in status defaults, CRD schema pruning/defaulting/validation and CEL.
"""

from __future__ import annotations

import random
import re
import string
import uuid
from typing import Any

from . import cel, objectmeta, schema
from .errors import ApiError, Cause, bad_request, field_error, invalid
from .registry import Resource

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # kube's utilrand alphabet
_SERVER_META = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "resourceVersion",
    "selfLink",
)


def clone(value: Any) -> Any:
    """A deep copy of decoded JSON (dicts, lists, scalars), several times faster than deepcopy."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def content_without_meta(obj: dict[str, Any], res: Resource) -> dict[str, Any]:
    """The part whose change bumps `metadata.generation`."""
    skip = {"metadata", "apiVersion", "kind"}
    if "status" in res.subresources or res.crd_name:
        skip.add("status")
    return {k: v for k, v in obj.items() if k not in skip}


def check_identity(res: Resource, obj: Any, namespace: str, name: str | None) -> None:
    if not isinstance(obj, dict):
        raise bad_request("the request body must be a JSON object")
    api_version = obj.get("apiVersion")
    if api_version and api_version != res.group_version:
        raise bad_request(
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({res.group_version})"
        )
    if obj.get("kind") and obj["kind"] != res.kind:
        raise bad_request(
            f"the kind in the data ({obj['kind']}) does not match the expected kind ({res.kind})"
        )
    meta = obj.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise bad_request("metadata must be an object")
    meta = obj.setdefault("metadata", {}) if meta is None else meta
    if res.namespaced:
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace "
                "sent on the request"
            )
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    if name is not None and meta.get("name") and meta["name"] != name:
        raise bad_request(
            f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
        )
    obj["apiVersion"] = res.group_version
    obj["kind"] = res.kind


def generate_name(prefix: str) -> str:
    return prefix + "".join(random.choice(_NAME_CHARS) for _ in range(5))


def validate_meta(res: Resource, obj: dict[str, Any]) -> list[Cause]:
    meta = obj["metadata"]
    name = meta.get("name")
    causes: list[Cause] = []
    if not name:
        causes.append(
            field_error(
                "FieldValueRequired", "metadata.name", detail="name or generateName is required"
            )
        )
        return causes
    if res.plural == "namespaces":
        if len(name) > 63 or not _DNS_LABEL.match(name):
            causes.append(field_error("FieldValueInvalid", "metadata.name", name, _LABEL_MSG))
    elif len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        causes.append(field_error("FieldValueInvalid", "metadata.name", name, _SUBDOMAIN_MSG))
    for key in ("labels", "annotations"):
        causes += objectmeta.validate_map(meta, key)
    causes += objectmeta.validate_owner_references(meta)
    return causes


def prepare_create(res: Resource, obj: dict[str, Any], now: str) -> dict[str, Any]:
    meta = obj["metadata"]
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = generate_name(meta["generateName"])
    for key in _SERVER_META:
        meta.pop(key, None)
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = now
    if res.has_generation:
        meta["generation"] = 1
    if "status" in res.subresources:
        obj.pop("status", None)
    _builtin_create_defaults(res, obj)
    return obj


def _builtin_create_defaults(res: Resource, obj: dict[str, Any]) -> None:
    if res.crd_name:
        return
    if res.plural == "secrets":
        fold_string_data(obj)
    if res.plural == "namespaces":
        obj.setdefault("spec", {})["finalizers"] = ["kubernetes"]
        obj["status"] = {"phase": "Active"}
    elif res.plural in ("pods", "persistentvolumeclaims"):
        obj["status"] = {"phase": "Pending"}
    elif res.plural == "services":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("clusterIP", f"10.96.{random.randint(0, 255)}.{random.randint(1, 254)}")
        obj["status"] = {"loadBalancer": {}}
    elif res.plural == "customresourcedefinitions":
        spec = obj.get("spec") or {}
        versions = spec.get("versions") or []
        storage = [v.get("name") for v in versions if v.get("storage")]
        obj["status"] = {
            "acceptedNames": spec.get("names") or {},
            "storedVersions": storage,
            "conditions": [
                {
                    "type": t,
                    "status": "True",
                    "reason": r,
                    "message": m,
                    "lastTransitionTime": obj["metadata"]["creationTimestamp"],
                }
                for t, r, m in (
                    ("NamesAccepted", "NoConflicts", "no conflicts found"),
                    ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
                )
            ],
        }


def fold_string_data(obj: dict[str, Any]) -> None:
    """Secrets: `stringData` is write-only; it is merged into base64 `data`, as kube does."""
    import base64

    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def prepare_update(
    res: Resource, old: dict[str, Any], new: dict[str, Any], subresource: str
) -> dict[str, Any]:
    """Carry server-owned fields over from `old`; separate status from the main resource."""
    meta = new["metadata"]
    for key in _SERVER_META:
        if key in old["metadata"]:
            meta[key] = old["metadata"][key]
        else:
            meta.pop(key, None)
    if res.plural == "secrets" and not res.crd_name:
        fold_string_data(new)
    if subresource == "status":
        status = new.get("status")
        new = {**clone(old), "metadata": {**old["metadata"]}}
        if res.crd_name:
            new["metadata"] = clone(old["metadata"])
        else:
            new["metadata"] = meta
        if status is None:
            new.pop("status", None)
        else:
            new["status"] = status
        return new
    if "status" in res.subresources:
        if "status" in old:
            new["status"] = clone(old["status"])
        else:
            new.pop("status", None)
    if res.has_generation and content_without_meta(old, res) != content_without_meta(new, res):
        meta["generation"] = int(old["metadata"].get("generation") or 0) + 1
    return new


def check_finalizers(old: dict[str, Any], new: dict[str, Any]) -> list[Cause]:
    if not old["metadata"].get("deletionTimestamp"):
        return []
    before = set(old["metadata"].get("finalizers") or [])
    added = [f for f in new["metadata"].get("finalizers") or [] if f not in before]
    if added:
        return [
            field_error(
                "FieldValueForbidden",
                "metadata.finalizers",
                detail=f"no new finalizers can be added if the object is being "
                f"deleted, found new finalizers {added!r}".replace("'", '"'),
            )
        ]
    return []


def apply_schema(
    res: Resource, obj: dict[str, Any], old: dict[str, Any] | None, field_validation: str
) -> tuple[dict[str, Any], list[str]]:
    """Prune, default and validate a custom resource; return it and the warnings to send."""
    if not res.crd_name or res.schema is None:
        return obj, []
    warnings: list[str] = []
    if not res.preserve_unknown:
        obj, dropped = schema.prune(obj, res.schema)
        if dropped and field_validation == "Strict":
            unknown = ", ".join(f'unknown field "{p}"' for p in dropped)
            raise bad_request(
                f'{res.kind} in version "{res.version}" cannot be handled as a '
                f"{res.kind}: strict decoding error: {unknown}"
            )
        if field_validation != "Ignore":
            warnings = [f'unknown field "{p}"' for p in dropped]
    obj = schema.apply_defaults(obj, res.schema)
    causes = schema.validate(obj, res.schema)
    if not causes:
        causes = cel.check_validations(obj, old, res.schema)
    if causes:
        raise invalid(res.group, res.kind, obj["metadata"].get("name", ""), causes)
    return obj, warnings


def validate_crd(obj: dict[str, Any]) -> None:
    spec = obj.get("spec") or {}
    name = obj["metadata"].get("name", "")
    names = spec.get("names") or {}
    causes: list[Cause] = []
    for path, value in (
        ("spec.group", spec.get("group")),
        ("spec.names.plural", names.get("plural")),
        ("spec.names.kind", names.get("kind")),
    ):
        if not value:
            causes.append(field_error("FieldValueRequired", path))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(
            field_error(
                "FieldValueNotSupported",
                "spec.scope",
                spec.get("scope"),
                'supported values: "Cluster", "Namespaced"',
            )
        )
    versions = spec.get("versions") or []
    if not versions or sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(
            field_error(
                "FieldValueInvalid",
                "spec.versions",
                versions,
                "must have exactly one version marked as storage version",
            )
        )
    if spec.get("group") and names.get("plural") and name != f"{names['plural']}.{spec['group']}":
        causes.append(
            field_error(
                "FieldValueInvalid",
                "metadata.name",
                name,
                'must be spec.names.plural+"."+spec.group',
            )
        )
    for i, ver in enumerate(versions):
        sch = (ver.get("schema") or {}).get("openAPIV3Schema")
        if sch:
            causes += cel.compile_rules(sch, root=f"spec.versions[{i}].schema.openAPIV3Schema")
        elif not spec.get("preserveUnknownFields"):
            causes.append(
                field_error(
                    "FieldValueRequired",
                    f"spec.versions[{i}].schema.openAPIV3Schema",
                    detail="schemas are required",
                )
            )
    if causes:
        raise invalid("apiextensions.k8s.io", "CustomResourceDefinition", name, causes)


def equal_ignoring_rv(a: dict[str, Any], b: dict[str, Any]) -> bool:
    ma = {k: v for k, v in a["metadata"].items() if k not in ("resourceVersion", "managedFields")}
    mb = {k: v for k, v in b["metadata"].items() if k not in ("resourceVersion", "managedFields")}
    return ma == mb and {k: v for k, v in a.items() if k != "metadata"} == {
        k: v for k, v in b.items() if k != "metadata"
    }


def random_suffix(n: int = 5) -> str:
    return "".join(random.choice(string.ascii_lowercase) for _ in range(n))


__all__ = ["ApiError", "apply_schema", "check_identity", "prepare_create", "prepare_update"]

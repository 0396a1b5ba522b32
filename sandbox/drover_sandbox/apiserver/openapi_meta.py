"""Local control plane, discovery layer: the ``meta.k8s.io/v1`` schemas OpenAPI documents embed.

ObjectMeta, ListMeta and their parts, with kube's descriptions shortened, so ``kubectl explain
<kind>.metadata`` works and the group-version documents are self-contained.
"""

from __future__ import annotations

from typing import Any

__all__ = ["META_SCHEMAS", "OBJECT_META_REF"]

_META = "io.k8s.apimachinery.pkg.apis.meta.v1"
OBJECT_META_REF = f"{_META}.ObjectMeta"


def _ref(name: str) -> dict[str, Any]:
    return {"allOf": [{"$ref": f"#/components/schemas/{_META}.{name}"}]}


def _string(description: str) -> dict[str, Any]:
    return {"type": "string", "default": "", "description": description}


def _string_map(description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": {"type": "string", "default": ""},
        "description": description,
    }


META_SCHEMAS: dict[str, Any] = {
    f"{_META}.ObjectMeta": {
        "type": "object",
        "description": "ObjectMeta is metadata that all persisted resources must have, which "
        "includes all objects users must create.",
        "properties": {
            "annotations": _string_map(
                "Annotations is an unstructured key value map stored with a resource that may "
                "be set by external tools to store and retrieve arbitrary metadata."
            ),
            "creationTimestamp": {
                **_ref("Time"),
                "description": "CreationTimestamp is a timestamp representing the server time "
                "when this object was created.",
            },
            "deletionGracePeriodSeconds": {
                "type": "integer",
                "format": "int64",
                "description": "Number of seconds allowed for this object to gracefully "
                "terminate before it will be removed from the system.",
            },
            "deletionTimestamp": {
                **_ref("Time"),
                "description": "DeletionTimestamp is RFC 3339 date and time at which this "
                "resource will be deleted.",
            },
            "finalizers": {
                "type": "array",
                "items": {"type": "string", "default": ""},
                "x-kubernetes-list-type": "set",
                "x-kubernetes-patch-strategy": "merge",
                "description": "Must be empty before the object is deleted from the registry.",
            },
            "generateName": _string(
                "GenerateName is an optional prefix, used by the server, to generate a unique "
                "name ONLY IF the Name field has not been provided."
            ),
            "generation": {
                "type": "integer",
                "format": "int64",
                "description": "A sequence number representing a specific generation of the "
                "desired state.",
            },
            "labels": _string_map(
                "Map of string keys and values that can be used to organize and categorize "
                "(scope and select) objects."
            ),
            "managedFields": {
                "type": "array",
                "items": {**_ref("ManagedFieldsEntry"), "default": {}},
                "description": "ManagedFields maps workflow-id and version to the set of fields "
                "that are managed by that workflow.",
            },
            "name": _string("Name must be unique within a namespace."),
            "namespace": _string(
                "Namespace defines the space within which each name must be unique."
            ),
            "ownerReferences": {
                "type": "array",
                "items": {**_ref("OwnerReference"), "default": {}},
                "x-kubernetes-list-map-keys": ["uid"],
                "x-kubernetes-list-type": "map",
                "x-kubernetes-patch-merge-key": "uid",
                "x-kubernetes-patch-strategy": "merge",
                "description": "List of objects depended by this object.",
            },
            "resourceVersion": _string(
                "An opaque value that represents the internal version of this object."
            ),
            "selfLink": _string("Deprecated: selfLink is a legacy read-only field."),
            "uid": _string("UID is the unique in time and space value for this object."),
        },
    },
    f"{_META}.ListMeta": {
        "type": "object",
        "description": "ListMeta describes metadata that synthetic resources must have.",
        "properties": {
            "continue": _string(
                "continue may be set if the user set a limit on the number of items returned."
            ),
            "remainingItemCount": {"type": "integer", "format": "int64"},
            "resourceVersion": _string(
                "String that identifies the server's internal version of this object."
            ),
            "selfLink": _string("Deprecated: selfLink is a legacy read-only field."),
        },
    },
    f"{_META}.OwnerReference": {
        "type": "object",
        "description": "OwnerReference contains enough information to let you identify an "
        "owning object.",
        "required": ["apiVersion", "kind", "name", "uid"],
        "properties": {
            "apiVersion": _string("API version of the referent."),
            "blockOwnerDeletion": {"type": "boolean"},
            "controller": {"type": "boolean"},
            "kind": _string("Kind of the referent."),
            "name": _string("Name of the referent."),
            "uid": _string("UID of the referent."),
        },
        "x-kubernetes-map-type": "atomic",
    },
    f"{_META}.ManagedFieldsEntry": {
        "type": "object",
        "description": "ManagedFieldsEntry is a workflow-id, a FieldSet and the group version "
        "of the resource that the fieldset applies to.",
        "properties": {
            "apiVersion": {"type": "string"},
            "fieldsType": {"type": "string"},
            "fieldsV1": {"type": "object"},
            "manager": {"type": "string"},
            "operation": {"type": "string"},
            "subresource": {"type": "string"},
            "time": _ref("Time"),
        },
    },
    f"{_META}.Time": {
        "type": "string",
        "format": "date-time",
        "description": "Time is a wrapper around time.Time which supports correct marshaling "
        "to YAML and JSON.",
    },
    f"{_META}.Status": {
        "type": "object",
        "description": "Status is a return value for calls that don't return other objects.",
        "properties": {
            "apiVersion": {"type": "string"},
            "code": {"type": "integer", "format": "int32"},
            "details": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "kind": {"type": "string"},
            "message": {"type": "string"},
            "metadata": {**_ref("ListMeta"), "default": {}},
            "reason": {"type": "string"},
            "status": {"type": "string"},
        },
        "x-kubernetes-group-version-kind": [{"group": "", "kind": "Status", "version": "v1"}],
    },
}

"""Builders layer: what every child carries — labels, owner reference and spec hash.

Every manifest Drover creates goes through `stamp`, so children are findable by label, garbage
collected with their parent and left alone when their spec hash has not changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from drover.api.base import API_VERSION, GROUP
from drover.api.common import StorageSpec

MANAGED_BY = "app.kubernetes.io/managed-by"
SPEC_HASH = f"{GROUP}/spec-hash"
MODEL_MOUNT_ROOT = "/models"

Manifest = dict[str, Any]


def kind_label(kind: str) -> str:
    """`drover.dev/inferenceservice` for kind InferenceService."""
    return f"{GROUP}/{kind.lower()}"


def standard_labels(kind: str, name: str) -> dict[str, str]:
    return {MANAGED_BY: "drover", kind_label(kind): name}


def owner_reference(parent: Mapping[str, Any]) -> dict[str, Any]:
    """A controller owner reference to a Drover object (its body as kopf or the API gives it)."""
    meta = parent["metadata"]
    return {
        "apiVersion": parent.get("apiVersion", API_VERSION),
        "kind": parent["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def spec_hash(manifest: Mapping[str, Any]) -> str:
    """A short, stable hash of everything but metadata and status."""
    content = {k: v for k, v in manifest.items() if k not in ("metadata", "status")}
    blob = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def stamp(
    manifest: Manifest, parent: Mapping[str, Any], *, extra_labels: Mapping[str, str] = {}
) -> Manifest:
    """Add labels, the owner reference and the spec-hash annotation to a child manifest."""
    meta = manifest.setdefault("metadata", {})
    meta.setdefault("namespace", parent["metadata"].get("namespace"))
    labels = meta.setdefault("labels", {})
    labels.update(standard_labels(parent["kind"], parent["metadata"]["name"]))
    labels.update(extra_labels)
    meta["ownerReferences"] = [owner_reference(parent)]
    meta.setdefault("annotations", {})[SPEC_HASH] = spec_hash(manifest)
    return manifest


def model_mount_path(claim: str) -> str:
    """Where a model-cache claim is mounted in every Ray pod."""
    return f"{MODEL_MOUNT_ROOT}/{claim}"


def build_claim(name: str, storage: StorageSpec) -> Manifest | None:
    """A PersistentVolumeClaim for `storage`, or None when it names an existing claim."""
    if storage.existing_claim:
        return None
    spec: dict[str, Any] = {
        "accessModes": [storage.access_mode.value],
        "resources": {"requests": {"storage": storage.size}},
    }
    if storage.storage_class_name:
        spec["storageClassName"] = storage.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": spec,
    }

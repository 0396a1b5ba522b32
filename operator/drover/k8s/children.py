"""I/O layer: create, read, patch and delete the children Drover owns.

`ensure_child` is the one write path: it creates a missing child, patches one whose spec-hash
annotation differs from the desired manifest's, and leaves an unchanged one alone — so a restarted
operator re-running every handler creates no duplicates and sends no needless writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import kopf
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from drover.builders.meta import SPEC_HASH
from drover.k8s.cache import WATCHED


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Kind:
    group: str  # "" for core
    version: str
    plural: str


KINDS: dict[str, Kind] = {
    "RayJob": Kind("ray.io", "v1", "rayjobs"),
    "RayService": Kind("ray.io", "v1", "rayservices"),
    "RayCluster": Kind("ray.io", "v1", "rayclusters"),
    "FoundationModel": Kind("drover.dev", "v1alpha1", "foundationmodels"),
    "FineTuneJob": Kind("drover.dev", "v1alpha1", "finetunejobs"),
    "VectorIndex": Kind("drover.dev", "v1alpha1", "vectorindexes"),
    "InferenceService": Kind("drover.dev", "v1alpha1", "inferenceservices"),
    "PersistentVolumeClaim": Kind("", "v1", "persistentvolumeclaims"),
    "ConfigMap": Kind("", "v1", "configmaps"),
}


def _is_custom(kind: Kind) -> bool:
    return kind.group != ""


def get_object(kind_name: str, namespace: str, name: str) -> dict[str, Any] | None:
    """The object as a plain dict, or None when it does not exist."""
    kind = KINDS[kind_name]
    try:
        if _is_custom(kind):
            obj = client.CustomObjectsApi().get_namespaced_custom_object(
                kind.group, kind.version, namespace, kind.plural, name
            )
            return dict(obj)
        core = client.CoreV1Api()
        reader = {
            "persistentvolumeclaims": core.read_namespaced_persistent_volume_claim,
            "configmaps": core.read_namespaced_config_map,
        }[kind.plural]
        raw = reader(name, namespace)
        return dict(client.ApiClient().sanitize_for_serialization(raw))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def read_dependency(kind_name: str, namespace: str, name: str) -> dict[str, Any] | None:
    """Another Drover resource this one depends on (a model, an index): the last body the
    watch showed (k8s/cache.py), else a GET."""
    return WATCHED.get(kind_name, namespace, name) or get_object(kind_name, namespace, name)


def list_objects(kind_name: str, namespace: str, label_selector: str = "") -> list[dict[str, Any]]:
    kind = KINDS[kind_name]
    if _is_custom(kind):
        result = client.CustomObjectsApi().list_namespaced_custom_object(
            kind.group, kind.version, namespace, kind.plural, label_selector=label_selector
        )
        return list(result.get("items", []))
    core = client.CoreV1Api()
    lister = {
        "persistentvolumeclaims": core.list_namespaced_persistent_volume_claim,
        "configmaps": core.list_namespaced_config_map,
    }[kind.plural]
    raw = lister(namespace, label_selector=label_selector)
    return list(client.ApiClient().sanitize_for_serialization(raw).get("items", []))


def ensure_child(manifest: Mapping[str, Any], *, immutable_spec: bool = False) -> Outcome:
    """Create the child, or patch it when its spec hash changed; `immutable_spec` never patches."""
    kind = KINDS[manifest["kind"]]
    meta = manifest["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    live = get_object(manifest["kind"], namespace, name)
    if live is None:
        try:
            _create(kind, namespace, manifest)
            return Outcome.CREATED
        except ApiException as exc:
            if exc.status == 404 and _is_custom(kind):
                raise kopf.TemporaryError(
                    f"the cluster does not serve {kind.plural}.{kind.group}/{kind.version}: "
                    + (
                        "install KubeRay v1.7 or newer first"
                        if kind.group == "ray.io"
                        else "install Drover's CRDs (helm install drover charts/drover)"
                    ),
                    delay=60,
                ) from None
            if exc.status != 409:  # lost a race with ourselves after a restart: fall through
                raise
            live = get_object(manifest["kind"], namespace, name) or {}
    wanted = meta.get("annotations", {}).get(SPEC_HASH)
    have = (live.get("metadata", {}).get("annotations") or {}).get(SPEC_HASH)
    if wanted == have or immutable_spec:
        return Outcome.UNCHANGED
    patch = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind", "status")}
    _patch(kind, namespace, name, patch)
    return Outcome.UPDATED


def _create(kind: Kind, namespace: str, manifest: Mapping[str, Any]) -> None:
    if _is_custom(kind):
        client.CustomObjectsApi().create_namespaced_custom_object(
            kind.group, kind.version, namespace, kind.plural, dict(manifest)
        )
    elif kind.plural == "persistentvolumeclaims":
        client.CoreV1Api().create_namespaced_persistent_volume_claim(namespace, dict(manifest))
    else:
        client.CoreV1Api().create_namespaced_config_map(namespace, dict(manifest))


def _patch(kind: Kind, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
    if _is_custom(kind):
        client.CustomObjectsApi().patch_namespaced_custom_object(
            kind.group,
            kind.version,
            namespace,
            kind.plural,
            name,
            dict(patch),
            _content_type="application/merge-patch+json",
        )
    elif kind.plural == "persistentvolumeclaims":
        # A bound claim's spec is immutable except for its size: only grow it.
        size = patch.get("spec", {}).get("resources")
        body = {"metadata": patch.get("metadata", {})}
        if size:
            body["spec"] = {"resources": size}
        client.CoreV1Api().patch_namespaced_persistent_volume_claim(name, namespace, body)
    else:
        client.CoreV1Api().patch_namespaced_config_map(name, namespace, dict(patch))


def apply_patch(
    kind_name: str, namespace: str, name: str, patch: Mapping[str, Any], *, retry: float
) -> bool:
    """Merge-patch a Drover resource: `status` through the status subresource, `metadata` on the
    object. False when the object is gone; a failed write is a TemporaryError retried after
    `retry` seconds (the caller is a timer, which kopf then keeps running)."""
    kind = KINDS[kind_name]
    api = client.CustomObjectsApi()
    try:
        if patch.get("status"):
            api.patch_namespaced_custom_object_status(
                kind.group,
                kind.version,
                namespace,
                kind.plural,
                name,
                {"status": patch["status"]},
                _content_type="application/merge-patch+json",
            )
        if patch.get("metadata"):
            _patch(kind, namespace, name, {"metadata": patch["metadata"]})
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise kopf.TemporaryError(
            f"writing {kind_name} {name} failed ({exc.status} {exc.reason}); "
            f"retrying in {retry:g} s",
            delay=retry,
        ) from None
    return True

"""Builders layer: a FoundationModel's children — its cache claim and its fetch RayJob.

The fetch job is named after a hash of the source, so a new source means a new job (and a new
digest directory in the same cache); the old weights stay until nothing uses them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from drover.api.foundationmodel import FoundationModel
from drover.builders.meta import MODEL_MOUNT_ROOT, Manifest, build_claim, model_mount_path
from drover.builders.names import kuberay_name
from drover.builders.raycluster import (
    ContainerImage,
    Mount,
    Placement,
    build_ray_cluster_spec,
    secret_path,
)
from drover.builders.rayjob import build_rayjob

FETCH_MODULE = "drover_workers.fetch"


def cache_claim_name(fm: FoundationModel) -> str:
    return fm.spec.cache.existing_claim or f"{fm.name[:50]}-cache"


def source_key(fm: FoundationModel) -> str:
    """Identifies what is fetched: changes exactly when the source does."""
    return hashlib.sha256(fm.spec.source.uri.encode()).hexdigest()[:8]


def fetch_job_name(fm: FoundationModel) -> str:
    return kuberay_name(fm.name, "fetch", source_key(fm))


def build_cache_pvc(fm: FoundationModel) -> Manifest | None:
    """The cache claim, or None when the spec names an existing claim."""
    return build_claim(cache_claim_name(fm), fm.spec.cache)


def build_fetch_config(fm: FoundationModel) -> dict[str, Any]:
    """The fetch worker's configuration (drover_workers.fetch.config)."""
    source: dict[str, Any] = {"uri": fm.spec.source.uri}
    ref = fm.spec.source.credentials_secret_ref
    if ref is not None:
        source["credentials"] = {"tokenFile": secret_path(ref.name, ref.key)}
    return {
        "source": source,
        "name": fm.name,
        "cacheRoot": model_mount_path(cache_claim_name(fm)),
        "pvcRoot": MODEL_MOUNT_ROOT,
    }


def build_fetch_rayjob(
    fm: FoundationModel, *, image: ContainerImage | str, env: Mapping[str, str] = {}
) -> Manifest:
    """The RayJob that downloads the weights into the cache (one CPU worker: it is I/O)."""
    # The driver runs on the worker (entrypoint resources): no claim on the head.
    cache = fm.spec.cache
    mounts = [
        Mount(
            cache_claim_name(fm),
            read_only=False,
            on_head=False,
            access_mode=None if cache.existing_claim else cache.access_mode,
            access_mode_field="spec.cache.accessMode",
        )
    ]
    ref = fm.spec.source.credentials_secret_ref
    source_claim = _source_claim(fm.spec.source.uri)
    if source_claim and source_claim != cache_claim_name(fm):
        mounts.append(Mount(source_claim, read_only=True, on_head=False))
    placement = Placement(class_name="fetch", cpu="1", memory="2Gi")
    cluster = build_ray_cluster_spec(
        image=image,
        placement=placement,
        mounts=mounts,
        secrets=[ref.name] if ref else [],
        env=env,
    )
    return build_rayjob(
        name=fetch_job_name(fm),
        module=FETCH_MODULE,
        worker_config=build_fetch_config(fm),
        cluster_spec=cluster,
        backoff_limit=2,
        entrypoint_num_cpus=placement.cpus,  # the driver downloads on the worker
    )


def _source_claim(uri: str) -> str | None:
    if not uri.startswith("pvc://"):
        return None
    return uri.removeprefix("pvc://").split("/", 1)[0]

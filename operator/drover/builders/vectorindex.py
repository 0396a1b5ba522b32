"""Builders layer: a VectorIndex's storage claim and the RayJob that builds version N+1.

The build key hashes everything the index content depends on (documents source, chunking, index
type, the embedder's digest): when it changes, a new version is built next to the current one,
which keeps serving until the new one is Ready.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from drover.api.vectorindex import VectorIndex
from drover.builders.meta import Manifest, build_claim, model_mount_path
from drover.builders.names import kuberay_name
from drover.builders.raycluster import (
    ContainerImage,
    Mount,
    Placement,
    build_ray_cluster_spec,
    secret_path,
)
from drover.builders.rayjob import build_rayjob

INDEX_MODULE = "drover_workers.index"


def index_claim_name(vi: VectorIndex) -> str:
    return vi.spec.storage.existing_claim or f"{vi.name[:50]}-index"


def build_key(vi: VectorIndex, embedder_digest: str) -> str:
    content = {
        "source": vi.spec.source.to_wire(),
        "chunking": vi.spec.chunking.to_wire(),
        "index": vi.spec.index.to_wire(),
        "embedder": embedder_digest,
    }
    blob = json.dumps(content, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def build_job_name(vi: VectorIndex, version: int, key: str = "") -> str:
    """`<index>-build-v<N>[-<key6>]`: the build key in the name makes a new key a new job."""
    return kuberay_name(vi.name, "build", f"v{version}", *([key[:6]] if key else []))


def build_index_pvc(vi: VectorIndex) -> Manifest | None:
    """The claim holding the index versions, or None for an existing claim."""
    return build_claim(index_claim_name(vi), vi.spec.storage)


def build_index_config(
    vi: VectorIndex, embedder_status: Mapping[str, Any], version: int
) -> dict[str, Any]:
    """The index worker's configuration (drover_workers.index.config)."""
    cache = embedder_status.get("cache") or {}
    embedder_root = model_mount_path(str(cache.get("claimName", "")))
    source: dict[str, Any] = {"uri": vi.spec.source.uri}
    if vi.spec.source.include:
        source["include"] = list(vi.spec.source.include)
    ref = vi.spec.source.credentials_secret_ref
    if ref is not None:
        source["tokenFile"] = secret_path(ref.name, ref.key)
    return {
        "documents": source,
        "embedderPath": f"{embedder_root}/{cache.get('path', '')}",
        "embedderDigest": str(embedder_status.get("digest", "")),
        "chunking": vi.spec.chunking.to_wire(),
        "index": vi.spec.index.to_wire(),
        "outputRoot": f"{model_mount_path(index_claim_name(vi))}/{vi.name}",
        "version": version,
        "pvcRoot": "/models",
    }


def build_index_rayjob(
    vi: VectorIndex,
    embedder_status: Mapping[str, Any],
    version: int,
    *,
    image: ContainerImage | str,
    env: Mapping[str, str] = {},
) -> Manifest:
    embedder_claim = str((embedder_status.get("cache") or {}).get("claimName", ""))
    storage = vi.spec.storage
    mounts = [
        Mount(
            index_claim_name(vi),
            read_only=False,
            on_head=False,  # the driver builds on the worker (entrypoint resources)
            access_mode=None if storage.existing_claim else storage.access_mode,
            access_mode_field="spec.storage.accessMode",
        )
    ]
    if embedder_claim != index_claim_name(vi):
        mounts.append(Mount(embedder_claim, read_only=True, on_head=False))
    ref = vi.spec.source.credentials_secret_ref
    placement = Placement(class_name="index", cpu="2", memory="4Gi")
    cluster = build_ray_cluster_spec(
        image=image,
        placement=placement,
        mounts=mounts,
        secrets=[ref.name] if ref else [],
        env=env,
    )
    return build_rayjob(
        name=build_job_name(vi, version),
        module=INDEX_MODULE,
        worker_config=build_index_config(vi, embedder_status, version),
        cluster_spec=cluster,
        backoff_limit=1,
        entrypoint_num_cpus=placement.cpus,  # the driver embeds on the worker
    )

"""Handlers layer: VectorIndex — wait for the embedder, build version N+1 in a RayJob, record it.

A change of the documents, chunking, index type or the embedder's digest changes the build key,
which starts a rebuild automatically; the current version keeps serving meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from drover.api.common import format_timestamp
from drover.api.vectorindex import VectorIndex
from drover.builders.meta import stamp
from drover.builders.vectorindex import (
    build_index_pvc,
    build_index_rayjob,
    build_job_name,
    build_key,
    index_claim_name,
)
from drover.config import OperatorConfig
from drover.handlers.common import (
    emit,
    invalid_spec,
    now,
    parse_resource,
    worker_image,
    write_status,
)
from drover.k8s import children, raydash
from drover.policy.dependencies import decide_model_ready
from drover.policy.indexing import decide_index, is_current, next_version
from drover.policy.jobs import classify_rayjob
from drover.policy.results import newly_unavailable, result_unavailable

DECLARED = ("EmbeddingModelReady", "Built")


def reconcile(
    body: Mapping[str, Any], patch: kopf.Patch, logger: Any, config: OperatorConfig
) -> None:
    vi = parse_resource(VectorIndex, body)
    if isinstance(vi, str):
        invalid_spec(body, patch, vi, DECLARED, logger)
        return
    recorded = dict(body.get("status") or {})
    namespace = vi.namespace or "default"
    embedder_name = vi.spec.embedding_model.name
    embedder = children.read_dependency("FoundationModel", namespace, embedder_name)
    embedder_cond = decide_model_ready(
        "EmbeddingModelReady", "spec.embeddingModel.name", embedder_name, embedder
    )
    embedder_status = (embedder or {}).get("status") or {}
    key = build_key(vi, str(embedder_status.get("digest", "")))
    rayjob, job_name = None, ""
    if embedder_cond.status is True and not is_current(recorded, key):
        pvc = build_index_pvc(vi)
        if pvc is not None:
            children.ensure_child(stamp(pvc, body))
        version = next_version(recorded)
        job_name = build_job_name(vi, version, key)
        manifest = build_index_rayjob(vi, embedder_status, version, image=worker_image(config))
        manifest["metadata"]["name"] = job_name
        if children.ensure_child(stamp(manifest, body)) is children.Outcome.CREATED:
            logger.info(f"building version {version} of {vi.name} in {job_name} (key {key})")
        rayjob = children.get_object("RayJob", namespace, job_name)
    report = raydash.read_worker_report(rayjob) if rayjob else None
    result = report.result if report else None
    unavailable = result_unavailable(rayjob, log_read=report is not None, result=result, now=now())
    decision = decide_index(
        index_dir=vi.name,
        embedder=embedder_cond,
        key=key,
        recorded=recorded,
        job=classify_rayjob(rayjob),
        job_name=job_name,
        result=result,
        now_iso=format_timestamp(now()),
        result_unavailable=unavailable,
    )
    fields = {"phase": decision.phase, "claimName": index_claim_name(vi), **decision.fields}
    write_status(
        body, patch, fields=fields, conditions=decision.conditions, declared=DECLARED, when=now()
    )
    warn = bool(unavailable) and newly_unavailable(recorded.get("conditions"), "Built")
    if recorded.get("phase") != decision.phase or warn:
        emit(body, decision.event, logger)

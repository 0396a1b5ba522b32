"""Handlers layer: FoundationModel — cache claim + fetch RayJob, status from the job's report.

Parse → build (claim, job) → ensure → read the job and the worker's report → decide → status.
Deletion waits, with a condition naming the users, while a service or job still uses the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from drover.api.foundationmodel import FoundationModel
from drover.api.reasons import FoundationModelReason
from drover.builders.errors import SpecError
from drover.builders.foundationmodel import (
    build_cache_pvc,
    build_fetch_rayjob,
    cache_claim_name,
    fetch_job_name,
    source_key,
)
from drover.builders.meta import stamp
from drover.builders.placement import resolve_placement
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
from drover.k8s.secrets import secret_key_state
from drover.policy.conditions import Cond
from drover.policy.dependencies import decide_secret_ready
from drover.policy.events import Event
from drover.policy.fetching import cache_ready_condition, decide_fetch
from drover.policy.jobs import classify_rayjob
from drover.policy.results import newly_unavailable, result_unavailable
from drover.policy.usage import users_of_model

DECLARED = ("CacheReady", "Fetched")


def reconcile(
    body: Mapping[str, Any], patch: kopf.Patch, logger: Any, config: OperatorConfig
) -> None:
    fm = parse_resource(FoundationModel, body)
    if isinstance(fm, str):
        invalid_spec(body, patch, fm, DECLARED, logger)
        return
    problem = _accelerator_problem(fm, config)
    if problem is not None:
        invalid_spec(body, patch, problem.message, DECLARED, logger, reason=problem.reason)
        return
    recorded = dict(body.get("status") or {})
    claim = cache_claim_name(fm)
    pvc = build_cache_pvc(fm)
    if pvc is not None:
        outcome = children.ensure_child(stamp(pvc, body))
        if outcome is children.Outcome.CREATED:
            logger.info(f"created cache claim {claim} ({fm.spec.cache.size})")
    missing = _missing_credentials(fm, config)
    if missing is not None:
        _hold_for_credentials(body, patch, claim, missing, logger)
        return
    job_name = fetch_job_name(fm)
    settled = recorded.get("sourceKey") == source_key(fm) and recorded.get("digest")
    rayjob = None
    if not settled:
        manifest = stamp(build_fetch_rayjob(fm, image=worker_image(config)), body)
        if children.ensure_child(manifest) is children.Outcome.CREATED:
            emit(
                body,
                Event("Normal", "FetchStarted", f"RayJob {job_name} fetches {fm.spec.source.uri}"),
                logger,
            )
        rayjob = children.get_object("RayJob", fm.namespace or "default", job_name)
    report = raydash.read_worker_report(rayjob) if rayjob else None
    result = report.result if report else None
    unavailable = result_unavailable(rayjob, log_read=report is not None, result=result, now=now())
    decision = decide_fetch(
        model=fm.name,
        source_key=source_key(fm),
        job_name=job_name,
        claim=claim,
        recorded=recorded,
        job=classify_rayjob(rayjob),
        progress=report.progress if report else None,
        result=result,
        result_unavailable=unavailable,
    )
    warn = bool(unavailable) and newly_unavailable(recorded.get("conditions"), "Fetched")
    phase_changed = recorded.get("phase") != decision.phase
    write_status(
        body,
        patch,
        fields={"phase": decision.phase, **decision.fields},
        conditions=decision.conditions,
        declared=DECLARED,
        when=now(),
    )
    if phase_changed or warn:
        emit(body, decision.event, logger)


def _accelerator_problem(fm: FoundationModel, config: OperatorConfig) -> SpecError | None:
    """The serving hint's class: one the configuration lacks is found now, not at serve time."""
    try:
        resolve_placement(
            fm.spec.accelerator,
            config.accelerator_classes,
            field="spec.accelerator",
            parameter_count=fm.spec.parameter_count,
        )
    except SpecError as exc:
        return exc
    return None


def _missing_credentials(fm: FoundationModel, config: OperatorConfig) -> Cond | None:
    """With rbac.readSecrets on: Fetched=False naming a missing credentials Secret or key."""
    ref = fm.spec.source.credentials_secret_ref
    if ref is None or not config.operator.read_secrets:
        return None
    namespace = fm.namespace or "default"
    state = secret_key_state(namespace, ref.name, ref.key)
    field = "spec.source.credentialsSecretRef"
    return decide_secret_ready("Fetched", field, namespace, ref.name, ref.key, state.value)


def _hold_for_credentials(
    body: Mapping[str, Any], patch: kopf.Patch, claim: str, missing: Cond, logger: Any
) -> None:
    """No job yet: its pods would only fail on the absent Secret. The poll timer retries."""
    changed = write_status(
        body,
        patch,
        fields={"phase": "Pending"},
        conditions=[cache_ready_condition(claim), missing],
        declared=DECLARED,
        when=now(),
    )
    if changed:
        emit(body, Event("Warning", missing.reason, missing.message), logger)


def on_delete(
    body: Mapping[str, Any], patch: kopf.Patch, logger: Any, config: OperatorConfig
) -> None:
    """Hold deletion while FineTuneJobs, VectorIndexes or InferenceServices use this model."""
    namespace = body["metadata"].get("namespace") or "default"
    name = body["metadata"]["name"]
    users = users_of_model(
        name,
        finetunejobs=children.list_objects("FineTuneJob", namespace),
        vectorindexes=children.list_objects("VectorIndex", namespace),
        inferenceservices=children.list_objects("InferenceService", namespace),
    )
    if users:
        message = f"deletion waits: still used by {', '.join(users)}; delete or repoint them first"
        write_status(
            body,
            patch,
            fields={},
            conditions=[Cond("InUse", True, FoundationModelReason.IN_USE, message)],
            declared=DECLARED,
            when=now(),
        )
        raise kopf.TemporaryError(message, delay=config.reconcile.dependency_retry_seconds)
    logger.info(f"model {name} is no longer used; its cache claim is removed with it")

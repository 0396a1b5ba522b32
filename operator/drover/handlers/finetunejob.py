"""Handlers layer: FineTuneJob — wait for the base model, train in a RayJob, gate on evaluation.

On success it creates the output FoundationModel (with lineage); the poll timer is the retry
while the base model is not ready, so waiting costs one cheap read per interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from drover.api.common import format_timestamp
from drover.api.finetunejob import FineTuneJob
from drover.api.foundationmodel import FoundationModel
from drover.api.reasons import DependencyReason, JobReason
from drover.builders.errors import SpecError
from drover.builders.finetunejob import (
    build_finetune_rayjob,
    build_output_model,
    output_model_name,
    tracking_tags,
    training_job_name,
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
from drover.k8s.tracking import TrackingError, register_model_version
from drover.policy.conditions import Cond
from drover.policy.events import Event
from drover.policy.jobs import classify_rayjob
from drover.policy.results import newly_unavailable, result_unavailable
from drover.policy.training import decide_base_model, decide_training

DECLARED = ("BaseModelReady", "Trained", "Evaluated")


def reconcile(
    body: Mapping[str, Any], patch: kopf.Patch, logger: Any, config: OperatorConfig
) -> None:
    job = parse_resource(FineTuneJob, body)
    if isinstance(job, str):
        invalid_spec(body, patch, job, DECLARED, logger)
        return
    recorded = dict(body.get("status") or {})
    namespace = job.namespace or "default"
    base_obj = children.read_dependency("FoundationModel", namespace, job.spec.base_model.name)
    base_cond = decide_base_model(job.spec.base_model.name, base_obj)
    when = now()
    if base_cond.status is not True or base_obj is None:
        waiting = decide_training(
            base=base_cond,
            job=classify_rayjob(None),
            job_name="",
            progress=None,
            result=None,
            output_model="",
            now_iso=format_timestamp(when),
        )
        _record(body, patch, logger, recorded, waiting)
        return
    base = parse_resource(FoundationModel, base_obj)
    if isinstance(base, str):
        _fail(
            body,
            patch,
            logger,
            DependencyReason.DEPENDENCY_FAILED,
            f"base model is invalid: {base}",
        )
        return
    base_status = base_obj.get("status") or {}
    try:
        manifest = _training_rayjob(job, base, base_status, config)
    except SpecError as exc:  # no accelerator class, or a claim several nodes cannot share
        _fail(body, patch, logger, exc.reason, exc.message)
        return
    children.ensure_child(stamp(manifest, body))
    name = training_job_name(job)
    rayjob = children.get_object("RayJob", namespace, name)
    report = raydash.read_worker_report(rayjob) if rayjob else None
    result = report.result if report else None
    unavailable = result_unavailable(rayjob, log_read=report is not None, result=result, now=when)
    decision = decide_training(
        base=base_cond,
        job=classify_rayjob(rayjob),
        job_name=name,
        progress=report.progress if report else None,
        result=result,
        output_model=output_model_name(job),
        now_iso=format_timestamp(when),
        result_unavailable=unavailable,
    )
    extra: dict[str, Any] = {}
    if decision.create_output and result is not None:
        extra = _produce_output(job, base, base_status, result, recorded, config, logger)
    _record(body, patch, logger, recorded, decision, extra)


def _produce_output(
    job: FineTuneJob,
    base: FoundationModel,
    base_status: Mapping[str, Any],
    result: Mapping[str, Any],
    recorded: Mapping[str, Any],
    config: OperatorConfig,
    logger: Any,
) -> dict[str, Any]:
    """The produced FoundationModel, created once the evaluation gate passed, and its MLflow
    record; returns the status fields the latter adds."""
    output = build_output_model(job, base, base_status, result)
    if children.ensure_child(output) is children.Outcome.CREATED:
        logger.info(f"created FoundationModel {output_model_name(job)} from {job.name}")
    return _tracking_status(job, base, base_status, output, result, recorded, config, logger)


def _training_rayjob(
    job: FineTuneJob, base: FoundationModel, base_status: Mapping[str, Any], config: OperatorConfig
) -> dict[str, Any]:
    """The training RayJob on the accelerator class the job asks for; raises SpecError."""
    placement = resolve_placement(
        job.spec.resources.accelerator,
        config.accelerator_classes,
        field="spec.resources.accelerator",
        parameter_count=base.spec.parameter_count,
    )
    return build_finetune_rayjob(
        job,
        base,
        base_status,
        placement=placement,
        image=worker_image(config, placement),
        tracking=config.tracking,
    )


def _tracking_status(
    job: FineTuneJob,
    base: FoundationModel,
    base_status: Mapping[str, Any],
    output: Mapping[str, Any],
    result: Mapping[str, Any],
    recorded: Mapping[str, Any],
    config: OperatorConfig,
    logger: Any,
) -> dict[str, Any]:
    """The MLflow run the worker logged, and the produced model registered as a version of
    `<namespace>.<base model>` (once: status keeps the version, and a retry finds it)."""
    run = result.get("tracking") or {}
    if not config.tracking.mlflow_uri or not run.get("runId"):
        return {}
    known = dict(recorded.get("tracking") or {})
    if known.get("modelVersion"):
        return {"tracking": known}
    registered = f"{job.namespace or 'default'}.{base.name}"
    tags = {
        **tracking_tags(job, base, base_status),
        "drover.dev/foundationmodel": output["metadata"]["name"],
        "drover.dev/digest": str(result.get("digest", "")),
    }
    tracking = {"runId": run["runId"], "experimentId": run.get("experimentId")}
    try:
        version = register_model_version(
            config.tracking.mlflow_uri,
            registered,
            source=output["spec"]["source"]["uri"],
            run_id=run["runId"],
            tags=tags,
        )
    except TrackingError as exc:  # the model is there either way; the next poll retries
        logger.warning(f"MLflow: registering {output['metadata']['name']} failed: {exc}")
        return {"tracking": tracking}
    logger.info(f"MLflow: {output['metadata']['name']} is version {version} of {registered}")
    return {"tracking": {**tracking, "registeredModel": registered, "modelVersion": version}}


def _record(
    body: Mapping[str, Any],
    patch: kopf.Patch,
    logger: Any,
    recorded: Mapping[str, Any],
    decision: Any,
    extra: Mapping[str, Any] | None = None,
) -> None:
    fields = {"phase": decision.phase, **decision.fields, **(extra or {})}
    if decision.phase == "Running" and not recorded.get("startTime"):
        fields["startTime"] = format_timestamp(now())
    write_status(
        body, patch, fields=fields, conditions=decision.conditions, declared=DECLARED, when=now()
    )
    gave_up = decision.event is not None and decision.event.reason == JobReason.RESULT_UNAVAILABLE
    if recorded.get("phase") != decision.phase or (
        gave_up and newly_unavailable(recorded.get("conditions"), "Trained")
    ):
        emit(body, decision.event, logger)


def _fail(
    body: Mapping[str, Any], patch: kopf.Patch, logger: Any, reason: str, message: str
) -> None:
    changed = write_status(
        body,
        patch,
        fields={"phase": "Failed"},
        conditions=[Cond("Trained", False, reason, message)],
        declared=DECLARED,
        when=now(),
    )
    if changed:
        emit(body, Event("Warning", reason, message), logger)

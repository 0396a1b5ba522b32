"""Policy layer: a FineTuneJob's status from its base model, its RayJob and the worker's report.

Pure. The job waits for its base model, runs, evaluates, and succeeds only when every evaluation
threshold passes; otherwise it fails with reason EvaluationBelowThreshold and the numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from drover.api.reasons import DependencyReason, FineTuneJobReason, JobReason
from drover.policy.conditions import Cond
from drover.policy.dependencies import decide_model_ready
from drover.policy.events import Event
from drover.policy.jobs import JobState, JobView, failed_for_good


@dataclass(frozen=True)
class TrainingDecision:
    phase: str
    conditions: tuple[Cond, ...]
    fields: Mapping[str, Any] = field(default_factory=dict)
    event: Event | None = None
    create_output: bool = False
    done: bool = False


def decide_base_model(name: str, base: Mapping[str, Any] | None) -> Cond:
    """BaseModelReady from the base FoundationModel (missing, not ready, failed or ready)."""
    return decide_model_ready("BaseModelReady", "spec.baseModel.name", name, base)


def progress_fields(progress: Mapping[str, Any] | None, now_iso: str) -> dict[str, Any]:
    if not progress or "step" not in progress:
        return {}
    step = int(progress.get("step") or 0)
    total = progress.get("totalSteps")
    out: dict[str, Any] = {"step": step, "updatedAt": now_iso}
    if isinstance(total, int) and total > 0:
        out["totalSteps"] = total
        out["percent"] = min(100, round(100 * step / total))
    for src, dst in (("loss", "loss"), ("tokensPerSecond", "tokensPerSecond"), ("epoch", "epoch")):
        if isinstance(progress.get(src), int | float):
            out[dst] = round(float(progress[src]), 4)
    return out


def evaluation_fields(result: Mapping[str, Any]) -> dict[str, Any]:
    ev = result.get("evaluation") or {}
    out: dict[str, Any] = {}
    for key in ("loss", "perplexity", "rougeL", "bleu", "samples"):
        if isinstance(ev.get(key), int | float):
            out[key] = round(float(ev[key]), 4) if key != "samples" else int(ev[key])
    out["passed"] = bool(result.get("passed", ev.get("passed", True)))
    failed = result.get("failedThresholds", ev.get("failedThresholds")) or []
    out["failedThresholds"] = [str(f) for f in failed]
    return out


def decide_training(
    *,
    base: Cond,
    job: JobView,
    job_name: str,
    progress: Mapping[str, Any] | None,
    result: Mapping[str, Any] | None,
    output_model: str,
    now_iso: str,
    result_unavailable: str | None = None,
) -> TrainingDecision:
    """The FineTuneJob's next status; `result_unavailable` (policy.results) says the succeeded
    job's result was given up on."""
    if base.status is not True:
        phase = (
            "Failed" if base.reason == DependencyReason.DEPENDENCY_FAILED else "WaitingForBaseModel"
        )
        return TrainingDecision(phase, (base,), event=Event("Normal", base.reason, base.message))
    fields: dict[str, Any] = {"rayJobName": job_name}
    prog = progress_fields(progress, now_iso)
    if prog:
        fields["progress"] = prog
    if failed_for_good(job, result):
        detail = (result or {}).get("error") or job.message
        message = f"training failed: {detail}"
        return TrainingDecision(
            "Failed",
            (base, Cond("Trained", False, FineTuneJobReason.TRAINING_FAILED, message)),
            {**fields, "completionTime": now_iso},
            Event("Warning", "TrainingFailed", message),
            done=True,
        )
    if job.state is JobState.SUCCEEDED and result is not None:
        return _evaluated(base, fields, result, job_name, output_model, now_iso)
    if job.state is JobState.SUCCEEDED and result_unavailable:
        # Still Evaluating, so the poll goes on: once the user deletes the RayJob it is rerun.
        return TrainingDecision(
            "Evaluating",
            (base, Cond("Trained", False, JobReason.RESULT_UNAVAILABLE, result_unavailable)),
            fields,
            Event("Warning", JobReason.RESULT_UNAVAILABLE, result_unavailable),
        )
    if job.state is JobState.SUCCEEDED:
        running = Cond(
            "Trained", None, FineTuneJobReason.FINISHING, f"{job.message}; reading the result"
        )
        return TrainingDecision("Evaluating", (base, running), fields)
    if job.state is JobState.RUNNING:
        return _running(base, job, job_name, prog, fields)
    return TrainingDecision(
        "Pending", (base, Cond("Trained", None, FineTuneJobReason.SUBMITTED, job.message)), fields
    )


def _evaluated(
    base: Cond,
    fields: Mapping[str, Any],
    result: Mapping[str, Any],
    job_name: str,
    output_model: str,
    now_iso: str,
) -> TrainingDecision:
    """The job finished with a result: it succeeds only when every evaluation threshold passed."""
    evaluation = evaluation_fields(result)
    fields = {**fields, "evaluation": evaluation, "completionTime": now_iso}
    if result.get("digest"):
        fields["outputDigest"] = str(result["digest"])
    trained = Cond("Trained", True, FineTuneJobReason.TRAINED, f"{job_name} finished")
    if not evaluation["passed"]:
        message = "evaluation below threshold: " + "; ".join(evaluation["failedThresholds"])
        return TrainingDecision(
            "Failed",
            (
                base,
                trained,
                Cond("Evaluated", False, FineTuneJobReason.EVALUATION_BELOW_THRESHOLD, message),
            ),
            fields,
            Event("Warning", "EvaluationBelowThreshold", message),
            done=True,
        )
    message = f"evaluation passed; produced FoundationModel {output_model}"
    return TrainingDecision(
        "Succeeded",
        (base, trained, Cond("Evaluated", True, FineTuneJobReason.EVALUATION_PASSED, message)),
        {**fields, "outputModel": {"name": output_model}},
        Event("Normal", "Succeeded", message),
        create_output=True,
        done=True,
    )


def _running(
    base: Cond,
    job: JobView,
    job_name: str,
    prog: Mapping[str, Any],
    fields: Mapping[str, Any],
) -> TrainingDecision:
    """Training under way: the step and loss when the worker reports them."""
    text = job.message
    if prog.get("totalSteps"):
        text = f"step {prog['step']}/{prog['totalSteps']}, loss {prog.get('loss')}"
    return TrainingDecision(
        "Running",
        (
            base,
            Cond("Trained", None, FineTuneJobReason.TRAINING, text),
            Cond("Evaluated", None, FineTuneJobReason.PENDING, ""),
        ),
        fields,
        Event("Normal", "TrainingStarted", f"RayJob {job_name} is training"),
    )

"""Handlers layer: the drift and retraining timer of an InferenceService.

Every `drift.intervalSeconds` it reads the stable version's prompt histograms of the last window
from Prometheus, asks `decide_drift` (PSI against the reference kept in `status.drift`), and sets
`DriftDetected`, the `drover_drift_*` series and an event on each change. With
`spec.retraining` it then follows the FineTuneJob in flight or creates one (`decide_retraining`,
state in `status.retraining`); the serving reconcile serves the run that passed its gate.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import kopf

from drover.api.base import API_VERSION
from drover.api.drift import DriftSignal, DriftStatus, RetrainingStatus
from drover.api.inferenceservice import InferenceService
from drover.api.versions import version_id
from drover.builders.meta import stamp
from drover.config import OperatorConfig
from drover.handlers.common import emit, now, parse_resource, write_status
from drover.handlers.inferenceservice import DECLARED
from drover.k8s import children
from drover.k8s.metrics import MetricsUnavailable, Selector, drift_buckets_query, query_histogram
from drover.observability import DRIFT_DETECTED, DRIFT_PSI, RETRAININGS
from drover.policy.conditions import Cond
from drover.policy.drift import CONDITION, decide_drift
from drover.policy.retraining import JobView, decide_retraining, job_spec, served_names
from drover.policy.sequential import Histogram


def check(body: Mapping[str, Any], patch: kopf.Patch, logger: Any, config: OperatorConfig) -> None:
    svc = parse_resource(InferenceService, body)
    if isinstance(svc, str):
        return
    recorded = dict(body.get("status") or {})
    if svc.spec.drift is None and recorded.get("drift"):
        _withdraw(recorded, patch)  # drift turned off: its state and condition go
        return
    if svc.spec.drift is None and svc.spec.retraining is None:
        return
    if not recorded.get("stable"):
        return  # nothing serves yet
    when, fields, conds = now(), {}, []
    drift = DriftStatus.model_validate(recorded["drift"]) if recorded.get("drift") else None
    detected = bool(drift and drift.detected)
    if svc.spec.drift is not None and _due(drift, svc.spec.drift.interval_seconds, when):
        status, cond = _test_drift(svc, body, recorded, drift, config, logger, when)
        fields["drift"], detected = status.to_wire(), status.detected
        conds.append(cond)
    if svc.spec.retraining is not None:
        fields["retraining"] = _retrain(svc, body, recorded, detected, logger, when)
    if fields:
        write_status(body, patch, fields=fields, conditions=conds, declared=DECLARED, when=when)


def _withdraw(recorded: Mapping[str, Any], patch: kopf.Patch) -> None:
    patch.status["drift"] = None
    conds = recorded.get("conditions") or []
    if any(c.get("type") == CONDITION for c in conds):
        patch.status["conditions"] = [c for c in conds if c.get("type") != CONDITION]


def _due(drift: DriftStatus | None, interval: int, when: datetime) -> bool:
    last = drift.last_check_time if drift else None
    return last is None or when - last >= timedelta(seconds=interval)


def _read(
    svc: InferenceService, version: str, config: OperatorConfig, when: datetime
) -> tuple[dict[DriftSignal, Histogram | None], str | None]:
    """The last window's histogram of each signal the service has; the failure, if any."""
    assert svc.spec.drift is not None
    selector = Selector(svc.name, svc.namespace or "default", version)
    signals = [
        s
        for s in svc.spec.drift.signals
        if s is DriftSignal.PROMPT_LENGTH or svc.spec.retrieval is not None
    ]
    out: dict[DriftSignal, Histogram | None] = {}
    for signal in signals:
        promql = drift_buckets_query(signal.value, selector, svc.spec.drift.window_seconds)
        try:
            out[signal] = query_histogram(
                config.prometheus.url, promql, at=when, timeout=config.prometheus.timeout_seconds
            )
        except MetricsUnavailable as exc:
            return {}, f"{exc} (query: {promql})"
    return out, None


def _test_drift(
    svc: InferenceService,
    body: Mapping[str, Any],
    recorded: Mapping[str, Any],
    previous: DriftStatus | None,
    config: OperatorConfig,
    logger: Any,
    when: datetime,
) -> tuple[DriftStatus, Cond]:
    assert svc.spec.drift is not None
    version = version_id(str(recorded["stable"].get("digest", "")))
    recent, failure = _read(svc, version, config, when)
    decision = decide_drift(svc.spec.drift, previous, version, recent, when, failure=failure)
    ns = svc.namespace or "default"
    for signal, value in decision.status.psi.items():
        DRIFT_PSI.set((ns, svc.name, signal), value)
    DRIFT_DETECTED.set((ns, svc.name), 1 if decision.status.detected else 0)
    emit(body, decision.event, logger)
    return decision.status, decision.condition


def _job_view(namespace: str, name: str) -> JobView:
    job = children.get_object("FineTuneJob", namespace, name)
    if job is None:
        return JobView(exists=False)
    status = job.get("status") or {}
    failed = [
        c.get("message", "")
        for c in status.get("conditions") or []
        if c.get("type") in ("Trained", "Evaluated", "BaseModelReady")
        and c.get("status") == "False"
    ]
    return JobView(
        exists=True,
        phase=status.get("phase"),
        output_model=(status.get("outputModel") or {}).get("name"),
        message="; ".join(m for m in failed if m),
    )


def _rolling_out(svc: InferenceService, recorded: Mapping[str, Any]) -> bool:
    """A canary runs, or a passed retraining is not the stable version yet (the serving
    reconcile starts its canary at its next poll) and was not rolled back."""
    if recorded.get("canary"):
        return True
    names = served_names(svc.spec, recorded.get("retraining"))
    if names == served_names(svc.spec, None):
        return False  # nothing retrained is to be served
    wanted = "+".join(names)
    rejected = {r.get("model") for r in (recorded.get("rollout") or {}).get("rejected") or []}
    return str((recorded.get("stable") or {}).get("model", "")) != wanted and wanted not in rejected


def _retrain(
    svc: InferenceService,
    body: Mapping[str, Any],
    recorded: Mapping[str, Any],
    detected: bool,
    logger: Any,
    when: datetime,
) -> dict[str, Any]:
    ns = svc.namespace or "default"
    raw = recorded.get("retraining")
    previous = RetrainingStatus.model_validate(raw) if raw else None
    current = previous.current if previous else None
    decision = decide_retraining(
        svc.name,
        svc.spec,
        previous,
        _job_view(ns, current.job) if current else None,
        drift_detected=detected,
        rolling_out=_rolling_out(svc, recorded),
        now=when,
    )
    if decision.create is not None and svc.spec.retraining is not None:
        manifest = {
            "apiVersion": API_VERSION,
            "kind": "FineTuneJob",
            "metadata": {"name": decision.create, "namespace": ns},
            "spec": job_spec(svc.spec.retraining, decision.create),
        }
        # Idempotent: a run from a stale body (or after a restart) finds the job and says nothing.
        if children.ensure_child(stamp(manifest, body)) is children.Outcome.CREATED:
            RETRAININGS.labels(ns, svc.name, str(decision.trigger)).inc()
        else:
            decision.events = [e for e in decision.events if e.reason != "RetrainingStarted"]
    for event in decision.events:
        emit(body, event, logger)
    wire: dict[str, Any] = decision.status.to_wire()
    return wire

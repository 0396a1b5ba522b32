"""Handlers layer: the autoscaler timer of an InferenceService.

Reads the stable version's load (and its engine's healthy replicas) from Prometheus, in SLO mode
also its peak over the planning span and its time-to-first-token histogram, asks
`decide_replicas`, records the decision in `status.autoscaling` (the memory the next decision
needs, so a restart loses nothing) and `MetricsUnavailable` when it has no load to decide from,
and emits an event on each change. The serving handler turns the recorded count into the Serve
config's `num_replicas` — never into a field of the spec a GitOps repository owns.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import kopf

from drover.api.autoscaling import AutoscalingSpec, AutoscalingStatus
from drover.api.inferenceservice import InferenceService
from drover.api.reasons import InferenceServiceReason
from drover.api.rollout import ServedVersion
from drover.api.versions import version_app, version_id
from drover.config import OperatorConfig
from drover.handlers.common import emit, now, parse_resource, write_status
from drover.handlers.inferenceservice import DECLARED
from drover.handlers.serving_inputs import read_healthy_replicas
from drover.k8s.metrics import (
    ENGINE_SIGNALS,
    MetricsUnavailable,
    Selector,
    buckets_query,
    peak_query,
    problem_of,
    query_histogram,
    query_one,
    signal_query,
)
from drover.observability import METRICS_UNAVAILABLE, SCALE_EVENTS, record_slo
from drover.policy.autoscale import ScaleDecision, ScaleOutcome, decide_replicas
from drover.policy.conditions import get_condition
from drover.policy.events import Event
from drover.policy.load import LoadSnapshot
from drover.policy.metrics_health import (
    CONDITION,
    MetricsProblem,
    Reader,
    decide_metrics_condition,
    withdraw_metrics_condition,
)
from drover.policy.serving import ready_replicas
from drover.policy.slo import attainment_of, planning_span_seconds

# kopf hands a timer the body from the watch stream, which can lag behind this process's own last
# status patch; a decision made from it would repeat the previous one (seen in the Prometheus
# integration test: 3→2, then 3→1 two seconds later). Such a run is skipped instead, for at most
# STALE_GRACE after the write (then the cluster's status wins, e.g. if the patch was lost).
_WRITTEN: dict[str, datetime] = {}  # object uid → lastDecisionTime this process last wrote
STALE_GRACE = timedelta(seconds=30)


def _behind(uid: str, previous: AutoscalingStatus | None, when: datetime) -> bool:
    """Whether the recorded status does not show this process's last decision yet."""
    written = _WRITTEN.get(uid)
    if written is None or when - written >= STALE_GRACE:
        return False
    seen = previous.last_decision_time if previous else None
    return seen is None or seen < written


def _slo_inputs(
    config: OperatorConfig,
    spec: AutoscalingSpec,
    selector: Selector,
    previous: AutoscalingStatus | None,
    when: datetime,
) -> tuple[float | None, float | None, float | None]:
    """SLO mode's extra readings: (peak in-flight over the planning span, attainment of the TTFT
    bound over the SLO window, requests it rests on). Each is None when Prometheus has no
    answer; the decision then plans on the mean and learns nothing, it does not hold."""
    if spec.slo is None:
        return None, None, None
    url, timeout = config.prometheus.url, config.prometheus.timeout_seconds
    span = planning_span_seconds(spec, previous.slo if previous else None)
    peak: float | None = None
    attained: float | None = None
    requests: float | None = None
    with contextlib.suppress(MetricsUnavailable):  # the mean still decides
        peak = query_one(
            url,
            peak_query(spec.signal.value, selector, spec.panic.window_seconds, span),
            at=when,
            timeout=timeout,
        )
    with contextlib.suppress(MetricsUnavailable):  # nothing learnt this time
        histogram = query_histogram(
            url, buckets_query("ttft", selector, spec.slo.window_seconds), at=when,
            timeout=timeout,
        )  # fmt: skip
        attained, requests = attainment_of(histogram, spec.slo.ttft_seconds)
    return peak, attained, requests


def autoscale(
    body: Mapping[str, Any], patch: kopf.Patch, logger: Any, config: OperatorConfig
) -> None:
    svc = parse_resource(InferenceService, body)
    if isinstance(svc, str):
        return
    recorded = dict(body.get("status") or {})
    previous_cond = get_condition(recorded.get("conditions"), CONDITION)
    if svc.spec.autoscaling is None:
        _withdraw_metrics_condition(body, patch, config, previous_cond)
        return
    if not _serving_scalable(recorded):
        return
    spec, when = svc.spec.autoscaling, now()
    previous = (
        AutoscalingStatus.model_validate(recorded["autoscaling"])
        if recorded.get("autoscaling")
        else None
    )
    uid = str((body.get("metadata") or {}).get("uid") or f"{svc.namespace}/{svc.name}")
    if _behind(uid, previous, when):
        logger.debug("status.autoscaling does not show the last decision yet; next run decides")
        return
    # The decision compares the load with the replicas it last ordered (`current`).
    current = previous.desired_replicas if previous else svc.spec.replicas.min
    stable = ServedVersion.model_validate(recorded["stable"])
    snapshot, problem = _read_load(config, svc, spec, stable, current, previous, when)
    bounds = (svc.spec.replicas.min, svc.spec.replicas.max)
    decision = decide_replicas(
        snapshot, spec, bounds, previous, when, capacity=svc.spec.runtime.max_num_seqs
    )
    METRICS_UNAVAILABLE.labels(svc.namespace or "default", svc.name).set(1 if problem else 0)
    metrics_cond = decide_metrics_condition(
        Reader.AUTOSCALER,
        problem,
        consequence=f"is holding {current} replica{'' if current == 1 else 's'}",
        prometheus_url=config.prometheus.url,
        previous=previous_cond,
        now=when,
    )
    # A whole block: merge_patch sends the fields it no longer has (value, panicUntil) as null.
    write_status(
        body,
        patch,
        fields={"autoscaling": decision.status.to_wire()},
        conditions=[metrics_cond] if metrics_cond else [],
        declared=DECLARED,
        when=when,
    )
    if decision.status.last_decision_time is not None:
        _WRITTEN[uid] = decision.status.last_decision_time
    _announce(body, logger, svc, decision, current, previous)


def _withdraw_metrics_condition(
    body: Mapping[str, Any],
    patch: kopf.Patch,
    config: OperatorConfig,
    previous: dict[str, Any] | None,
) -> None:
    """Autoscaling turned off: the autoscaler no longer reads metrics, so its condition goes."""
    withdrawn = withdraw_metrics_condition(
        Reader.AUTOSCALER, prometheus_url=config.prometheus.url, previous=previous
    )
    if withdrawn is not None:
        write_status(body, patch, fields={}, conditions=[withdrawn], declared=DECLARED, when=now())


def _serving_scalable(recorded: Mapping[str, Any]) -> bool:
    """Whether there is a stable version whose replica count a decision may change now."""
    if not recorded.get("stable"):
        return False  # nothing serves yet
    serving = get_condition(recorded.get("conditions"), "ServingReady") or {}
    # KubeRay applies no replica count to the active cluster until its switch.
    return serving.get("reason") != InferenceServiceReason.RAY_CLUSTER_UPGRADE


def _read_load(
    config: OperatorConfig,
    svc: InferenceService,
    spec: AutoscalingSpec,
    stable: ServedVersion,
    current: int,
    previous: AutoscalingStatus | None,
    when: datetime,
) -> tuple[LoadSnapshot, MetricsProblem | None]:
    """The stable version's load from Prometheus, and the problem when there is none.

    The replicas Serve counts healthy only brake a scale-up while ordered ones still start.
    Unknown stays unknown (None): never a made-up count."""
    ns = svc.namespace or "default"
    engine = version_app(svc.name, version_id(stable.digest.partition("+")[0]))
    ready = ready_replicas(engine, read_healthy_replicas(config, ns, [engine], when))
    # Engine signals are the engine's: labelled with its base weights' id, shared by LoRA versions.
    engine_signal = spec.signal.value in ENGINE_SIGNALS
    digest = stable.digest.partition("+")[0] if engine_signal else stable.digest
    selector = Selector(svc.name, ns, version_id(digest))
    url, timeout = config.prometheus.url, config.prometheus.timeout_seconds
    promql = signal_query(spec.signal.value, selector, spec.window_seconds)
    failure: MetricsUnavailable | None = None
    try:
        total = query_one(url, promql, at=when, timeout=timeout)
        burst = query_one(
            url,
            signal_query(spec.signal.value, selector, spec.panic.window_seconds),
            at=when,
            timeout=timeout,
        )
    except MetricsUnavailable as exc:
        total, burst, failure = None, None, exc
    missing = f"{spec.signal.value} of version {selector.version} of {ns}/{svc.name}"
    problem = problem_of(failure, promql, missing) if total is None else None
    peak, attained, served = _slo_inputs(config, spec, selector, previous, when)
    if spec.slo is not None and attained is not None:
        record_slo(ns, svc.name, attained, spec.slo.attainment)
    snapshot = LoadSnapshot(
        signal=spec.signal,
        value=None if total is None or not ready else total / ready,
        current_replicas=current,
        ready_replicas=ready,
        sample_time=when,
        total=total,
        burst_total=burst,
        peak_total=peak,
        ttft_attainment=attained,
        ttft_requests=served,
    )
    return snapshot, problem


def _announce(
    body: Mapping[str, Any],
    logger: Any,
    svc: InferenceService,
    decision: ScaleDecision,
    current: int,
    previous: AutoscalingStatus | None,
) -> None:
    """An event for each change, and one warning when the load data goes missing."""
    if decision.desired_replicas != current:
        SCALE_EVENTS.labels(svc.namespace or "default", svc.name).inc()
        logger.info(decision.reason)  # it starts with "replicas a→b"
        emit(body, Event("Normal", decision.outcome.value, decision.reason), logger)
    elif decision.outcome is ScaleOutcome.METRICS_UNAVAILABLE and not (
        previous and previous.reason == decision.reason
    ):
        emit(body, Event("Warning", "MetricsUnavailable", decision.reason), logger)

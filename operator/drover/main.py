"""kopf wiring: decorators, settings and start-up; every handler body is one call.

`drover run` (and the chart's Deployment) lands in `run`, which validates the configuration first
so a bad ConfigMap is one clear message, not a crash loop of tracebacks.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import kopf
import kubernetes

from drover.builders.meta import MANAGED_BY
from drover.config import ConfigError, OperatorConfig
from drover.config_loader import load_config
from drover.handlers import (
    autoscaler,
    drift,
    finetunejob,
    foundationmodel,
    inferenceservice,
    vectorindex,
)
from drover.handlers.common import with_own_patch
from drover.handlers.kicks import Key, Kicks, QuietReactions, index_entry
from drover.k8s import children
from drover.k8s.cache import WATCHED
from drover.k8s.peering import watch_peering
from drover.observability import forget, observe, record_phase, start_metrics_server

GROUP, VERSION = "drover.dev", "v1alpha1"
FINALIZER = "drover.dev/finalizer"

# Filled in by `run` (or `startup` when kopf is started another way, e.g. KopfRunner in tests).
_config: OperatorConfig | None = None
# The peering check runs beside kopf; a reference keeps the task from being collected.
_background: set[asyncio.Task[None]] = set()


def _timing() -> tuple[float, float]:
    """Timer intervals, fixed when the decorators run: from the config, defaults if it is bad
    (`run` reports a bad config before kopf starts)."""
    try:
        timing = load_config(None, os.environ).reconcile
    except ConfigError:
        return 10.0, 15.0
    return timing.progress_poll_seconds, timing.autoscale_interval_seconds


# A timer that failed (an API error) runs again after its own interval: kopf's default, 60 s, left
# a resource a minute behind for every transient error of one of its polls.
POLL, AUTOSCALE = _timing()


def config() -> OperatorConfig:
    global _config
    if _config is None:
        _config = load_config(None, os.environ)
    return _config


# How long a replica's entry in the peering object counts as alive without a keep-alive. kopf's
# default, 60 s, left a standby waiting up to a minute after the active replica was killed
# (SIGKILL, OOM, node loss: no goodbye); 20 s bounds the handover by 20 s, at the cost of one
# keep-alive PATCH per replica every 10-15 s (kopf sends them 5-10 s before the lifetime ends).
PEERING_LIFETIME_SECONDS = 20
HANDLER_THREADS = 16
# After kopf starts stopping, the process is SIGKILLed by kopf after this long at most; under
# Kubernetes' default terminationGracePeriodSeconds (30 s).
EXIT_TIMEOUT_SECONDS = 20


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, logger: logging.Logger, **_: Any) -> None:
    cfg = config()
    configure(settings, cfg)
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()
    if os.environ.get("DROVER_METRICS", "1") != "0":
        start_metrics_server(cfg.operator.metrics_port)
    logger.info(
        f"drover operator up: {len(cfg.accelerator_classes)} accelerator classes, "
        f"prometheus {cfg.prometheus.url}"
    )


_QUIET = QuietReactions()


def configure(settings: kopf.OperatorSettings, cfg: OperatorConfig) -> None:
    """kopf's settings for Drover: where its state lives, peering, watching and retries."""
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.INFO
    settings.peering.priority = (
        cfg.operator.peering_priority
        if cfg.operator.peering_priority is not None
        else random.randint(1, 2**30)
    )
    settings.peering.lifetime = PEERING_LIFETIME_SECONDS
    settings.watching.server_timeout = 300
    settings.batching.error_delays = [1, 2, 5, 10, 30, 60]
    # Handlers are synchronous and mostly wait on the API server (a reconcile is several reads
    # and a write); kopf's default pool (Python's: cpu count + 4 threads) left a thousand
    # resources queued behind a handful of waiting threads (bench/reconcile.py).
    settings.execution.max_workers = HANDLER_THREADS
    logging.getLogger("kopf.objects").addFilter(_QUIET)
    # kopf stops when a root task fails (e.g. a 409 on the peering keep-alive PATCH) as on
    # SIGTERM, but its watchers and timers can outlive the stop: its wait for them has no
    # timeout, and its signal handler is gone by then, so `drover run` hung (still handling, no
    # longer peering) until kopf's own SIGKILL, 10 minutes later by default. Exit within this.
    settings.process.ultimate_exiting_timeout = EXIT_TIMEOUT_SECONDS


@kopf.on.startup()
async def peering_check(settings: kopf.OperatorSettings, logger: logging.Logger, **_: Any) -> None:
    """kopf waits silently for a missing peering CRD or object; say so at once, with the fix."""
    if settings.peering.standalone or not settings.peering.mandatory:
        return
    cfg = config()
    task = asyncio.create_task(
        watch_peering(
            settings.peering.name, settings.peering.clusterwide, cfg.watch_namespaces, logger
        )
    )
    _background.add(task)
    task.add_done_callback(_background.discard)


def _track(kind: str, body: kopf.Body) -> None:
    meta = body.get("metadata", {})
    record_phase(
        kind, meta.get("namespace", ""), meta.get("name", ""), body.get("status", {}).get("phase")
    )


_kicks = Kicks()


def _key(kind: str, body: Mapping[str, Any]) -> Key:
    meta = body.get("metadata", {})
    return kind, meta.get("namespace") or "default", str(meta.get("name"))


def _poll(kind: str, body: Mapping[str, Any], reconcile: Any) -> None:
    """A timer's extra work (autoscaling, drift) on an object, under the object's lock, writing
    its own status patch (handlers.common.with_own_patch)."""
    with _kicks.lock(_key(kind, body)):
        with_own_patch(kind, body, reconcile, retry=POLL)


# Each kind's reconcile, and the phases its poll (and a kick) still has work in.
_RECONCILERS: dict[str, tuple[Callable[..., None], Callable[[Mapping[str, Any]], bool]]] = {
    "FoundationModel": (
        foundationmodel.reconcile,
        lambda status: status.get("phase") in (None, "Pending", "Fetching"),
    ),
    "FineTuneJob": (
        finetunejob.reconcile,
        lambda status: status.get("phase") not in ("Succeeded", "Failed"),
    ),
    "VectorIndex": (vectorindex.reconcile, lambda status: True),
    "InferenceService": (inferenceservice.reconcile, lambda status: True),
}


def reconcile(kind: str, body: Mapping[str, Any], logger: Any, *, cause: str) -> None:
    """The object's reconcile for a `cause`: "change" (kopf's create/update/resume), "poll" (its
    timer) or "kick" (a dependency's status changed; `body` was read under the lock).

    One at a time per object, each writing its own status patch before the next starts: two at
    once would act on the same old status and write and announce the same step twice. A poll
    right after a change or a kick is skipped. Each reads the object under the lock rather than
    trusting kopf's body: under load kopf's watch lagged the API server by tens of seconds (and
    kopf retries a handler with the body it first had), and a reconcile of an old status repeated
    steps already done, writes and events."""
    run, busy = _RECONCILERS[kind]
    if cause != "change" and not busy(body.get("status") or {}):
        return
    key = _key(kind, body)
    with observe(kind), _kicks.lock(key):
        if cause == "poll" and _kicks.kicked_within(key, time.monotonic(), POLL):
            return
        if cause != "kick":  # a kick read it under this lock already
            fresh = children.get_object(kind, key[1], key[2])
            if fresh is None or (cause == "poll" and not busy(fresh.get("status") or {})):
                return
            body = fresh
        with_own_patch(kind, body, lambda p: run(body, p, logger, config()), retry=POLL)
        if cause != "poll":
            _kicks.kicked(key, time.monotonic())


def _changed(kind: str, body: kopf.Body, logger: Any) -> None:
    reconcile(kind, body, logger, cause="change")


def _polled(kind: str, body: kopf.Body, logger: Any) -> None:
    _track(kind, body)
    reconcile(kind, body, logger, cause="poll")


# --- FoundationModel ---------------------------------------------------------------------------


@kopf.on.resume(GROUP, VERSION, "foundationmodels")
@kopf.on.create(GROUP, VERSION, "foundationmodels")
@kopf.on.update(GROUP, VERSION, "foundationmodels", field="spec")
def foundationmodel_changed(body: kopf.Body, logger: Any, **_: Any) -> None:
    _changed("FoundationModel", body, logger)


@kopf.timer(GROUP, VERSION, "foundationmodels", interval=POLL, initial_delay=POLL / 2, backoff=POLL)
def foundationmodel_poll(body: kopf.Body, logger: Any, **_: Any) -> None:
    _polled("FoundationModel", body, logger)


@kopf.on.delete(GROUP, VERSION, "foundationmodels")
def foundationmodel_deleted(body: kopf.Body, patch: kopf.Patch, logger: Any, **_: Any) -> None:
    foundationmodel.on_delete(body, patch, logger, config())
    forget("FoundationModel", body["metadata"].get("namespace", ""), body["metadata"]["name"])


# --- FineTuneJob, VectorIndex ------------------------------------------------------------------


@kopf.on.resume(GROUP, VERSION, "finetunejobs")
@kopf.on.create(GROUP, VERSION, "finetunejobs")
@kopf.on.update(GROUP, VERSION, "finetunejobs", field="spec")
def finetunejob_changed(body: kopf.Body, logger: Any, **_: Any) -> None:
    _changed("FineTuneJob", body, logger)


@kopf.timer(GROUP, VERSION, "finetunejobs", interval=POLL, initial_delay=POLL / 2, backoff=POLL)
def finetunejob_poll(body: kopf.Body, logger: Any, **_: Any) -> None:
    _polled("FineTuneJob", body, logger)


@kopf.on.resume(GROUP, VERSION, "vectorindexes")
@kopf.on.create(GROUP, VERSION, "vectorindexes")
@kopf.on.update(GROUP, VERSION, "vectorindexes", field="spec")
def vectorindex_changed(body: kopf.Body, logger: Any, **_: Any) -> None:
    _changed("VectorIndex", body, logger)


@kopf.timer(GROUP, VERSION, "vectorindexes", interval=POLL, initial_delay=POLL / 2, backoff=POLL)
def vectorindex_poll(body: kopf.Body, logger: Any, **_: Any) -> None:
    _polled("VectorIndex", body, logger)


# --- InferenceService --------------------------------------------------------------------------


@kopf.on.resume(GROUP, VERSION, "inferenceservices")
@kopf.on.create(GROUP, VERSION, "inferenceservices")
@kopf.on.update(GROUP, VERSION, "inferenceservices", field="spec")
def inferenceservice_changed(body: kopf.Body, logger: Any, **_: Any) -> None:
    _changed("InferenceService", body, logger)


@kopf.timer(
    GROUP, VERSION, "inferenceservices", interval=POLL, initial_delay=POLL / 2, backoff=POLL
)
def inferenceservice_poll(body: kopf.Body, logger: Any, **_: Any) -> None:
    _polled("InferenceService", body, logger)


@kopf.timer(
    GROUP,
    VERSION,
    "inferenceservices",
    interval=AUTOSCALE,
    initial_delay=AUTOSCALE,
    backoff=AUTOSCALE,
)
def inferenceservice_autoscale(body: kopf.Body, logger: Any, **_: Any) -> None:
    with observe("Autoscaler"):
        _poll("InferenceService", body, lambda p: autoscaler.autoscale(body, p, logger, config()))


@kopf.timer(GROUP, VERSION, "inferenceservices", interval=POLL, initial_delay=POLL, backoff=POLL)
def inferenceservice_drift(body: kopf.Body, logger: Any, **_: Any) -> None:
    spec, drifted = body.get("spec") or {}, (body.get("status") or {}).get("drift")
    # `drift: {}` is the defaults, not off; status.drift left by a removed spec.drift goes.
    if spec.get("drift") is not None or spec.get("retraining") is not None or drifted:
        with observe("Drift"):
            _poll("InferenceService", body, lambda p: drift.check(body, p, logger, config()))


# --- kicks: a dependency's status changed, so reconcile what acts on it now --------------------


def _kick(targets: list[Key], logger: Any) -> None:
    """Reconcile each target as its poll would, from a fresh read. A failure is left to the
    target's poll (a warning, no traceback): a kick only makes a reaction sooner."""
    for kind, namespace, name in targets:
        try:
            with _kicks.lock((kind, namespace, name)):  # read after the last write, not before
                body = children.get_object(kind, namespace, name)
                if body is not None:
                    reconcile(kind, body, logger, cause="kick")
        except Exception as exc:
            logger.warning(
                f"reacting for {kind} {namespace}/{name} failed, left to its poll: {exc}"
            )


@kopf.on.event("ray.io", "v1", "rayjobs", labels={MANAGED_BY: "drover"})
def rayjob_event(body: kopf.Body, type: str | None, logger: Any, **_: Any) -> None:
    _kick(_kicks.seen("RayJob", body, type), logger)


@kopf.on.event("ray.io", "v1", "rayservices", labels={MANAGED_BY: "drover"})
def rayservice_event(body: kopf.Body, type: str | None, logger: Any, **_: Any) -> None:
    _kick(_kicks.seen("RayService", body, type), logger)


@kopf.index(GROUP, VERSION, "inferenceservices")
def service_refs(body: kopf.Body, **_: Any) -> dict[Key, Key]:
    return index_entry("InferenceService", body)


@kopf.index(GROUP, VERSION, "finetunejobs")
def finetune_refs(body: kopf.Body, **_: Any) -> dict[Key, Key]:
    return index_entry("FineTuneJob", body)


@kopf.index(GROUP, VERSION, "vectorindexes")
def index_refs(body: kopf.Body, **_: Any) -> dict[Key, Key]:
    return index_entry("VectorIndex", body)


def _drover_event(
    kind: str, body: kopf.Body, type_: str | None, logger: Any, **indexes: Any
) -> None:
    WATCHED.seen(kind, body, type_)  # first: the reconciles kicked below read it
    key = WATCHED.key(kind, body)
    dependents = [d for index in indexes.values() for d in index.get(key, [])]
    _kick(_kicks.seen(kind, body, type_, dependents), logger)


@kopf.on.event(GROUP, VERSION, "foundationmodels")
@kopf.on.event(GROUP, VERSION, "finetunejobs")
@kopf.on.event(GROUP, VERSION, "vectorindexes")
@kopf.on.event(GROUP, VERSION, "inferenceservices")
def drover_event(
    body: kopf.Body,
    type: str | None,
    logger: Any,
    service_refs: kopf.Index[Key, Key],
    finetune_refs: kopf.Index[Key, Key],
    index_refs: kopf.Index[Key, Key],
    **_: Any,
) -> None:
    _drover_event(
        str(body.get("kind")),
        body,
        type,
        logger,
        services=service_refs,
        finetunes=finetune_refs,
        indexes=index_refs,
    )


# --- command line ------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="operator config file (default: $DROVER_CONFIG)")
    parser.add_argument("--standalone", action="store_true", help="no peering (one replica)")


def run(args: argparse.Namespace) -> int:
    global _config
    try:
        _config = load_config(getattr(args, "config", None), os.environ)
    except ConfigError as exc:
        print(f"drover: {exc}", file=sys.stderr)
        return 2
    kopf.configure(log_format=kopf.LogFormat.FULL)
    standalone = bool(getattr(args, "standalone", False))
    # Peering (one active replica of several) needs the chart's KopfPeering object; a standalone
    # operator must not name one, or kopf waits for it.
    kopf.run(
        clusterwide=_config.clusterwide,
        namespaces=_config.watch_namespaces,
        standalone=standalone,
        peering_name=None if standalone else _config.operator.peering_name,
        liveness_endpoint=_config.operator.liveness_endpoint,
    )
    return 0

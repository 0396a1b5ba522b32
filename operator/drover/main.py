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
from drover.handlers.kicks import Key, Kicks, index_entry
from drover.k8s import children
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
HANDLER_THREADS = 32


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


class _QuietReactions(logging.Filter):
    """kopf logs "Handler '...' succeeded." for every watch event its event handlers see: with
    the kicks' handlers that is a line per status write of every child. They stay quiet unless
    they act (a kick logs what its reconcile does, as a poll would)."""

    QUIET = ("rayjob_event", "rayservice_event", "drover_event")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (
            message.endswith(" succeeded.") and any(f"'{h}'" in message for h in self.QUIET)
        )


_QUIET = _QuietReactions()


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


def _poll(kind: str, body: Mapping[str, Any], reconcile: Any) -> None:
    """Every reconcile (a change, a poll, a kick) writes its own status patch
    (handlers.common.with_own_patch) before the next one of the same object starts: two at once
    would both act on the same old status, and write and announce the same step twice."""
    with _kicks.lock(_key(kind, body)):
        with_own_patch(kind, body, reconcile, retry=POLL)


# --- FoundationModel ---------------------------------------------------------------------------


@kopf.on.resume(GROUP, VERSION, "foundationmodels")
@kopf.on.create(GROUP, VERSION, "foundationmodels")
@kopf.on.update(GROUP, VERSION, "foundationmodels", field="spec")
def foundationmodel_changed(body: kopf.Body, logger: Any, **_: Any) -> None:
    with observe("FoundationModel"):
        _poll(
            "FoundationModel", body, lambda p: foundationmodel.reconcile(body, p, logger, config())
        )


@kopf.timer(GROUP, VERSION, "foundationmodels", interval=POLL, initial_delay=POLL / 2, backoff=POLL)
def foundationmodel_poll(body: kopf.Body, logger: Any, **_: Any) -> None:
    _track("FoundationModel", body)
    if not _just_kicked("FoundationModel", body):
        _poll_foundationmodel(body, logger)


def _poll_foundationmodel(body: Mapping[str, Any], logger: Any) -> None:
    if body.get("status", {}).get("phase") in (None, "Pending", "Fetching"):
        with observe("FoundationModel"):
            _poll(
                "FoundationModel",
                body,
                lambda p: foundationmodel.reconcile(body, p, logger, config()),
            )


@kopf.on.delete(GROUP, VERSION, "foundationmodels")
def foundationmodel_deleted(body: kopf.Body, patch: kopf.Patch, logger: Any, **_: Any) -> None:
    foundationmodel.on_delete(body, patch, logger, config())
    forget("FoundationModel", body["metadata"].get("namespace", ""), body["metadata"]["name"])


# --- FineTuneJob -------------------------------------------------------------------------------


@kopf.on.resume(GROUP, VERSION, "finetunejobs")
@kopf.on.create(GROUP, VERSION, "finetunejobs")
@kopf.on.update(GROUP, VERSION, "finetunejobs", field="spec")
def finetunejob_changed(body: kopf.Body, logger: Any, **_: Any) -> None:
    with observe("FineTuneJob"):
        _poll("FineTuneJob", body, lambda p: finetunejob.reconcile(body, p, logger, config()))


@kopf.timer(GROUP, VERSION, "finetunejobs", interval=POLL, initial_delay=POLL / 2, backoff=POLL)
def finetunejob_poll(body: kopf.Body, logger: Any, **_: Any) -> None:
    _track("FineTuneJob", body)
    if not _just_kicked("FineTuneJob", body):
        _poll_finetunejob(body, logger)


def _poll_finetunejob(body: Mapping[str, Any], logger: Any) -> None:
    if body.get("status", {}).get("phase") not in ("Succeeded", "Failed"):
        with observe("FineTuneJob"):
            _poll("FineTuneJob", body, lambda p: finetunejob.reconcile(body, p, logger, config()))


# --- VectorIndex -------------------------------------------------------------------------------


@kopf.on.resume(GROUP, VERSION, "vectorindexes")
@kopf.on.create(GROUP, VERSION, "vectorindexes")
@kopf.on.update(GROUP, VERSION, "vectorindexes", field="spec")
def vectorindex_changed(body: kopf.Body, logger: Any, **_: Any) -> None:
    with observe("VectorIndex"):
        _poll("VectorIndex", body, lambda p: vectorindex.reconcile(body, p, logger, config()))


@kopf.timer(GROUP, VERSION, "vectorindexes", interval=POLL, initial_delay=POLL / 2, backoff=POLL)
def vectorindex_poll(body: kopf.Body, logger: Any, **_: Any) -> None:
    _track("VectorIndex", body)
    if not _just_kicked("VectorIndex", body):
        _poll_vectorindex(body, logger)


def _poll_vectorindex(body: Mapping[str, Any], logger: Any) -> None:
    with observe("VectorIndex"):
        _poll("VectorIndex", body, lambda p: vectorindex.reconcile(body, p, logger, config()))


# --- InferenceService --------------------------------------------------------------------------


@kopf.on.resume(GROUP, VERSION, "inferenceservices")
@kopf.on.create(GROUP, VERSION, "inferenceservices")
@kopf.on.update(GROUP, VERSION, "inferenceservices", field="spec")
def inferenceservice_changed(body: kopf.Body, logger: Any, **_: Any) -> None:
    with observe("InferenceService"):
        _poll(
            "InferenceService",
            body,
            lambda p: inferenceservice.reconcile(body, p, logger, config()),
        )


@kopf.timer(
    GROUP, VERSION, "inferenceservices", interval=POLL, initial_delay=POLL / 2, backoff=POLL
)
def inferenceservice_poll(body: kopf.Body, logger: Any, **_: Any) -> None:
    _track("InferenceService", body)
    if not _just_kicked("InferenceService", body):
        _poll_inferenceservice(body, logger)


def _poll_inferenceservice(body: Mapping[str, Any], logger: Any) -> None:
    with observe("InferenceService"):
        _poll(
            "InferenceService",
            body,
            lambda p: inferenceservice.reconcile(body, p, logger, config()),
        )


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

_kicks = Kicks()


def _pollers() -> dict[str, Callable[[Mapping[str, Any], Any], None]]:
    return {
        "FoundationModel": _poll_foundationmodel,
        "FineTuneJob": _poll_finetunejob,
        "VectorIndex": _poll_vectorindex,
        "InferenceService": _poll_inferenceservice,
    }


def _key(kind: str, body: Mapping[str, Any]) -> Key:
    meta = body.get("metadata", {})
    return kind, meta.get("namespace") or "default", str(meta.get("name"))


def _just_kicked(kind: str, body: Mapping[str, Any]) -> bool:
    return _kicks.kicked_within(_key(kind, body), time.monotonic(), POLL)


def _kick(targets: list[Key], logger: Any) -> None:
    """Reconcile each target as its poll would, from a fresh read. A failure is left to the
    target's poll (a warning, no traceback): a kick only makes a reaction sooner."""
    for kind, namespace, name in targets:
        try:
            with _kicks.lock((kind, namespace, name)):  # read after the last write, not before
                body = children.get_object(kind, namespace, name)
                if body is not None:
                    _pollers()[kind](body, logger)
                    _kicks.kicked((kind, namespace, name), time.monotonic())
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
    meta = body.get("metadata", {})
    key = (kind, meta.get("namespace") or "default", meta.get("name", ""))
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

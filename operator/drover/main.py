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
from typing import Any

import kopf
import kubernetes

from drover.config import ConfigError, OperatorConfig
from drover.config_loader import load_config
from drover.handlers import autoscaler, finetunejob, foundationmodel, inferenceservice, vectorindex
from drover.handlers.common import with_own_patch
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


def _poll(kind: str, body: kopf.Body, reconcile: Any) -> None:
    """Timers write their own status patch: see handlers.common.with_own_patch."""
    with_own_patch(kind, body, reconcile, retry=POLL)


# --- FoundationModel ---------------------------------------------------------------------------


@kopf.on.resume(GROUP, VERSION, "foundationmodels")
@kopf.on.create(GROUP, VERSION, "foundationmodels")
@kopf.on.update(GROUP, VERSION, "foundationmodels", field="spec")
def foundationmodel_changed(body: kopf.Body, patch: kopf.Patch, logger: Any, **_: Any) -> None:
    with observe("FoundationModel"):
        foundationmodel.reconcile(body, patch, logger, config())


@kopf.timer(GROUP, VERSION, "foundationmodels", interval=POLL, initial_delay=POLL / 2, backoff=POLL)
def foundationmodel_poll(body: kopf.Body, logger: Any, **_: Any) -> None:
    _track("FoundationModel", body)
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
def finetunejob_changed(body: kopf.Body, patch: kopf.Patch, logger: Any, **_: Any) -> None:
    with observe("FineTuneJob"):
        finetunejob.reconcile(body, patch, logger, config())


@kopf.timer(GROUP, VERSION, "finetunejobs", interval=POLL, initial_delay=POLL / 2, backoff=POLL)
def finetunejob_poll(body: kopf.Body, logger: Any, **_: Any) -> None:
    _track("FineTuneJob", body)
    if body.get("status", {}).get("phase") not in ("Succeeded", "Failed"):
        with observe("FineTuneJob"):
            _poll("FineTuneJob", body, lambda p: finetunejob.reconcile(body, p, logger, config()))


# --- VectorIndex -------------------------------------------------------------------------------


@kopf.on.resume(GROUP, VERSION, "vectorindexes")
@kopf.on.create(GROUP, VERSION, "vectorindexes")
@kopf.on.update(GROUP, VERSION, "vectorindexes", field="spec")
def vectorindex_changed(body: kopf.Body, patch: kopf.Patch, logger: Any, **_: Any) -> None:
    with observe("VectorIndex"):
        vectorindex.reconcile(body, patch, logger, config())


@kopf.timer(GROUP, VERSION, "vectorindexes", interval=POLL, initial_delay=POLL / 2, backoff=POLL)
def vectorindex_poll(body: kopf.Body, logger: Any, **_: Any) -> None:
    _track("VectorIndex", body)
    with observe("VectorIndex"):
        _poll("VectorIndex", body, lambda p: vectorindex.reconcile(body, p, logger, config()))


# --- InferenceService --------------------------------------------------------------------------


@kopf.on.resume(GROUP, VERSION, "inferenceservices")
@kopf.on.create(GROUP, VERSION, "inferenceservices")
@kopf.on.update(GROUP, VERSION, "inferenceservices", field="spec")
def inferenceservice_changed(body: kopf.Body, patch: kopf.Patch, logger: Any, **_: Any) -> None:
    with observe("InferenceService"):
        inferenceservice.reconcile(body, patch, logger, config())


@kopf.timer(
    GROUP, VERSION, "inferenceservices", interval=POLL, initial_delay=POLL / 2, backoff=POLL
)
def inferenceservice_poll(body: kopf.Body, logger: Any, **_: Any) -> None:
    _track("InferenceService", body)
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

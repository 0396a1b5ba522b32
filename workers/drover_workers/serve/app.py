"""Serve layer: the application builders KubeRay runs from a RayService's `serveConfigV2`.

An InferenceService is one router application and one application per live version, so that
adding or removing a version (a new application) never restarts another version's replicas:

- `drover_workers.serve.app:build_router` with `RouterArgs` builds the `router` ingress; its
  `user_config` (live versions and weights) changes in place.
- `drover_workers.serve.app:build_model` with `ModelArgs` builds one version's `model` deployment
  behind a small `ingress`; the application is named `<router application>-<version>` and is
  reached only by handles.
"""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle

from drover_workers.serve.config import (
    MODEL_DEPLOYMENT,
    ModelArgs,
    parse_model_args,
    parse_router_args,
)
from drover_workers.serve.model import ModelServer
from drover_workers.serve.replica_router import ROUTER_CLASS
from drover_workers.serve.router import Router

# How often Serve pulls each model replica's engine load for the replica router.
ROUTING_STATS_PERIOD_S = 1.0


def model_spec(cfg: ModelArgs) -> dict[str, Any]:
    """The constructor argument of a version's `model` deployment (no replica count: that is a
    config option, so scaling never restarts a replica)."""
    v = cfg.version
    return {
        "version": v.name,
        "task": cfg.task,
        "service": cfg.service.name,
        "namespace": cfg.service.namespace,
        "modelPath": v.model_path,
        "runtime": cfg.runtime.model_dump(by_alias=True, mode="json"),
        "faults": {"startupDelaySeconds": cfg.faults.startup_delay_seconds} if cfg.faults else {},
    }


def replica_routing(cfg: ModelArgs) -> dict[str, Any]:
    """The model deployment's default `request_router_config`: Drover's replica router
    (prefix-cache and session affinity within a load bound) for text generation, Serve's own
    (power of two choices) for embeddings. A deployment's `request_router_config` in the Serve
    config wins over it (the operator writes one)."""
    if cfg.task != "text-generation" or cfg.runtime.replica_routing != "prefix-aware":
        return {}
    labels = {"service": cfg.service.name, "namespace": cfg.service.namespace}
    return {
        "request_router_class": ROUTER_CLASS,
        "request_router_kwargs": {**labels, "version": cfg.version.name},
        "request_routing_stats_period_s": ROUTING_STATS_PERIOD_S,
    }


def build_model(args: dict[str, Any]) -> Application:
    """One version's application; raises ServeConfigError naming each bad field."""
    cfg = parse_model_args(args)
    fault_config = cfg.faults.model_dump(by_alias=True) if cfg.faults else {}
    routing = replica_routing(cfg)
    model = ModelServer.options(
        name=MODEL_DEPLOYMENT,
        max_ongoing_requests=max(16, 2 * cfg.runtime.max_num_seqs),
        max_surge_percent=cfg.runtime.max_surge_percent,
        user_config={"faults": fault_config},
        **({"request_router_config": routing} if routing else {}),
    ).bind(model_spec(cfg))
    return VersionIngress.bind(model)


VERSION_INGRESS = "ingress"


@serve.deployment(name=VERSION_INGRESS, num_replicas=1, ray_actor_options={"num_cpus": 0})
class VersionIngress:
    """A version application's ingress, so that its `model` deployment is not one.

    Ray Serve refuses a custom request router on an application's ingress deployment whenever
    HAProxy is on (ray/serve/_private/build_app.py `build_app`, and again after config overrides
    in application_state.py `override_deployment_info`), even for an application with no route
    prefix that only handles reach, as a version's is. Drover's router calls `model` through
    its own handle, so the replica router applies; this deployment takes no traffic (no CPU,
    one replica, placed anywhere, the head included).
    """

    def __init__(self, model: DeploymentHandle) -> None:
        self._model = model

    async def __call__(self) -> dict[str, str]:
        return {"detail": "a version application: Drover's router reaches its model by handle"}


def build_router(args: dict[str, Any]) -> Application:
    """The router application; raises ServeConfigError naming each bad field."""
    cfg = parse_router_args(args)
    router = Router.options(max_surge_percent=cfg.runtime.max_surge_percent)
    return router.bind(cfg.model_dump(by_alias=True, mode="json", exclude_none=True))

"""Serve layer: the application builder KubeRay runs from a RayService's `serveConfigV2`.

`import_path: drover_workers.serve.app:build_app` with `args` (see `config.ServeAppArgs`) builds
the `router` ingress deployment and one `model-<version>` deployment per live version.
"""

from __future__ import annotations

from typing import Any

from ray.serve import Application

from drover_workers.serve.config import ServeAppArgs, default_weights, parse_app_args
from drover_workers.serve.model import ModelServer
from drover_workers.serve.router import Router


def model_spec(cfg: ServeAppArgs, version: str) -> dict[str, Any]:
    """The constructor argument of `model-<version>` (no replica count: that is a config option)."""
    v = cfg.version(version)
    faults = cfg.faults.get(version)
    return {
        "version": v.name,
        "task": cfg.task,
        "service": cfg.service.name,
        "namespace": cfg.service.namespace,
        "modelPath": v.model_path,
        "adapterPath": v.adapter_path,
        "dtype": cfg.runtime.dtype,
        "maxBatchSize": cfg.runtime.max_batch_size,
        "batchWaitTimeoutSeconds": cfg.runtime.batch_wait_timeout_seconds,
        "faults": {"startupDelaySeconds": faults.startup_delay_seconds} if faults else {},
    }


def router_spec(cfg: ServeAppArgs) -> dict[str, Any]:
    """The router's constructor argument: the args without replica counts, so that scaling a
    version never restarts the router."""
    spec = cfg.model_dump(by_alias=True, mode="json", exclude_none=True)
    for version in spec["versions"]:
        version.pop("replicas", None)
    return spec


def build_app(args: dict[str, Any]) -> Application:
    """Ray Serve application builder; raises ServeConfigError naming each bad field."""
    cfg = parse_app_args(args)
    models = {}
    for v in cfg.versions:
        faults = cfg.faults.get(v.name)
        fault_config = faults.model_dump(by_alias=True) if faults else {}
        models[v.name] = ModelServer.options(
            name=f"model-{v.name}",
            num_replicas=v.replicas,
            max_ongoing_requests=max(16, 2 * cfg.runtime.max_batch_size),
            max_surge_percent=cfg.runtime.max_surge_percent,
            user_config={"faults": fault_config},
        ).bind(model_spec(cfg, v.name))
    weights = default_weights([v.name for v in cfg.versions])
    router = Router.options(
        user_config={"weights": weights}, max_surge_percent=cfg.runtime.max_surge_percent
    )
    return router.bind(router_spec(cfg), models)

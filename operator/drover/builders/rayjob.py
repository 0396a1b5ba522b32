"""Builders layer: a KubeRay RayJob that runs one Drover worker entrypoint.

The worker's configuration travels as JSON in `DROVER_WORKER_CONFIG` through the job's runtime
environment, so the worker needs no Kubernetes API access. KubeRay deletes the job's Ray cluster
`CLUSTER_TTL_SECONDS` after the job ends (`shutdownAfterJobFinishes`), releasing its GPUs and
claims; the RayJob itself stays, with its status, until its owner goes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

from drover.builders.meta import Manifest
from drover.builders.raycluster import POD_LABELS, ContainerImage
from drover.builders.security import container_security_context, pod_security_context

RAYJOB_API_VERSION = "ray.io/v1"
WORKER_CONFIG_ENV = "DROVER_WORKER_CONFIG"
# How long KubeRay keeps a finished job's cluster (rayjob_controller.go,
# handleShutdownAfterJobFinishes: the RayCluster is deleted at status.endTime + this). Long
# enough for the operator's poll (progress_poll_seconds, 10 s by default) to read the worker's
# result from the job log several times over; short, because the cluster holds GPUs and claims.
CLUSTER_TTL_SECONDS = 60


def build_runtime_env(worker_config: Mapping[str, Any], env: Mapping[str, str] = {}) -> str:
    env_vars = {WORKER_CONFIG_ENV: json.dumps(dict(worker_config), sort_keys=True)}
    env_vars.update(env)
    return yaml.safe_dump({"env_vars": env_vars}, sort_keys=True)


def build_rayjob(
    *,
    name: str,
    module: str,
    worker_config: Mapping[str, Any],
    cluster_spec: Mapping[str, Any],
    env: Mapping[str, str] = {},
    active_deadline_seconds: int | None = None,
    backoff_limit: int = 0,
    entrypoint_num_cpus: float,
    entrypoint_num_gpus: int = 0,
) -> Manifest:
    """A RayJob running `python -m <module>` with `worker_config` (unstamped: see meta.stamp).

    The entrypoint resources decide where the driver runs. KubeRay's submitter runs
    `ray job submit` with them (common/job.go, BuildJobSubmitCommand, v1.7.0); without any, the
    driver runs on the head, whose `num-cpus: 0` and missing GPUs make it the wrong place for
    work. A positive `entrypoint_num_cpus` alone already keeps the driver off the head."""
    if entrypoint_num_cpus <= 0:
        raise ValueError("entrypoint_num_cpus must be positive: the driver belongs on a worker")
    spec: dict[str, Any] = {
        "entrypoint": f"python -m {module}",
        "runtimeEnvYAML": build_runtime_env(worker_config, env),
        "shutdownAfterJobFinishes": True,
        "ttlSecondsAfterFinished": CLUSTER_TTL_SECONDS,
        "backoffLimit": backoff_limit,
        "submissionMode": "K8sJobMode",
        "rayClusterSpec": dict(cluster_spec),
    }
    if active_deadline_seconds:
        spec["activeDeadlineSeconds"] = active_deadline_seconds
    spec["entrypointNumCpus"] = entrypoint_num_cpus
    # KubeRay's own submitter pod (K8sJobMode) runs with no securityContext; this one is its
    # default template made "restricted", on the head's image.
    head = cluster_spec["headGroupSpec"]["template"]["spec"]["containers"][0]
    spec["submitterPodTemplate"] = restricted_submitter_template(
        ContainerImage(str(head["image"]), str(head.get("imagePullPolicy", "IfNotPresent")))
    )
    if entrypoint_num_gpus:
        spec["entrypointNumGpus"] = entrypoint_num_gpus
    return {
        "apiVersion": RAYJOB_API_VERSION,
        "kind": "RayJob",
        "metadata": {"name": name},
        "spec": spec,
    }


def worker_config_of(rayjob: Mapping[str, Any]) -> dict[str, Any]:
    """The worker configuration a RayJob carries (the inverse of `build_runtime_env`)."""
    runtime_env = yaml.safe_load(rayjob.get("spec", {}).get("runtimeEnvYAML") or "{}") or {}
    raw = runtime_env.get("env_vars", {}).get(WORKER_CONFIG_ENV, "{}")
    value = json.loads(raw)
    return value if isinstance(value, dict) else {}


def restricted_submitter_template(image: ContainerImage | str) -> dict[str, Any]:
    """A RayJob `submitterPodTemplate`: KubeRay's default submitter, made "restricted".

    KubeRay's default (common/job.go GetDefaultSubmitterTemplate, v1.7.0) is one container
    `ray-job-submitter` on the head's image, 500m/200Mi requested, 1 CPU/1Gi limit, restart
    policy Never, and no securityContext. With a template given, KubeRay takes its first
    container as the submitter and fills in the `ray job submit` command when it has none, so
    no command is set here. It carries Drover's pod label, so the chart's NetworkPolicy lets it
    reach the head's dashboard as the other Ray pods do.
    """
    image = ContainerImage.of(image)
    return {
        "metadata": {"labels": dict(POD_LABELS)},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": pod_security_context(),
            "containers": [
                {
                    "name": "ray-job-submitter",
                    "image": image.reference,
                    "imagePullPolicy": image.pull_policy,
                    "resources": {
                        "requests": {"cpu": "500m", "memory": "200Mi"},
                        "limits": {"cpu": "1", "memory": "1Gi"},
                    },
                    "securityContext": container_security_context(),
                }
            ],
        },
    }

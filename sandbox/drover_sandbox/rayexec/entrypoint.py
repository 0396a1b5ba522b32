"""Local stack, Ray executor: where a RayJob's driver would run in its own Ray cluster.

KubeRay gives every RayJob its own RayCluster and submits the driver with the RayJob's
entrypoint resources (KubeRay v1.7.0 common/job.go, BuildJobSubmitCommand: --entrypoint-num-cpus,
--entrypoint-num-gpus, --entrypoint-resources). Ray places the job's supervisor actor, and with
it the driver, on a node offering them; without any, on the head. Each Ray node advertises what
its container gets (common/pod.go, generateRayStartCommand and addWellKnownAcceleratorResources:
`num-cpus` from rayStartParams or the CPU limit, `num-gpus` from a `*gpu` limit).

The local executor runs every RayJob on one shared Ray, so it cannot reserve each job's driver
resources there (jobs of different RayJobs would contend, which on KubeRay they never do).
Instead it checks them against the RayJob's own cluster spec, and fails a job no node of that
cluster can place the way Ray does once its start timeout passes (ray/dashboard/modules/job/
job_manager.py, JobManager._monitor_job_internal, Ray 2.60), without the 15-minute wait.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def _cpu(quantity: Any) -> float:
    text = str(quantity).strip()
    if not text:
        return 0.0
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def node_resources(group: Mapping[str, Any]) -> dict[str, float]:
    """CPU and GPU a Ray node of this group advertises (what `ray start` gets from KubeRay)."""
    params = group.get("rayStartParams") or {}
    containers = ((group.get("template") or {}).get("spec") or {}).get("containers") or [{}]
    resources = containers[0].get("resources") or {}
    limits = {**(resources.get("requests") or {}), **(resources.get("limits") or {})}
    cpu = params.get("num-cpus")
    cpus = _cpu(cpu) if cpu is not None else math.floor(_cpu(limits.get("cpu", 0)))
    gpu = params.get("num-gpus")
    gpus = float(gpu) if gpu is not None else 0.0
    if gpu is None:
        gpus = sum(float(v) for k, v in limits.items() if k.endswith("gpu"))
    return {"CPU": float(cpus), "GPU": gpus}


def unplaceable_entrypoint(spec: Mapping[str, Any]) -> str | None:
    """Ray's failure message when no node of the RayJob's cluster can hold its driver, else None."""
    cpus = float(spec.get("entrypointNumCpus") or 0)
    gpus = float(spec.get("entrypointNumGpus") or 0)
    if not cpus and not gpus:
        return None  # the driver runs on the head, which always exists
    cluster = spec.get("rayClusterSpec") or {}
    groups = [cluster.get("headGroupSpec") or {}]
    groups += [
        g
        for g in cluster.get("workerGroupSpecs") or []
        if int(g.get("maxReplicas", g.get("replicas", 0)) or 0) > 0 and not g.get("suspend")
    ]
    for group in groups:
        node = node_resources(group)
        if node["CPU"] >= cpus and node["GPU"] >= gpus:
            return None
    return (
        "Job supervisor actor failed to start within 900.0 seconds. This timeout can be "
        "configured by setting the environment variable RAY_JOB_START_TIMEOUT_SECONDS. This may "
        "be because the job entrypoint's specified resources (entrypoint_num_cpus, "
        "entrypoint_num_gpus, entrypoint_resources, entrypoint_memory)aren't available on the "
        "cluster. Try checking the cluster's available resources with `ray status` and "
        "specifying fewer resources for the job entrypoint."
        f" [local executor: entrypointNumCpus={cpus:g}, entrypointNumGpus={gpus:g}; no node of "
        "the RayJob's rayClusterSpec offers them]"
    )

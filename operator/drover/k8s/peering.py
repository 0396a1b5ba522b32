"""I/O layer: say, at once and then periodically, why a peered operator is not acting.

With peering on, kopf pauses every watch-stream until its peering CRD and the named peering object
exist, and resumes by itself when they appear (it watches CRDs and the peering resource); it only
logs that at debug level. `watch_peering` (started by `drover.main` at start-up) checks the same
two things and logs a warning with the fix until they are there, so the wait is never silent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from kubernetes import client
from kubernetes.client.exceptions import ApiException

PEERING_GROUP, PEERING_VERSION = "kopf.dev", "v1"
CHART_CRDS = "charts/drover/crds/kopf.dev_kopfpeerings.yaml"
# How often the warning is repeated while the operator waits (kopf keeps waiting, so do we).
REPEAT_SECONDS = 60.0


def peering_problem(name: str, clusterwide: bool, namespaces: Sequence[str]) -> str | None:
    """What stops kopf's peering from starting (a sentence with the fix), or None when nothing.

    Cluster-wide operators use ClusterKopfPeering; namespaced ones a KopfPeering per namespace.
    """
    plural, kind = (
        ("clusterkopfpeerings", "ClusterKopfPeering")
        if clusterwide
        else ("kopfpeerings", "KopfPeering")
    )
    stop = "the operator handles nothing until then"
    try:
        listed = client.CustomObjectsApi().get_api_resources(PEERING_GROUP, PEERING_VERSION)
        served = {r.name for r in listed.resources or []}
    except ApiException as exc:
        if exc.status != 404:
            return None  # the API server misbehaves; kopf reports that itself
        served = set()
    if plural not in served:
        return (
            f"peering is on (peering name {name!r}) but the API server has no {kind} resource "
            f"({plural}.{PEERING_GROUP}); {stop}. Install the chart's CRDs "
            f"(kubectl apply -f {CHART_CRDS}) or run one replica with --standalone"
        )
    api = client.CustomObjectsApi()
    missing: list[str] = []
    for namespace in [""] if clusterwide else namespaces:
        try:
            if clusterwide:
                api.get_cluster_custom_object(PEERING_GROUP, PEERING_VERSION, plural, name)
            else:
                api.get_namespaced_custom_object(
                    PEERING_GROUP, PEERING_VERSION, namespace, plural, name
                )
        except ApiException as exc:
            if exc.status == 404:
                missing.append(f"{namespace}/{name}" if namespace else name)
    if missing:
        return (
            f"peering is on but the {kind} object {', '.join(missing)} does not exist; {stop}. "
            "Create it (the chart does with peering.create=true) or run one replica with "
            "--standalone"
        )
    return None


async def watch_peering(
    name: str,
    clusterwide: bool,
    namespaces: Sequence[str],
    logger: logging.Logger,
    repeat_seconds: float = REPEAT_SECONDS,
) -> None:
    """Warn at once and every `repeat_seconds` while peering cannot start; return once it can."""
    warned = False
    while True:
        problem = await asyncio.to_thread(peering_problem, name, clusterwide, namespaces)
        if problem is None:
            if warned:
                logger.info(f"peering {name!r} is in place: the operator starts handling")
            return
        logger.warning(problem)
        warned = True
        await asyncio.sleep(repeat_seconds)

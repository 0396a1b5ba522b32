"""Which InferenceService changes make KubeRay build a new Ray cluster, and which do not.

A new RayCluster means a second set of GPUs for the length of the switch and a pause in applying
Serve config (KubeRay v1.7.0 rayservice_controller.go, `shouldPrepareNewCluster`). What Drover
does every few seconds (canary weights, replica counts, a rollout between versions on one cache
claim) must never cause one. The hash is KubeRay's own rule, as the local executor implements it
(utils/util.go, `GenerateHashWithoutReplicasAndWorkersToDelete`).
"""

from __future__ import annotations

import copy

from tests.unit.builders.test_builders import INDEX, _plans

from drover.builders.placement import resolve_placement
from drover.builders.serving import VersionPlan, build_rayservice
from drover.local.rayexec.upgrade import ClusterChange, cluster_change, cluster_hash


def _cluster(service, config, plans, index=INDEX, **svc_changes):
    svc = service.model_copy(deep=True)
    for key, value in svc_changes.items():
        setattr(svc.spec.replicas, key, value)
    placement = resolve_placement(None, config.accelerator_classes, field="f")
    return build_rayservice(svc, plans, index, placement=placement, image="x")["spec"][
        "rayClusterConfig"
    ]


def test_kuberays_hash_ignores_replica_counts_and_nothing_else() -> None:
    spec = {
        "headGroupSpec": {"rayStartParams": {}},
        "workerGroupSpecs": [{"groupName": "g", "replicas": 1, "minReplicas": 0, "maxReplicas": 2}],
    }
    scaled = copy.deepcopy(spec)
    scaled["workerGroupSpecs"][0].update(
        replicas=5, maxReplicas=9, scaleStrategy={"workersToDelete": ["pod-a"]}
    )
    assert cluster_hash(scaled) == cluster_hash(spec)
    renamed = copy.deepcopy(spec)
    renamed["workerGroupSpecs"][0]["groupName"] = "h"
    assert cluster_change(spec, renamed) is ClusterChange.NEW_CLUSTER
    grown = copy.deepcopy(spec)
    grown["workerGroupSpecs"].append({"groupName": "extra", "replicas": 1})
    assert cluster_change(spec, grown) is ClusterChange.UPDATE


def test_a_canary_its_promotion_and_scaling_keep_the_cluster(service, config) -> None:
    stable, canary = _plans()  # a fine-tune of the base: its output shares the base's claim
    alone = _cluster(service, config, [VersionPlan(**{**stable.__dict__, "weight": 100})])
    during = _cluster(service, config, [stable, canary])
    promoted = _cluster(service, config, [VersionPlan(**{**canary.__dict__, "weight": 100})])
    scaled = _cluster(service, config, [stable, canary], min=3, max=12)
    for after in (during, promoted, scaled):
        assert cluster_change(alone, after) is ClusterChange.NONE


def test_a_version_on_another_claim_rebuilds_the_cluster(service, config) -> None:
    # Known and documented (README, "How Drover uses KubeRay"): Serve replicas read weights from
    # the claims mounted on the Ray pods, and a pod's volumes are fixed, so a model cached on a
    # claim of its own makes KubeRay build a new cluster when it arrives. The operator then holds
    # the rollout until the switch (UpgradeInProgress); keeping models one rolls between on one
    # claim (spec.cache.existingClaim) avoids it.
    stable, _ = _plans()
    other = VersionPlan(
        model="other-model", digest="sha256:" + "12" * 32, claim="other-cache", path="o/1"
    )
    before = _cluster(service, config, [stable])
    after = _cluster(service, config, [stable, other])
    assert cluster_change(before, after) is ClusterChange.NEW_CLUSTER

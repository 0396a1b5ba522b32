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
from drover.builders.serving import (
    VersionPlan,
    build_rayservice,
    mounted_claims,
    needed_claims,
    serving_claims,
)
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


def _rollout_to_another_claim(service, config, sticky: bool) -> list[dict]:
    """The rayClusterConfig through a rollout from a model on one claim to one on another:
    stable alone, stable + canary, canary promoted alone (the old version drained)."""
    stable, _ = _plans()
    other = VersionPlan(
        model="other-model", digest="sha256:" + "12" * 32, claim="other-cache", path="o/1"
    )
    promoted = VersionPlan(**{**other.__dict__, "weight": 100})
    placement = resolve_placement(None, config.accelerator_classes, field="f")
    clusters: list[dict] = []
    for plans in ([stable], [stable, other], [promoted]):
        claims = None
        if sticky:
            mounted = mounted_claims(
                {"spec": {"rayClusterConfig": clusters[-1]}} if clusters else None
            )
            needed = needed_claims(plans, INDEX)
            claims = serving_claims(needed, mounted, needed | set(mounted))
        rs = build_rayservice(service, plans, INDEX, placement=placement, image="x", claims=claims)
        clusters.append(rs["spec"]["rayClusterConfig"])
    return clusters


def test_a_rollout_to_a_model_on_another_claim_rebuilds_once_not_twice(service, config) -> None:
    # Known and documented (README, "How Drover uses KubeRay"): Serve replicas read weights from
    # the claims mounted on the Ray pods, and a pod's volumes are fixed, so a model cached on a
    # claim of its own makes KubeRay build a new cluster when it arrives. The operator holds the
    # rollout until the switch (UpgradeInProgress). The drained version's claim stays mounted
    # until a later rebuild prunes it, so its departure costs no second cluster.
    alone, both, promoted = _rollout_to_another_claim(service, config, sticky=True)
    assert cluster_change(alone, both) is ClusterChange.NEW_CLUSTER
    assert cluster_change(both, promoted) is ClusterChange.NONE
    exact = _rollout_to_another_claim(service, config, sticky=False)
    assert cluster_change(exact[1], exact[2]) is ClusterChange.NEW_CLUSTER  # what it was


def test_serving_claims_keep_what_is_mounted_while_it_covers_the_need() -> None:
    assert serving_claims({"a"}, ["a", "b"], {"a", "b"}) == ["a", "b"]  # b drained: kept
    assert serving_claims({"b", "c"}, ["a", "b"], {"a", "b", "c"}) == ["b", "c"]  # rebuild prunes
    assert serving_claims({"a"}, ["a", "b"], {"a"}) == ["a"]  # b deleted: a new pod could not start
    assert serving_claims({"a"}, [], {"a"}) == ["a"]

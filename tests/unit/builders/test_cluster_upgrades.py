"""Which InferenceService changes make KubeRay build a new Ray cluster, and which do not.

A new RayCluster means a second set of GPUs for the length of the switch and a pause in applying
Serve config (KubeRay v1.7.0 rayservice_controller.go, `shouldPrepareNewCluster`). What Drover
does every few seconds (canary weights, replica counts, a rollout between versions on one cache
claim) must never cause one. The hash is KubeRay's own rule, as the local executor implements it
(utils/util.go, `GenerateHashWithoutReplicasAndWorkersToDelete`).
"""

from __future__ import annotations

import copy

from tests.unit.builders.test_serving_builders import INDEX, _plans

from drover.builders.placement import resolve_placement
from drover.builders.serving import build_rayservice, existing_worker_groups, plan_worker_groups
from drover.builders.serving_plans import VersionPlan, needed_claims
from drover_sandbox.rayexec.upgrade import ClusterChange, cluster_change, cluster_hash


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


def _rollout_to_another_claim(service, config, planned: bool) -> list[dict]:
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
        groups = None
        if planned:
            previous = {"spec": {"rayClusterConfig": clusters[-1]}} if clusters else None
            existing = existing_worker_groups(previous)
            needed = needed_claims(plans, INDEX)
            present = needed | {c for g in existing for c in g.claims}
            groups = plan_worker_groups(placement.class_name, existing, needed, present)
        rs = build_rayservice(service, plans, INDEX, placement=placement, image="x", groups=groups)
        clusters.append(rs["spec"]["rayClusterConfig"])
    return clusters


def test_a_rollout_to_a_model_on_another_claim_never_rebuilds_the_cluster(service, config) -> None:
    # KubeRay v1.7.0 rayservice_controller.go shouldPrepareNewCluster / isClusterSpecHashEqual
    # (partial): worker groups appended at the end update the running cluster in place. The new
    # version's group mounts every claim needed; the drained version's group stays, scaled to 0.
    alone, both, promoted = _rollout_to_another_claim(service, config, planned=True)
    assert cluster_change(alone, both) is ClusterChange.UPDATE
    assert cluster_change(both, promoted) is ClusterChange.NONE
    assert [g["groupName"] for g in promoted["workerGroupSpecs"]] == ["cpu", "cpu-1"]
    exact = _rollout_to_another_claim(service, config, planned=False)  # one group, as it was
    assert cluster_change(exact[0], exact[1]) is ClusterChange.NEW_CLUSTER
    assert cluster_change(exact[1], exact[2]) is ClusterChange.NEW_CLUSTER


def test_each_replica_asks_for_the_claims_it_reads_and_each_group_offers_what_it_mounts(
    service, config
) -> None:
    from drover.builders.raycluster import claim_resource

    _, both, _ = _rollout_to_another_claim(service, config, planned=True)
    offered = {g["groupName"]: set(g["resources"]) for g in both["workerGroupSpecs"]}
    assert offered["cpu"] == {
        claim_resource(c) for c in ("tiny-llama-cache", INDEX.claim, INDEX.embedder_claim)
    }
    assert claim_resource("other-cache") in offered["cpu-1"]
    for g in both["workerGroupSpecs"]:  # a group mounts exactly the claims it offers
        volumes = g["template"]["spec"]["volumes"]
        mounted = {
            v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v
        }
        assert {claim_resource(c) for c in mounted} == offered[g["groupName"]]


def test_worker_groups_are_kept_appended_or_started_afresh() -> None:
    from drover.builders.raycluster import WorkerGroup

    g0 = WorkerGroup("cpu", ("a", "idx"))
    assert plan_worker_groups("cpu", [g0], {"a", "idx"}, {"a", "idx"}) == [g0]
    grown = plan_worker_groups("cpu", [g0], {"a", "b", "idx"}, {"a", "b", "idx"})
    assert grown == [g0, WorkerGroup("cpu-1", ("a", "b", "idx"))]
    assert plan_worker_groups("cpu", grown, {"b", "idx"}, {"a", "b", "idx"}) == grown
    # a kept claim was deleted, or another class: a rebuild anyway, so start afresh
    assert plan_worker_groups("cpu", grown, {"b", "idx"}, {"b", "idx"}) == [
        WorkerGroup("cpu", ("b", "idx"))
    ]
    assert plan_worker_groups("l4", grown, {"b"}, {"b"}) == [WorkerGroup("l4", ("b",))]

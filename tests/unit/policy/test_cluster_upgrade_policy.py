"""KubeRay's cluster replacement as the operator reads it from a RayService's status."""

from __future__ import annotations

from drover.policy.upgrade import cluster_upgrade


def _rs(**status):
    return {"metadata": {"name": "bot-rs"}, "status": status}


def test_no_upgrade_when_only_an_active_cluster_exists() -> None:
    assert cluster_upgrade(None) is None
    assert cluster_upgrade(_rs()) is None
    quiet = _rs(
        activeServiceStatus={"rayClusterName": "bot-rs-abcde", "applicationStatuses": {}},
        conditions=[{"type": "UpgradeInProgress", "status": "False"}],
    )
    assert cluster_upgrade(quiet) is None


def test_an_upgrade_is_read_from_the_condition_or_a_pending_cluster() -> None:
    # KubeRay v1.7.0 rayservice_controller.go calculateConditions: UpgradeInProgress True with
    # BothActivePendingClustersExist whenever both cluster names are set.
    both = _rs(
        activeServiceStatus={"rayClusterName": "bot-rs-old12"},
        pendingServiceStatus={"rayClusterName": "bot-rs-new34"},
    )
    message = cluster_upgrade(both) or ""
    assert "bot-rs-new34" in message and "bot-rs-old12" in message
    assert "rollout steps and autoscaling wait" in message
    by_condition = _rs(conditions=[{"type": "UpgradeInProgress", "status": "True"}])
    assert cluster_upgrade(by_condition)


def test_the_new_clusters_progress_is_read_from_the_pending_status() -> None:
    upgrading = _rs(
        activeServiceStatus={"rayClusterName": "bot-rs-old12"},
        pendingServiceStatus={
            "rayClusterName": "bot-rs-new34",
            "applicationStatuses": {
                "bot": {"status": "RUNNING"},
                "bot-v1": {"status": "DEPLOYING"},
                "bot-v2": {"status": "DEPLOY_FAILED"},
            },
        },
    )
    message = cluster_upgrade(upgrading) or ""
    assert "(1/3 Serve applications running; failing: bot-v2)" in message

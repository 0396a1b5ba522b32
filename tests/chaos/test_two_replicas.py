"""Two operator replicas with kopf peering (the chart's KopfPeering CRD, as `replicaCount: 2`
runs them): over 200 resources exactly one replica acts, and when it is SIGKILLed (no goodbye in
the peering object) the other takes over within 30 s, the bound issue #16 sets: it finds the
killed replica's entry expired, removes it and resumes, then catches up with every resource.

"Acts" is read from the API server's request counts (`/_drover/requests`, what kube's audit log
would show): one successful create per child; and from the replicas' logs: the standby ran no
handler at all (kopf logs every handler it runs). Creates answered 409 are not counted against a
replica: one replica's create handler and poll timer may race for the same child, and the loser's
409 is expected (k8s.children.ensure_child reads the existing child then).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.chaos.harness import KubeRay, control_plane, expected_names, served_models, settle

pytestmark = pytest.mark.chaos

PAIRS = 100  # 100 FoundationModels + 100 InferenceServices
DEADLINE = 420  # for 200 resources to settle on 2 cores; generous
HANDOVER = 30.0  # seconds, issue #16


def test_of_two_peered_replicas_one_acts_and_the_other_takes_over_when_it_dies(
    tmp_path: Path, dashboard
) -> None:
    docs = served_models(PAIRS)
    with control_plane(tmp_path / "cp") as cp, KubeRay(cp, dashboard):
        cp.custom.create_namespaced_custom_object(
            "kopf.dev",
            "v1",
            cp.namespace,
            "kopfpeerings",
            {
                "apiVersion": "kopf.dev/v1",
                "kind": "KopfPeering",
                "metadata": {"name": f"peering-{cp.namespace}", "namespace": cp.namespace},
            },
        )
        active = cp.start_operator(tmp_path / "active.log", standalone=False, priority=200)
        standby = cp.start_operator(tmp_path / "standby.log", standalone=False, priority=100)
        try:
            _wait_for_peers(cp, 2)
            for doc in docs:
                cp.create(doc)
            state = settle(cp, expected_names(docs), DEADLINE)
            creates = cp.creates()
            assert state.counts["rayjobs"] == state.counts["rayservices"] == PAIRS, state.counts
            assert all(len(kids) == 2 for k, kids in state.children.items() if "model-" in k)
            assert state.orphans == []
            assert creates["rayjobs.ray.io"] == PAIRS
            assert creates["rayservices.ray.io"] == PAIRS
            assert creates["persistentvolumeclaims"] == PAIRS
            assert "Handler 'foundationmodel_changed' succeeded" in active.log()
            assert "Handler '" not in standby.log()  # paused: it handled nothing

            active.kill()
            killed = time.monotonic()
            late = served_models(1)[0]
            late["metadata"]["name"] = "after-handover"
            cp.create(late)
            # The standby takes over when it finds the active replica's entry expired: it removes
            # the entry from the peering object (kopf's autoclean), then resumes handling.
            _wait_for_peers(cp, 1, timeout=HANDOVER + 30)  # watch a little past the bound
            handover = time.monotonic() - killed
            # Then it re-checks every resource (kopf's resume handlers) and handles the new one;
            # a generous deadline, not a timing claim.
            settle(cp, expected_names([*docs, late]), DEADLINE)
            after = cp.creates()
        finally:
            active.stop()
            standby.stop()
    assert handover <= HANDOVER, f"the standby replica took over after {handover:.0f} s"
    assert "Handler 'foundationmodel_changed' succeeded" in standby.log()
    # Taking over created the new model's children and nothing again.
    assert after["rayjobs.ray.io"] == PAIRS + 1
    assert after["persistentvolumeclaims"] == PAIRS + 1
    assert after["rayservices.ray.io"] == PAIRS


def _wait_for_peers(cp, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        peering = cp.custom.get_namespaced_custom_object(
            "kopf.dev", "v1", cp.namespace, "kopfpeerings", f"peering-{cp.namespace}"
        )
        if len(peering.get("status") or {}) == count:
            return
        time.sleep(0.5)
    raise AssertionError(f"the peering object never held {count} replica(s) within {timeout} s")

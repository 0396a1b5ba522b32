"""The operator against a misbehaving API server: 5% 500s, 429s with Retry-After, 409s, 2 s of
latency on some requests, watch streams cut after a few events and re-watches answered 410 Gone
("too old resource version", as kube-apiserver's watch cache answers a version it has evicted:
watchCache.getAllEventsSinceLocked in
staging/src/k8s.io/apiserver/pkg/storage/cacher/watch_cache.go). The resources still reach the
undisturbed run's end state: no status update lost, no duplicate child, no orphan.

The faults are drawn from a seeded generator; which request draws which fault still depends on
the order the operator sends them in, so two runs see the same rates, not the same requests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.chaos.conftest import resources
from tests.chaos.harness import KubeRay, control_plane, differences, expected_names, settle

pytestmark = pytest.mark.chaos

FAULTS = {
    # codes are drawn uniformly: 5% 500s, 2.5% 429s (Retry-After: 1), 2.5% 409s
    "error_rate": 0.10,
    "codes": [500, 500, 429, 409],
    "retry_after_s": 1,
    "latency_ms": 2000,
    "latency_rate": 0.03,
    "watch_cut_after": 4,
    "rewatch_gone_rate": 0.3,
    "seed": 16,
}
# A deadline, not a timing claim: an undisturbed run settles in 30-40 s on 2 cores, each
# injected fault costs kopf a retry (1-60 s backoff) or a re-list.
DEADLINE = 420


def test_the_chain_converges_through_api_faults_to_the_undisturbed_end_state(
    tmp_path: Path, dashboard, undisturbed
) -> None:
    docs = resources()
    with control_plane(tmp_path / "cp") as cp, KubeRay(cp, dashboard):
        cp.admin("/_drover/faults", FAULTS)
        op = cp.start_operator(tmp_path / "operator.log")
        try:
            for doc in docs:
                cp.create(doc)
            state = settle(cp, expected_names(docs), DEADLINE)
            injected = cp.admin("/_drover/faults")["injected"]
            cp.admin("/_drover/faults", {"error_rate": 0, "latency_ms": 0})
            creates = cp.creates()
            alive = op.proc.poll() is None
        finally:
            op.stop()
    # Every kind of fault really reached the operator.
    for kind in ("500", "429", "409", "latency", "410-rewatch"):
        assert injected.get(kind, 0) >= 1, (kind, injected)
    assert alive, "the operator died under API faults"
    assert state.orphans == []
    lost = differences(state.children, undisturbed.children)
    assert not lost, "\n".join(lost)  # no duplicate, none missing
    lost = differences(state.statuses, undisturbed.statuses)
    assert not lost, "\n".join(lost)  # no status update lost
    # The API server created each child exactly once (an extra create would be a 201 more).
    assert creates["rayjobs.ray.io"] == state.counts["rayjobs"]
    assert creates["rayservices.ray.io"] == state.counts["rayservices"]
    assert creates["persistentvolumeclaims"] == state.counts["persistentvolumeclaims"]

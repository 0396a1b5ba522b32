"""The chart's operator pod passes the Pod Security Standard "restricted" in every configuration
(tests/fixtures/pod_security.py implements Kubernetes' pod-security-admission checks)."""

from __future__ import annotations

import pytest
from chart_support import ALL_ON, NAMESPACED, by_kind
from tests.fixtures.pod_security import check_restricted

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod")


def _pod_specs(docs):
    for kind in WORKLOADS:
        for doc in by_kind(docs, kind):
            spec = doc["spec"]
            if kind == "CronJob":
                spec = spec["jobTemplate"]["spec"]
            yield (
                f"{kind}/{doc['metadata']['name']}",
                spec if kind == "Pod" else spec["template"]["spec"],
            )


@pytest.mark.parametrize(
    "values", [None, ALL_ON, NAMESPACED], ids=["defaults", "all-features", "namespaced"]
)
def test_every_pod_the_chart_renders_is_restricted(render, values) -> None:
    pods = dict(_pod_specs(render(values)))
    assert pods, "the chart renders no pod"
    assert {name: check_restricted(pod) for name, pod in pods.items()} == {
        name: [] for name in pods
    }


def test_a_relaxed_operator_pod_would_be_caught(render) -> None:
    (_, pod), *_ = _pod_specs(render(None))
    pod["containers"][0]["securityContext"].pop("allowPrivilegeEscalation")
    assert [p.split(" (")[0] for p in check_restricted(pod)] == [
        "allowPrivilegeEscalation != false"
    ]

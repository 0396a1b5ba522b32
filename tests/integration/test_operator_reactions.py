"""The operator acts on a dependency's status as soon as it changes, not on its next poll
(handlers/kicks.py): a fetch RayJob's completion makes its model Ready, a Ready model makes the
service waiting for it create its RayService, and the RayService's Running status makes the
service Ready.

The polls are set to their longest (30 s), so a resource's first poll runs 15 s after the
operator first sees it (kopf's `initial_delay`, POLL / 2). The whole chain must be done before
that moment, measured from before the resources were created: only the reactions can do it.
"""

from __future__ import annotations

import time

import yaml
from tests.integration.conftest import wait_for
from tests.integration.support import (
    create,
    finish_fetch,
    get,
    manifest,
    rayjobs,
    service_without_retrieval,
    serving_status,
    status_of,
)

POLL = 30.0
# Before the first poll of anything created at t0 (t0 + POLL / 2), with a margin.
WINDOW = POLL / 2 - 1.0


def test_status_changes_are_acted_on_before_any_poll(
    k8s_api, namespace, start_operator, dashboard
) -> None:
    op = start_operator(
        env={"DROVER_PROGRESS_POLL_SECONDS": str(POLL), "DROVER_AUTOSCALE_INTERVAL_SECONDS": "600"}
    )
    # The operator is up and watching once a first model has a status.
    create(
        k8s_api,
        manifest("00-base-model.yaml", namespace)
        | {"metadata": {"name": "warm-up", "namespace": namespace}},
    )
    wait_for(
        "the operator up", lambda: status_of(k8s_api, "foundationmodels", namespace, "warm-up"), 60
    )
    t0 = time.monotonic()

    def left() -> float:
        remaining = t0 + WINDOW - time.monotonic()
        assert remaining > 0, "the chain was not done before the first poll: no reaction ran"
        return remaining

    create(k8s_api, manifest("00-base-model.yaml", namespace))
    create(k8s_api, service_without_retrieval(namespace))
    job = wait_for(
        "the fetch RayJob",
        lambda: next(
            (
                j
                for j in rayjobs(k8s_api, namespace)
                if j["metadata"]["labels"].get("drover.dev/foundationmodel") == "tiny-llama"
            ),
            None,
        ),
        left(),
        interval=0.1,
    )
    wait_for(
        "WaitingForModel",
        lambda: (
            status_of(k8s_api, "inferenceservices", namespace, "support-bot").get("phase")
            == "WaitingForModel"
        ),
        left(),
        interval=0.1,
    )
    finish_fetch(k8s_api, namespace, job, dashboard)
    wait_for(
        "the model Ready (the RayJob's Complete status acted on)",
        lambda: (
            status_of(k8s_api, "foundationmodels", namespace, "tiny-llama").get("phase") == "Ready"
        ),
        left(),
        interval=0.1,
    )
    rs = wait_for(
        "the RayService (the model's Ready status acted on)",
        lambda: get(k8s_api, "rayservices", namespace, "support-bot", "ray.io", "v1"),
        left(),
        interval=0.1,
    )
    _router, *versions = yaml.safe_load(rs["spec"]["serveConfigV2"])["applications"]
    serving_status(
        k8s_api,
        namespace,
        "support-bot",
        [a["name"].removeprefix("support-bot-") for a in versions],
    )
    wait_for(
        "the service Ready (the RayService's Running status acted on)",
        lambda: (
            status_of(k8s_api, "inferenceservices", namespace, "support-bot").get("phase")
            == "Ready"
        ),
        left(),
        interval=0.1,
    )
    assert "Traceback" not in op.log()

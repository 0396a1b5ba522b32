"""Ready replica counts from Serve's own gauge in Prometheus, and a scale-up that is not an outage.

Ray Serve's controller exports `serve_deployment_replica_healthy` (ray/serve/_private/
deployment_state.py, Ray 2.60; Ray prefixes `ray_`), 1 per healthy replica. During a
`num_replicas` change Serve reports the deployment UPSCALING and the application DEPLOYING, and
KubeRay copies both verbatim (rayservice_controller.go `getAndCheckServeStatus`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
from kubernetes import client
from tests.fixtures import prometheus as prometheus_fixtures
from tests.integration.conftest import wait_for
from tests.integration.promseries import Series
from tests.integration.serving_support import DIGEST_A, create_service, ready_model, serve_config
from tests.integration.support import kuberay_status, status_of

from drover.api.versions import version_app, version_id
from drover.k8s import metrics
from drover_sandbox.apiserver.launcher import free_port
from drover_sandbox.components import SERVE_APP_RELABEL

prometheus = prometheus_fixtures.prometheus  # the session's block-fed Prometheus
SVC = "chat"


def test_the_local_relabel_gives_serve_series_the_cluster_shape(tmp_path: Path) -> None:
    registry = prometheus_client.CollectorRegistry()
    gauge = prometheus_client.Gauge(
        metrics.REPLICA_HEALTHY.removeprefix("ray_"),
        "healthy replicas",
        ["application", "deployment", "replica"],
        namespace="ray",
        registry=registry,
    )
    local_app = "team-a--chat--chat-0123456789ab"  # how the Ray executor deploys it
    gauge.labels(local_app, "model", "r1").set(1)
    gauge.labels(local_app, "model", "r2").set(1)
    gauge.labels(local_app, "model", "r3").set(0)  # stopped
    gauge.labels(local_app, "router", "r4").set(1)
    if prometheus_fixtures.PROMETHEUS is None:
        pytest.skip(prometheus_fixtures.MISSING)
    port = free_port()
    server, thread = prometheus_client.start_http_server(port, "127.0.0.1", registry=registry)
    own = prometheus_fixtures.Prometheus(tmp_path / "prometheus", scrape=[f"127.0.0.1:{port}"])
    config = json.loads(own.config.read_text())
    config["scrape_configs"][0]["metric_relabel_configs"] = SERVE_APP_RELABEL
    own.config.write_text(json.dumps(config))
    try:
        own.start()
        query = metrics.healthy_replicas_query("team-a", ["chat-0123456789ab"], "model")
        counted = wait_for(
            "the scraped gauge",
            lambda: metrics.query_by(own.url, query, "application") or None,
        )
        assert counted == {"chat-0123456789ab": 2.0}
    finally:
        own.stop()
        server.shutdown()
        thread.join(5)


def upscaling_status(name: str, version: str) -> dict[str, Any]:
    """KubeRay's RayService status while Serve adds replicas to the version's deployment."""
    apps = {
        name: ("RUNNING", "router", "HEALTHY"),
        f"{name}-{version}": ("DEPLOYING", "model", "UPSCALING"),
    }
    return kuberay_status(name, apps)


def test_an_upscaling_service_stays_ready_and_counts_the_healthy_replicas(
    k8s_api, namespace, start_operator, dashboard, prometheus
) -> None:
    vid = version_id(DIGEST_A)
    app = version_app(SVC, vid)
    series = Series()
    for replica, value in (("r1", 1), ("r2", 1), ("r3", 0)):
        labels = {"namespace": namespace, "application": app, "deployment": "model"}
        series._write(  # a controller gauge, not a router series
            metrics.REPLICA_HEALTHY,
            {**labels, "replica": replica},
            [value] * len(series.offsets),
        )
    prometheus.load(series.text())
    start_operator(prometheus_url=prometheus.url)
    ready_model(k8s_api, namespace, "tiny-llama", dashboard, DIGEST_A)
    create_service(k8s_api, namespace, SVC, replicas={"min": 3, "max": 3})
    wait_for("the RayService", lambda: serve_config(k8s_api, namespace, SVC))
    client.CustomObjectsApi(k8s_api).patch_namespaced_custom_object_status(
        "ray.io", "v1", namespace, "rayservices", SVC, upscaling_status(SVC, vid)
    )

    def counted() -> dict[str, Any] | None:
        status = status_of(k8s_api, "inferenceservices", namespace, SVC)
        ready = (status.get("replicas") or {}).get("ready") == 2
        return status if ready and status.get("phase") == "Ready" else None

    status = wait_for("phase Ready with replicas.ready from Prometheus", counted)
    assert status["replicas"] == {"desired": 3, "current": 3, "ready": 2}
    assert status["stable"]["ready"] is True and status["stable"]["readyReplicas"] == 2
    serving = next(c for c in status["conditions"] if c["type"] == "ServingReady")
    assert serving["status"] == "True" and "UPSCALING" in serving["message"]

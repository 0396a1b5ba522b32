"""Test support for the Prometheus-driven serving tests: models made ready with a chosen digest,
an InferenceService's RayService reported healthy the way KubeRay writes it, and its Serve config.
"""

from __future__ import annotations

from typing import Any

import yaml
from kubernetes import client
from tests.integration.conftest import wait_for
from tests.integration.support import (
    G,
    V,
    create,
    finish_fetch,
    get,
    manifest,
    rayjobs,
    serving_status,
    status_of,
)

from drover.api.versions import version_app, version_id

DIGEST_A = "sha256:" + "a1" * 32
DIGEST_B = "sha256:" + "b2" * 32


def ready_model(api: client.ApiClient, ns: str, name: str, dashboard: Any, digest: str) -> None:
    """Create the FoundationModel `name` (the example's tiny-llama spec) and drive it to Ready
    with `digest` through its fetch RayJob."""
    doc = manifest("00-base-model.yaml", ns)
    doc["metadata"]["name"] = name
    create(api, doc)
    job = wait_for(
        f"the fetch RayJob of {name}",
        lambda: next(
            (
                j
                for j in rayjobs(api, ns)
                if j["metadata"]["labels"].get("drover.dev/foundationmodel") == name
            ),
            None,
        ),
    )
    finish_fetch(api, ns, job, dashboard, digest=digest)
    phase = lambda: status_of(api, "foundationmodels", ns, name).get("phase")  # noqa: E731
    wait_for(f"{name} Ready", lambda: phase() == "Ready")


def create_service(api: client.ApiClient, ns: str, name: str, **spec: Any) -> None:
    """An InferenceService of model tiny-llama without retrieval; `spec` replaces fields."""
    doc = manifest("04-service.yaml", ns)
    doc["metadata"]["name"] = name
    for key in ("retrieval", "autoscaling", "rollout"):
        doc["spec"].pop(key, None)
    doc["spec"].update(spec)
    create(api, doc)


def serve_config(api: client.ApiClient, ns: str, name: str) -> dict[str, Any]:
    """The Serve config of the service's RayService: its router application first, then one
    application per version."""
    rs = get(api, "rayservices", ns, name, "ray.io", "v1")
    return dict(yaml.safe_load(rs["spec"]["serveConfigV2"]))


def deployment(config: dict[str, Any], digest: str) -> dict[str, Any] | None:
    """The `model` deployment of `digest`'s version application, if the config has one."""
    service = config["applications"][0]["name"]
    app = next(
        (
            a
            for a in config["applications"]
            if a["name"] == version_app(service, version_id(digest))
        ),
        None,
    )
    return next((d for d in app["deployments"] if d["name"] == "model"), None) if app else None


def router_weights(config: dict[str, Any]) -> dict[str, int]:
    router = next(d for d in config["applications"][0]["deployments"] if d["name"] == "router")
    return dict(router["user_config"]["weights"])


def report_healthy(api: client.ApiClient, ns: str, name: str, digests: list[str]) -> None:
    """Write the RayService status as KubeRay does when the versions' applications are HEALTHY."""
    serving_status(api, ns, name, [version_id(d) for d in digests])


def serve_ready(api: client.ApiClient, ns: str, name: str, digest: str) -> dict[str, Any]:
    """Wait for the RayService to run `digest`, report it healthy, wait for phase Ready."""
    wait_for(
        "the RayService with the model's application",
        lambda: deployment(serve_config(api, ns, name), digest),
    )
    report_healthy(api, ns, name, [digest])
    return dict(
        wait_for(
            f"{name} Ready",
            lambda: (
                (s := status_of(api, "inferenceservices", ns, name)).get("phase") == "Ready" and s
            ),
        )
    )


def patch_spec(api: client.ApiClient, ns: str, name: str, spec: dict[str, Any]) -> None:
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        G, V, ns, "inferenceservices", name, {"spec": spec}
    )

"""How a version's Serve application is put together, checked through Ray Serve's own builder."""

from __future__ import annotations

import pytest

MODEL_ARGS = {
    "service": {"name": "bot", "namespace": "ml"},
    "version": {"name": "v2", "model": "m2", "modelPath": "/m/2"},
    "runtime": {"maxNumSeqs": 4},
}


def test_a_version_application_builds_with_its_replica_router_under_haproxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ray Serve refuses a custom request router on an application's ingress when HAProxy is on
    (ray/serve/_private/build_app.py, build_app); a version's `model` deployment carries
    Drover's replica router, so it sits behind the version's own `ingress`."""
    from ray.serve._private import build_app as ray_build
    from ray.serve.exceptions import RayServeException

    from drover_workers.serve.app import build_model

    monkeypatch.setattr(ray_build, "RAY_SERVE_ENABLE_HA_PROXY", True)
    app = build_model(MODEL_ARGS)
    built = ray_build.build_app(app, name="bot-v2")
    assert built.ingress_deployment_name == "ingress"
    model = next(d for d in built.deployments if d.name == "model")
    assert model._deployment_config.request_router_config.request_router_class.endswith(
        "PrefixAffinityRouter"
    )
    # What the ingress check refuses: the model deployment as the application's ingress.
    with pytest.raises(RayServeException, match="not supported on the ingress deployment"):
        ray_build.build_app(app._bound_deployment.init_args[0], name="bot-v2")

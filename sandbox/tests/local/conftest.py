"""Fixtures of the local-stack tests: KubeRay's CRDs in the local control plane, a local Ray head
(its own, so the executor's Serve deploys never replace another suite's applications) and one
`python -m drover_sandbox.rayexec` process for the session.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox.tests.local.helpers import KUBERAY, ROOT, RayExec, kuberay_crds
from tests.fixtures.ray_cluster import RayHead


@pytest.fixture(scope="session")
def kuberay_installed(k8s_api) -> None:
    from kubernetes import client

    if not KUBERAY.is_dir():
        pytest.skip(f"KubeRay CRDs not found at {KUBERAY} (../shared/vendor-schemas/)")
    ext = client.ApiextensionsV1Api(k8s_api)
    for crd in kuberay_crds():
        try:
            ext.create_custom_resource_definition(crd)
        except client.ApiException as exc:
            if exc.status != 409:
                raise
    deadline = time.monotonic() + 30
    custom = client.CustomObjectsApi(k8s_api)
    while True:
        try:
            custom.list_cluster_custom_object("ray.io", "v1", "rayservices")
            return
        except client.ApiException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="session")
def custom(k8s_api, kuberay_installed):
    from kubernetes import client

    return client.CustomObjectsApi(k8s_api)


@pytest.fixture(scope="module")  # stops before other suites use the session's Serve
def rayexec(
    kubeconfig: Path,
    kuberay_installed: None,
    ray_cluster: RayHead,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RayExec]:
    data_dir = tmp_path_factory.mktemp("rayexec")
    log = data_dir / "rayexec.log"
    path = os.pathsep.join([str(ROOT / "operator"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, **ray_cluster.env, "PYTHONPATH": path}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "drover_sandbox.rayexec",
                "--kubeconfig",
                str(kubeconfig),
                "--ray-address",
                ray_cluster.gcs_address,
                "--dashboard-url",
                ray_cluster.dashboard_url,
                "--data-dir",
                str(data_dir),
                "--serve-port",
                str(ray_cluster.serve_port),
                "--hub-url",
                "http://127.0.0.1:9",
                "--poll-seconds",
                "1",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    handle = RayExec(data_dir, ray_cluster.serve_port, log, proc)
    try:
        yield handle
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

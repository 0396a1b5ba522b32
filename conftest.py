"""Shared fixtures of both test trees (tests/ and sandbox/tests/): one local control plane per test
session, a kubeconfig, a client, a namespace; one Ray and one MLflow server when a test asks.

`DROVER_CONFORMANCE_KUBECONFIG=/path` makes every fixture use that cluster instead of starting
`drover local apiserver`. kubectl runs with `--kubeconfig` and a fresh KUBECACHEDIR per test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.fixtures.mlflow_server import mlflow_server  # noqa: F401 - one MLflow per session
from tests.fixtures.ray_cluster import RayHead, ray_cluster  # noqa: F401 - one Ray per session

from drover_sandbox.apiserver import launcher


@dataclass
class ApiServer:
    """What the `apiserver` fixture yields."""

    url: str  # http://127.0.0.1:PORT ("" when an external cluster is used)
    kubeconfig: Path
    data_dir: Path | None
    local: bool  # False when DROVER_CONFORMANCE_KUBECONFIG points at a real cluster

    def admin(self, path: str, body: dict | None = None) -> dict:
        """GET (or POST `body` to) a `/_drover/...` admin endpoint of the local server."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method="POST" if data else "GET",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    external = os.environ.get("DROVER_CONFORMANCE_KUBECONFIG")
    if external:
        yield ApiServer("", Path(external), None, local=False)
        return
    data_dir = tmp_path_factory.mktemp("apiserver")
    proc, url = launcher.start(data_dir)
    try:
        yield ApiServer(url, data_dir / "kubeconfig", data_dir, local=True)
    finally:
        launcher.stop(proc)


@pytest.fixture(scope="session")
def kubeconfig(apiserver: ApiServer) -> Path:
    return apiserver.kubeconfig


@pytest.fixture(scope="session")
def k8s_api(kubeconfig: Path):  # -> kubernetes.client.ApiClient
    from kubernetes import config

    api = config.new_client_from_config(config_file=str(kubeconfig))
    yield api
    api.close()


@pytest.fixture
def namespace(k8s_api) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (not waited for)."""
    from kubernetes import client

    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(k8s_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    try:
        core.delete_namespace(name)
    except client.ApiException as exc:
        if exc.status != 404:
            raise


@pytest.fixture
def kubectl(kubeconfig: Path, tmp_path: Path):
    """`kubectl(*args, check=True, timeout=60, input=None)` -> CompletedProcess (text).

    Each test gets a fresh KUBECACHEDIR, so CRDs created by earlier tests are discovered.
    """
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.skip("kubectl is not on the PATH")
    cache = tmp_path / "kubecache"

    def run(
        *args: str, check: bool = True, timeout: float = 60, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECACHEDIR": str(cache)}
        proc = subprocess.run(
            [binary, "--kubeconfig", str(kubeconfig), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n"
                f"{proc.stdout}\n{proc.stderr}"
            )
        return proc

    return run

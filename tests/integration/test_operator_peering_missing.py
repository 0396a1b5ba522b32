"""A peered operator (`drover run` without --standalone) on a cluster without the chart's peering
CRD: kopf waits, and Drover says so at once with the fix; once the CRD and the peering object are
applied the operator starts handling on its own, with no restart.

Its own control plane: the session's has the peering CRD installed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.conftest import KUBERAY, ROOT, Operator, kubectl, wait_for

from drover_sandbox.apiserver import launcher

NAMESPACE = "peer"
PEERING_CRD = ROOT / "charts/drover/crds/kopf.dev_kopfpeerings.yaml"


@pytest.fixture
def bare_cluster(tmp_path: Path) -> Iterator[Path]:
    """A control plane with Drover's CRDs (crds/) and KubeRay's RayJob, not the chart's peering
    CRD: what a user who applied crds/ without the chart has."""
    if not KUBERAY.exists():
        pytest.skip(f"KubeRay CRDs not found at {KUBERAY}: the shared vendor schemas are absent")
    proc, _ = launcher.start(tmp_path / "api")
    kubeconfig = tmp_path / "api" / "kubeconfig"
    try:
        kubectl(kubeconfig, "apply", "-f", str(ROOT / "crds"))
        kubectl(kubeconfig, "apply", "--server-side", "-f", str(KUBERAY / "ray.io_rayjobs.yaml"))
        kubectl(kubeconfig, "create", "namespace", NAMESPACE)
        yield kubeconfig
    finally:
        launcher.stop(proc)


def _model_status(kubeconfig: Path) -> dict:
    out = kubectl(kubeconfig, "get", "fmodel", "m", "-n", NAMESPACE, "-o", "json", check=False)
    return json.loads(out.stdout).get("status") or {} if out.returncode == 0 else {}


def test_missing_peering_crd_is_logged_at_once_with_the_fix(
    bare_cluster: Path, tmp_path: Path
) -> None:
    operator = Operator(bare_cluster, NAMESPACE, tmp_path / "operator.log", standalone=False)
    try:
        log = wait_for(
            "the missing peering CRD in the operator log",
            lambda: "no KopfPeering resource" in operator.log() and operator.log(),
            timeout=20,
        )
        assert str(PEERING_CRD.relative_to(ROOT)) in log
        assert "--standalone" in log
        assert "Traceback" not in log

        model = (
            "apiVersion: drover.dev/v1alpha1\nkind: FoundationModel\n"
            f"metadata: {{name: m, namespace: {NAMESPACE}}}\n"
            "spec: {source: {uri: 'pvc://weights/tiny'}}\n"
        )
        (tmp_path / "m.yaml").write_text(model)
        kubectl(bare_cluster, "apply", "-f", str(tmp_path / "m.yaml"))
        kubectl(bare_cluster, "apply", "-f", str(PEERING_CRD))
        peering = (
            "apiVersion: kopf.dev/v1\nkind: KopfPeering\n"
            f"metadata: {{name: peering-{NAMESPACE}, namespace: {NAMESPACE}}}\n"
        )
        (tmp_path / "peering.yaml").write_text(peering)
        kubectl(bare_cluster, "apply", "-f", str(tmp_path / "peering.yaml"))
        # kopf resumes by itself; the model gets its status from the now active operator.
        wait_for("the model's conditions", lambda: _model_status(bare_cluster).get("conditions"))
    finally:
        operator.stop()

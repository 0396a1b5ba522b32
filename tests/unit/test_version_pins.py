"""One pin for KubeRay and Ray (drover/compat.py); everything else must agree with it."""

from __future__ import annotations

from pathlib import Path

import yaml

from drover.compat import KUBERAY_SCHEMAS_DIR, KUBERAY_VERSION, RAY_VERSION
from drover.config import ImagesConfig
from drover.local import components

ROOT = Path(__file__).resolve().parents[2]


def test_constraints_pin_the_ray_drover_is_tested_against() -> None:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    assert f"ray=={RAY_VERSION}" in [line.split("#")[0].strip() for line in lines]


def test_the_chart_and_the_config_default_run_that_ray() -> None:
    values = yaml.safe_load((ROOT / "charts" / "drover" / "values.yaml").read_text())
    assert f"ray:{RAY_VERSION}" in values["config"]["images"]["ray"]
    assert f"ray:{RAY_VERSION}" in ImagesConfig().ray


def test_the_local_stack_and_the_tests_read_that_kuberays_crds() -> None:
    assert components.DEFAULT_KUBERAY_CRDS.name == KUBERAY_SCHEMAS_DIR
    readme = (ROOT / "README.md").read_text()
    assert f"KubeRay v{KUBERAY_VERSION}" in readme and f"Ray {RAY_VERSION}" in readme

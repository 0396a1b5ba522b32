"""One pin for KubeRay and Ray (drover/compat.py); everything else must agree with it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

from drover import __version__
from drover.compat import KUBERAY_SCHEMAS_DIR, KUBERAY_VERSION, RAY_VERSION
from drover.images import ImagesConfig
from drover_sandbox import components

ROOT = Path(__file__).resolve().parents[2]


def test_constraints_pin_the_ray_drover_is_tested_against() -> None:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    assert f"ray=={RAY_VERSION}" in [line.split("#")[0].strip() for line in lines]


def test_the_workers_images_are_built_on_that_ray() -> None:
    dockerfile = (ROOT / "images" / "workers" / "Dockerfile").read_text()
    assert f"ARG RAY_VERSION={RAY_VERSION}\n" in dockerfile


def test_one_release_version_for_the_package_the_chart_and_the_image_tags() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    chart = yaml.safe_load((ROOT / "charts" / "drover" / "Chart.yaml").read_text())
    assert pyproject["project"]["version"] == __version__ == chart["appVersion"]
    images = ImagesConfig()
    assert images.workers.tag == __version__ and images.workers_cpu.tag == f"{__version__}-cpu"


def test_the_local_stack_and_the_tests_read_that_kuberays_crds() -> None:
    assert components.DEFAULT_KUBERAY_CRDS.name == KUBERAY_SCHEMAS_DIR
    readme = (ROOT / "README.md").read_text()
    assert f"KubeRay v{KUBERAY_VERSION}" in readme and f"Ray {RAY_VERSION}" in readme

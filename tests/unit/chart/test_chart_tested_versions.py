"""The chart records the KubeRay and Ray versions Drover is tested against (Chart.yaml
annotations), equal to the one pin in drover.compat, and tells the installer which KubeRay to
install and what to do next."""

from __future__ import annotations

import helm_python as helm
from chart_support import NAMESPACE, RELEASE

from drover.compat import KUBERAY_VERSION, RAY_VERSION

KUBERAY_ANNOTATION = "drover.dev/tested-kuberay-version"
RAY_ANNOTATION = "drover.dev/tested-ray-version"


def _notes(chart: helm.Chart, values: dict | None = None) -> str:
    rendered = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE)
    return next(text for path, text in rendered.items() if path.endswith("NOTES.txt"))


def test_chart_annotations_name_the_pinned_kuberay_and_ray(chart: helm.Chart) -> None:
    annotations = chart.metadata["annotations"]
    assert annotations[KUBERAY_ANNOTATION] == KUBERAY_VERSION
    assert annotations[RAY_ANNOTATION] == RAY_VERSION


def test_notes_install_the_tested_kuberay_and_lead_to_a_chat(chart: helm.Chart) -> None:
    notes = _notes(chart)
    assert f"KubeRay {KUBERAY_VERSION} and Ray {RAY_VERSION}" in notes
    assert "kubectl get crd rayjobs.ray.io rayservices.ray.io" in notes
    assert f"kuberay/kuberay-operator --version {KUBERAY_VERSION}" in notes
    assert "kubectl apply -f examples/cluster/" in notes
    # The names README.md and tests/unit/builders/test_cluster_example.py check against the
    # builders: the RayService of examples/cluster/04-service.yaml and its model name.
    assert "svc/qwen-chat-serve-svc 8000:8000" in notes
    assert '"model": "qwen-chat"' in notes


def test_notes_say_when_the_examples_namespace_is_not_watched(chart: helm.Chart) -> None:
    assert "does not watch" not in _notes(chart)
    assert "does not watch" in _notes(chart, {"watchNamespaces": ["team-a"]})
    assert "this release watches" in _notes(chart, {"watchNamespaces": ["default"]})

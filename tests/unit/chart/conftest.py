"""Fixtures of the chart tests: the chart loaded once through Helm's Go SDK, and a renderer."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import helm_python as helm
import pytest
import yaml
from chart_support import CHART_DIR, NAMESPACE, RELEASE


@pytest.fixture(scope="session")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded


Render = Callable[[dict[str, Any] | None], list[dict[str, Any]]]


@pytest.fixture(scope="session")
def render(chart: helm.Chart) -> Render:
    """Render with `values`; return every manifest document (NOTES.txt left out)."""

    def _render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        rendered = chart.render(copy.deepcopy(values) or {}, name=RELEASE, namespace=NAMESPACE)
        docs: list[dict[str, Any]] = []
        for path, text in sorted(rendered.items()):
            if path.endswith("NOTES.txt"):
                continue
            docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
        return docs

    return _render

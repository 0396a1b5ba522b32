"""Fixtures of the chaos tests (`make test-chaos`): the Ray-dashboard stand-in, and the end state
of an undisturbed run of the resources every disturbed run must also reach."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.chaos.harness import EndState, KubeRay, chain, control_plane, expected_names
from tests.chaos.harness import served_models as _served_models
from tests.chaos.harness import settle as _settle
from tests.integration.conftest import KUBERAY, Dashboard

# The chain of examples/pipeline plus this many models each with its own service.
SERVED = 4
# A deadline for an undisturbed run to settle (it takes 30-40 s on 2 cores); generous.
UNDISTURBED_DEADLINE = 240


def resources() -> list[dict]:
    return chain() + _served_models(SERVED)


@pytest.fixture(scope="session")
def dashboard() -> Dashboard:
    return Dashboard()


@pytest.fixture(scope="session")
def undisturbed(tmp_path_factory: pytest.TempPathFactory, dashboard: Dashboard) -> EndState:
    """The end state of the resources with one operator, no faults, no kills."""
    if not KUBERAY.exists():
        pytest.skip(f"KubeRay CRDs not found at {KUBERAY}: the shared vendor schemas are absent")
    tmp: Path = tmp_path_factory.mktemp("undisturbed")
    docs = resources()
    with control_plane(tmp / "cp") as cp, KubeRay(cp, dashboard):
        op = cp.start_operator(tmp / "operator.log")
        try:
            for doc in docs:
                cp.create(doc)
            state = _settle(cp, expected_names(docs), UNDISTURBED_DEADLINE)
        finally:
            op.stop()
    assert not state.orphans and state.counts["rayservices"] == SERVED + 1, state
    return state

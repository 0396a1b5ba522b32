"""Fixtures of the Serve tests: one local Ray head per session, tiny models, a RAG index, and a
harness that deploys the application through the dashboard's declarative REST API (as KubeRay
does with a RayService's serveConfigV2) and waits for it.

Ray has 2 logical CPUs and every replica takes 0.5, so at most four replicas exist at a time: the
harness switches between configurations ("main": v1, v2 and a version v3 that never finishes
warming up; "scaling": v1 and v2 only; "canary": v1, v2 and a
ready v3; "embedding": a MiniLM service), and the tests that need
the later ones run last so each switch happens once.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[3]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from serve_harness import API_KEY, DOCS, ServeHarness, minilm_path  # noqa: E402
from tests.fixtures.ray_cluster import RayHead, delete_serve_apps  # noqa: E402
from tests.fixtures.tiny_models import build_tiny_llama, build_tiny_lora  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Scaling needs the CPU the never-ready v3 holds; run it last so the config switches once.
    here = Path(__file__).parent
    last = {
        here / "test_scaling.py": 1,
        here / "test_rollout.py": 2,
        here / "test_embeddings.py": 3,
    }
    items.sort(key=lambda item: last.get(item.path, 0))


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("serve-models")
    base = build_tiny_llama(root / "tiny-llama")
    adapter = build_tiny_lora(base, root / "tiny-lora")
    return {"base": str(base), "adapter": str(adapter)}


@pytest.fixture(scope="session")
def rag_index_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An index version of DOCS built by the index worker with the real MiniLM embedder."""
    from drover_workers.common.report import Reporter
    from drover_workers.index.__main__ import build
    from drover_workers.index.config import IndexConfig

    docs = tmp_path_factory.mktemp("serve-docs")
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    root = tmp_path_factory.mktemp("serve-index")
    config = IndexConfig(
        documents_path=str(docs),
        embedder_path=minilm_path(),
        output_root=str(root),
        parallelism="local",
    )
    build(config, Reporter())
    return str(root / "v1")


@pytest.fixture(scope="session")
def serve_harness(
    ray_cluster: RayHead,
    tiny_model_dirs: dict[str, str],
    rag_index_dir: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> ServeHarness:
    delete_serve_apps(ray_cluster)  # the session's Ray is shared: start from a clean Serve
    keys = tmp_path_factory.mktemp("serve-auth") / "keys"
    keys.write_text(f"sk-other\n{API_KEY}\n", encoding="utf-8")
    feedback = tmp_path_factory.mktemp("serve-feedback")
    return ServeHarness(ray_cluster, tiny_model_dirs, rag_index_dir, keys, feedback)


@pytest.fixture
def chatbot(serve_harness: ServeHarness) -> ServeHarness:
    """The main configuration (v1 90%, v2 10%, v3 never ready) with its base weights applied."""
    serve_harness.apply("main")
    return serve_harness

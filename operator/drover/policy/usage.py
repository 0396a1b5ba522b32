"""Policy layer: who uses a FoundationModel, so deleting it cannot pull weights from under them.

Pure: reads the spec (and, for services, the live versions in status) of the candidate users.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def _refs(obj: Mapping[str, Any], *paths: tuple[str, ...]) -> set[str]:
    names = set()
    for path in paths:
        node: Any = obj
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        if isinstance(node, Mapping) and node.get("name"):
            names.add(str(node["name"]))
        elif isinstance(node, str):
            names.add(node)
    return names


def users_of_model(
    model: str,
    *,
    finetunejobs: Iterable[Mapping[str, Any]],
    vectorindexes: Iterable[Mapping[str, Any]],
    inferenceservices: Iterable[Mapping[str, Any]],
) -> list[str]:
    """`Kind/name` of every object (not itself being deleted) that uses `model`."""
    users: list[str] = []
    checks = (
        ("FineTuneJob", finetunejobs, (("spec", "baseModel"),)),
        ("VectorIndex", vectorindexes, (("spec", "embeddingModel"),)),
        (
            "InferenceService",
            inferenceservices,
            (("spec", "model"), ("status", "stable", "model"), ("status", "canary", "model")),
        ),
    )
    for kind, objects, paths in checks:
        for obj in objects:
            meta = obj.get("metadata", {})
            if meta.get("deletionTimestamp"):
                continue
            if kind == "FineTuneJob" and (obj.get("status") or {}).get("phase") in (
                "Succeeded",
                "Failed",
            ):
                continue  # a finished job no longer reads the weights
            if model in _refs(obj, *paths):
                users.append(f"{kind}/{meta.get('name')}")
    return sorted(users)

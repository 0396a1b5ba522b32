"""Digests and manifests: per-file sha256 and a content digest of a whole directory.

The content digest is sha256 over the sorted `path\\0sha256\\n` list, so it depends only on the
relative paths and bytes of the files, never on timestamps or download order.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

MANIFEST = "drover-manifest.json"
_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


# Bookkeeping that is not model content: huggingface_hub's local-dir metadata, our own markers.
SKIP_DIRS = (".cache", ".drover-staging")
SKIP_PREFIX = ".drover-"


def list_files(root: str | Path, exclude: tuple[str, ...] = (MANIFEST,)) -> list[str]:
    """Relative POSIX paths of the content files under `root`, sorted (bookkeeping skipped)."""
    root = Path(root)
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in filenames:
            rel = (Path(dirpath) / name).relative_to(root).as_posix()
            if rel not in exclude and not name.startswith(SKIP_PREFIX):
                out.append(rel)
    return sorted(out)


def content_digest(file_hashes: dict[str, str]) -> str:
    h = hashlib.sha256()
    for path in sorted(file_hashes):
        h.update(f"{path}\0{file_hashes[path]}\n".encode())
    return f"sha256:{h.hexdigest()}"


def hash_tree(root: str | Path) -> dict[str, dict[str, Any]]:
    """{relative path: {sha256, size}} for every file under root (manifest excluded)."""
    root = Path(root)
    return {
        rel: {"sha256": sha256_file(root / rel), "size": (root / rel).stat().st_size}
        for rel in list_files(root)
    }


def write_manifest(root: str | Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Hash every file under root and write `drover-manifest.json`; returns the manifest."""
    files = hash_tree(root)
    manifest = {
        "digest": content_digest({p: f["sha256"] for p, f in files.items()}),
        "sizeBytes": sum(f["size"] for f in files.values()),
        "files": files,
        **(extra or {}),
    }
    Path(root, MANIFEST).write_text(
        json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8"
    )
    return manifest


def read_manifest(root: str | Path) -> dict[str, Any] | None:
    path = Path(root, MANIFEST)
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data

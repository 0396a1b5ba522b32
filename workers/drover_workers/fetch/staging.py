"""The atomic part of a fetch: a staging directory per source under `<cacheRoot>/<name>/`,
verification against the source's listing, the manifest, and the final rename to
`<cacheRoot>/<name>/<digest[:12]>/`."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from drover_workers.common.digest import MANIFEST, read_manifest, sha256_file, write_manifest
from drover_workers.common.sources import Listing

STAGING = ".drover-staging"


def staging_dir(model_dir: Path, source_key: str) -> Path:
    """The same source always gets the same staging dir, so a restarted fetch resumes there."""
    key = hashlib.sha256(source_key.encode()).hexdigest()[:16]
    return model_dir / STAGING / key


def verify(staging: Path, listing: Listing) -> list[str]:
    """Problems found (missing files, wrong sizes, sha256 mismatches); empty when all is well."""
    problems = []
    for rel, (size, sha) in sorted(listing.files.items()):
        path = staging / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.stat().st_size != size:
            problems.append(f"{rel}: size {path.stat().st_size} != {size}")
        elif sha and sha256_file(path) != sha:
            problems.append(f"{rel}: sha256 mismatch")
    return problems


def finalize(model_dir: Path, staging: Path, extra: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """Write the manifest and rename the staging dir into place (or keep an identical one)."""
    shutil.rmtree(staging / ".cache", ignore_errors=True)  # huggingface_hub's bookkeeping
    manifest = write_manifest(staging, extra)
    final = model_dir / manifest["digest"].removeprefix("sha256:")[:12]
    existing = read_manifest(final) if final.is_dir() else None
    if existing and existing.get("digest") == manifest["digest"]:
        shutil.rmtree(staging)  # same content already cached: keep the first copy
    else:
        if final.exists():
            shutil.rmtree(final)  # a broken leftover without a valid manifest
        os.replace(staging, final)
    _drop_empty(model_dir / STAGING)
    return final, manifest


def _drop_empty(path: Path) -> None:
    with contextlib.suppress(OSError):  # not empty: another source's staging is in progress
        path.rmdir()


__all__ = ["MANIFEST", "STAGING", "finalize", "staging_dir", "verify"]

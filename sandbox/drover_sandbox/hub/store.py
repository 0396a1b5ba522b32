"""Local hub storage: repositories as plain directories under `<root>/<type>s/<org>/<name>/`.

Each repository has a single revision, `main`, whose commit id is a sha1 over its files (so the
same bytes always give the same commit). File metadata (size, git blob id, sha256) is computed
once per process and cached by (path, size, mtime). A repository with a `.drover-gate` file (one
access token a line) is gated: its files need one of those tokens, as a gated repo on the hub.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

REPO_TYPES = ("model", "dataset")
GATE_FILE = ".drover-gate"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileInfo:
    path: str  # relative POSIX path inside the repo
    size: int
    blob_id: str  # git blob sha1, as the hub reports `oid`
    sha256: str


@dataclass(frozen=True)
class Repo:
    repo_type: str
    repo_id: str
    root: Path
    commit: str
    files: tuple[FileInfo, ...]
    gate_tokens: tuple[str, ...] = ()  # non-empty: a gated repo, downloads need one of these

    def file(self, path: str) -> FileInfo | None:
        return next((f for f in self.files if f.path == path), None)


def _hash_file(path: Path) -> tuple[str, str]:
    size = path.stat().st_size
    sha1 = hashlib.sha1(f"blob {size}\0".encode(), usedforsecurity=False)
    sha256 = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            sha1.update(block)
            sha256.update(block)
    return sha1.hexdigest(), sha256.hexdigest()


class RepoStore:
    """Reads repositories from disk; `get` returns None for an unknown repo."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._cache: dict[tuple[str, int, int], tuple[str, str]] = {}

    def repo_dir(self, repo_type: str, repo_id: str) -> Path:
        return self.root / f"{repo_type}s" / repo_id

    def get(self, repo_type: str, repo_id: str) -> Repo | None:
        if repo_type not in REPO_TYPES or ".." in repo_id.split("/"):
            return None
        root = self.repo_dir(repo_type, repo_id)
        if not root.is_dir() or repo_id.count("/") != 1:
            return None
        files = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".drover"))
            for name in sorted(n for n in filenames if not n.startswith(".drover")):
                full = Path(dirpath) / name
                st = full.stat()
                key = (str(full), st.st_size, st.st_mtime_ns)
                if key not in self._cache:
                    self._cache[key] = _hash_file(full)
                blob, sha = self._cache[key]
                files.append(FileInfo(full.relative_to(root).as_posix(), st.st_size, blob, sha))
        files.sort(key=lambda f: f.path)
        commit = hashlib.sha1(usedforsecurity=False)
        for f in files:
            commit.update(f"{f.path}\0{f.blob_id}\n".encode())
        gate = root / GATE_FILE
        tokens = tuple(gate.read_text().split()) if gate.is_file() else ()
        return Repo(repo_type, repo_id, root, commit.hexdigest(), tuple(files), tokens)

    def list(self) -> list[tuple[str, str]]:
        out = []
        for repo_type in REPO_TYPES:
            base = self.root / f"{repo_type}s"
            if base.is_dir():
                for org in sorted(p for p in base.iterdir() if p.is_dir()):
                    out += [(repo_type, f"{org.name}/{n.name}") for n in sorted(org.iterdir())]
        return out

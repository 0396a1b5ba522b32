"""Source URIs shared by the workers: `hf://`, `s3://`, `pvc://`, `file://` and plain paths.

`hf://org/name@rev` is a model repo, `hf://datasets/org/name@rev` a dataset repo; a path after
the repo (`hf://datasets/org/name@rev/train.jsonl`) names one file in it. `pvc://claim/path`
resolves to `<pvcRoot>/<claim>/<path>` (the claim mounted at `<pvcRoot>/<claim>` by the builder).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

DEFAULT_PVC_ROOT = "/mnt/pvc"
SCHEMES = ("hf", "s3", "pvc", "file")


class UriError(ValueError):
    """A URI that cannot be understood; the message says the accepted forms."""


@dataclass(frozen=True)
class HfRef:
    repo_id: str
    repo_type: str  # model | dataset
    revision: str
    path: str | None  # a file inside the repo, or None for the whole snapshot


@dataclass(frozen=True)
class S3Ref:
    bucket: str
    prefix: str


def scheme_of(uri: str) -> str:
    """`hf`, `s3`, `pvc`, `file`, or `path` for a plain filesystem path."""
    if "://" not in uri:
        return "path"
    scheme = uri.split("://", 1)[0]
    if scheme not in SCHEMES:
        raise UriError(
            f"unsupported URI scheme {scheme!r} in {uri!r}; use hf://, s3://, pvc://, file://"
        )
    return scheme


def parse_hf(uri: str) -> HfRef:
    rest = uri[len("hf://") :]
    repo_type = "model"
    for prefix, kind in (("datasets/", "dataset"), ("models/", "model")):
        if rest.startswith(prefix):
            rest, repo_type = rest[len(prefix) :], kind
    parts = rest.split("/", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise UriError(f"{uri!r}: expected hf://org/name[@revision][/path]")
    org, name_rev = parts[0], parts[1]
    name, _, revision = name_rev.partition("@")
    path = parts[2] if len(parts) == 3 and parts[2] else None
    if not name:
        raise UriError(f"{uri!r}: the repository name is empty")
    return HfRef(f"{org}/{name}", repo_type, revision or "main", path)


def parse_s3(uri: str) -> S3Ref:
    parsed = urlparse(uri)
    if not parsed.netloc:
        raise UriError(f"{uri!r}: expected s3://bucket/prefix")
    return S3Ref(parsed.netloc, parsed.path.lstrip("/"))


def pvc_root(explicit: str | None = None) -> Path:
    return Path(explicit or os.environ.get("DROVER_PVC_ROOT") or DEFAULT_PVC_ROOT)


def local_path(uri: str, pvc_root_dir: str | None = None) -> Path:
    """The filesystem path of a `file://`, `pvc://` or plain-path URI."""
    kind = scheme_of(uri)
    if kind == "path":
        return Path(uri)
    if kind == "file":
        parsed = urlparse(uri)
        if parsed.netloc not in ("", "localhost"):
            raise UriError(f"{uri!r}: file:// URIs must be absolute (file:///path)")
        return Path(unquote(parsed.path))
    if kind == "pvc":
        rest = uri[len("pvc://") :]
        claim, _, sub = rest.partition("/")
        if not claim:
            raise UriError(f"{uri!r}: expected pvc://claim/path")
        return pvc_root(pvc_root_dir) / claim / sub
    raise UriError(f"{uri!r} is not a local path (file://, pvc:// or a plain path)")

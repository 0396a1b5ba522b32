"""Source downloads shared by the workers: Hugging Face hub (huggingface_hub), S3 (boto3) and
filesystem copies (file://, pvc://). Each is resumable: files already complete in the
destination are left alone, and only missing or partial files are transferred.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drover_workers.common.uris import HfRef, S3Ref, local_path, parse_hf, parse_s3, scheme_of


@dataclass(frozen=True)
class Listing:
    """What the source holds: {relative path: (size, sha256 or None)} and its revision id."""

    files: dict[str, tuple[int, str | None]]
    revision: str | None = None

    @property
    def total_bytes(self) -> int:
        return sum(size for size, _ in self.files.values())


# --- Hugging Face hub -------------------------------------------------------------------------


def hf_endpoint(explicit: str | None = None) -> str | None:
    return explicit or os.environ.get("HF_ENDPOINT") or None


def hf_listing(ref: HfRef, token: str | None, endpoint: str | None) -> Listing:
    """Resolve the revision to a commit and list its files (sizes, LFS sha256 when known)."""
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    api = HfApi(endpoint=hf_endpoint(endpoint), token=token or False)
    info = api.repo_info(ref.repo_id, repo_type=ref.repo_type, revision=ref.revision)
    commit = info.sha or ref.revision
    files: dict[str, tuple[int, str | None]] = {}
    for entry in api.list_repo_tree(
        ref.repo_id, repo_type=ref.repo_type, revision=commit, recursive=True
    ):
        if isinstance(entry, RepoFile):
            files[entry.path] = (entry.size, entry.lfs.sha256 if entry.lfs else None)
    return Listing(files, commit)


def download_hf(
    ref: HfRef, dest: Path, token: str | None, endpoint: str | None, commit: str
) -> None:
    """snapshot_download into `dest` (local_dir mode: resumes partial files, skips done ones)."""
    from huggingface_hub import hf_hub_download, snapshot_download

    common: dict[str, Any] = {
        "repo_type": ref.repo_type,
        "revision": commit,
        "local_dir": str(dest),
        "endpoint": hf_endpoint(endpoint),
        "token": token or False,
    }
    if ref.path:
        hf_hub_download(ref.repo_id, filename=ref.path, **common)
    else:
        snapshot_download(ref.repo_id, max_workers=4, **common)


# --- S3 -----------------------------------------------------------------------------------------


def s3_client(endpoint_url: str | None = None, region: str | None = None) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region)


def _relative_key(key: str, prefix: str) -> str | None:
    """The object's path below the prefix (treated as a folder), or None when it is not below."""
    if key.endswith("/"):
        return None  # a "folder" placeholder object
    if not prefix or prefix.endswith("/"):
        return key[len(prefix) :]
    if key == prefix:
        return Path(key).name  # the prefix named a single object
    if key.startswith(prefix + "/"):
        return key[len(prefix) + 1 :]
    return None  # e.g. prefix "m/tiny" and key "m/tiny-other/x"


def s3_listing(client: Any, ref: S3Ref) -> tuple[Listing, dict[str, str]]:
    """List every object under the prefix: the listing and {relative path: key}."""
    files: dict[str, tuple[int, str | None]] = {}
    keys: dict[str, str] = {}
    prefix = ref.prefix
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=ref.bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            rel = _relative_key(key, prefix)
            if rel is None:
                continue
            files[rel] = (int(obj["Size"]), None)
            keys[rel] = key
    return Listing(files), keys


def download_s3(client: Any, ref: S3Ref, listing: Listing, keys: dict[str, str], dest: Path) -> int:
    """Download the objects not yet complete in dest; returns how many were transferred."""
    transferred = 0
    for rel, (size, _) in sorted(listing.files.items()):
        target = dest / rel
        if target.is_file() and target.stat().st_size == size:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".drover-part")
        client.download_file(ref.bucket, keys[rel], str(part))
        os.replace(part, target)
        transferred += 1
    return transferred


# --- filesystem copies (file://, pvc://) ------------------------------------------------------


def path_listing(src: Path) -> Listing:
    if src.is_file():
        return Listing({src.name: (src.stat().st_size, None)})
    if not src.is_dir():
        raise FileNotFoundError(f"{src} does not exist")
    files = {}
    for dirpath, _, filenames in os.walk(src):
        for name in filenames:
            full = Path(dirpath) / name
            files[full.relative_to(src).as_posix()] = (full.stat().st_size, None)
    return Listing(files)


def copy_tree(src: Path, listing: Listing, dest: Path) -> int:
    """Copy files not yet complete in dest (same size); returns how many were copied."""
    copied = 0
    for rel, (size, _) in sorted(listing.files.items()):
        origin = src if src.is_file() else src / rel
        target = dest / rel
        if target.is_file() and target.stat().st_size == size:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".drover-part")
        shutil.copyfile(origin, part)
        os.replace(part, target)
        copied += 1
    return copied


# --- one call for data sets and documents -----------------------------------------------------


def materialize(
    uri: str,
    workdir: Path,
    *,
    token: str | None = None,
    endpoint: str | None = None,
    pvc_root_dir: str | None = None,
) -> Path:
    """A local path holding the data a URI names (downloaded into workdir when remote)."""
    kind = scheme_of(uri)
    if kind in ("path", "file", "pvc"):
        path = local_path(uri, pvc_root_dir)
        if not path.exists():
            raise FileNotFoundError(f"{uri}: {path} does not exist")
        return path
    workdir.mkdir(parents=True, exist_ok=True)
    if kind == "hf":
        ref = parse_hf(uri)
        listing = hf_listing(ref, token, endpoint)
        dest = workdir / ref.repo_id.replace("/", "--")
        download_hf(ref, dest, token, endpoint, listing.revision or ref.revision)
        return dest / ref.path if ref.path else dest
    ref_s3 = parse_s3(uri)
    client = s3_client()
    s3_list, keys = s3_listing(client, ref_s3)
    dest = workdir / f"s3--{ref_s3.bucket}"
    download_s3(client, ref_s3, s3_list, keys, dest)
    if len(s3_list.files) == 1 and not ref_s3.prefix.endswith("/"):
        return dest / next(iter(s3_list.files))
    return dest

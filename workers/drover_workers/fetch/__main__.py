"""fetch worker entrypoint: resolve the source, download into staging, verify, finalize."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from drover_workers.common.credentials import read_token
from drover_workers.common.modelinfo import context_length
from drover_workers.common.report import Reporter
from drover_workers.common.runner import WorkerError, run_worker
from drover_workers.common.sources import (
    copy_tree,
    download_hf,
    download_s3,
    hf_listing,
    path_listing,
    s3_client,
    s3_listing,
)
from drover_workers.common.uris import local_path, parse_hf, parse_s3, scheme_of
from drover_workers.fetch.config import FetchConfig
from drover_workers.fetch.progress import ByteWatcher
from drover_workers.fetch.staging import finalize, staging_dir, verify


def fetch(config: FetchConfig, reporter: Reporter) -> dict[str, Any]:
    uri = config.source.uri
    kind = scheme_of(uri)
    model_dir = Path(config.cache_root) / config.name
    try:
        token = read_token(config.source.credentials)
    except (FileNotFoundError, KeyError) as exc:
        raise WorkerError("CredentialsNotFound", str(exc).strip("'\"")) from None
    reporter.progress(force=True, phase="resolving", source=uri)
    if kind == "hf":
        ref = parse_hf(uri)
        if config.revision:
            ref = type(ref)(ref.repo_id, ref.repo_type, config.revision, ref.path)
        listing = _hf_call(lambda: hf_listing(ref, token, config.hf_endpoint), uri)
        revision = listing.revision or ref.revision
        staging = staging_dir(model_dir, f"{uri}@{revision}")
        with ByteWatcher(reporter, staging, listing.total_bytes):
            _hf_call(lambda: download_hf(ref, staging, token, config.hf_endpoint, revision), uri)
    elif kind == "s3":
        s3 = config.source.s3
        client = s3_client(s3.endpoint_url if s3 else None, s3.region if s3 else None)
        ref_s3 = parse_s3(uri)
        listing, keys = s3_listing(client, ref_s3)
        revision = None
        staging = staging_dir(model_dir, uri)
        with ByteWatcher(reporter, staging, listing.total_bytes):
            download_s3(client, ref_s3, listing, keys, staging)
    else:
        src = local_path(uri, config.pvc_root)
        if not src.exists():
            raise WorkerError("SourceNotFound", f"source.uri {uri}: {src} does not exist")
        listing, revision = path_listing(src), None
        staging = staging_dir(model_dir, uri)
        with ByteWatcher(reporter, staging, listing.total_bytes):
            copy_tree(src, listing, staging)
    if not listing.files:
        raise WorkerError("SourceEmpty", f"source.uri {uri} holds no files")
    reporter.progress(force=True, phase="verifying", files=len(listing.files))
    problems = verify(staging, listing)
    if problems:
        raise WorkerError("VerificationFailed", "; ".join(problems[:5]))
    reporter.progress(force=True, phase="finalizing")
    extra = {"name": config.name, "source": uri, "revision": revision}
    final, manifest = finalize(model_dir, staging, extra)
    return {
        "digest": manifest["digest"],
        "path": str(final),
        "sizeBytes": manifest["sizeBytes"],
        "files": len(manifest["files"]),
        "revision": revision,
        "contextLength": context_length(final),
    }


def _hf_call(call: Any, uri: str) -> Any:
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return call()
    except RevisionNotFoundError:
        raise WorkerError("RevisionNotFound", f"source.uri {uri}: no such revision") from None
    except RepositoryNotFoundError:
        raise WorkerError(
            "RepositoryNotFound", f"source.uri {uri}: repository not found (or no access)"
        ) from None
    except EntryNotFoundError:
        raise WorkerError("SourceNotFound", f"source.uri {uri}: file not found") from None
    except HfHubHTTPError as exc:
        raise WorkerError("DownloadFailed", f"source.uri {uri}: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # progress goes to ::drover:: lines
    return run_worker(FetchConfig, fetch, lambda c: str(Path(c.cache_root) / c.name), argv)


if __name__ == "__main__":
    sys.exit(main())

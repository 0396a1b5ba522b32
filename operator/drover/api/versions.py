"""API layer: how a served version is named — one id from its weights' digest.

The id names the Serve deployment (`model-<id>`) and is the `version` label of every metric, so
the builders, the rollout and the Prometheus queries all agree on it. Same weights, same id.
"""

from __future__ import annotations

import hashlib


def version_id(digest: str) -> str:
    """`v` + 10 hex characters of a hash of the digest (`base+adapter` for an adapter version)."""
    return "v" + hashlib.sha256(digest.encode()).hexdigest()[:10]


def deployment_name(digest: str) -> str:
    return f"model-{version_id(digest)}"

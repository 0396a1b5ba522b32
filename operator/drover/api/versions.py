"""API layer: how a served version is named — one id from its weights' digest.

The id names the version's Serve application (`<service>-<id>`, whose one deployment is `model`)
and is the `version` label of every metric, so the builders, the rollout and the Prometheus
queries all agree on it. Same weights, same id.
"""

from __future__ import annotations

import hashlib

MODEL_DEPLOYMENT = "model"  # the one deployment of every version application
ROUTER_DEPLOYMENT = "router"  # the ingress deployment of the router application `<service>`


def version_id(digest: str) -> str:
    """`v` + 10 hex characters of a hash of the digest (`base+adapter` for an adapter version)."""
    return "v" + hashlib.sha256(digest.encode()).hexdigest()[:10]


def version_app(service: str, vid: str) -> str:
    """The Serve application of version `vid` (the router finds it by the same rule)."""
    return f"{service}-{vid}"

"""I/O layer: register a fine-tune's output in the MLflow model registry, over MLflow's REST API
(`/api/2.0/mlflow/registered-models/create`, `/model-versions/create`), so the operator image
needs no MLflow client. The fine-tune's run itself is logged by the worker.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any


class TrackingError(Exception):
    """The tracking server refused or could not be reached; the message says which."""


def _post(base: str, path: str, body: Mapping[str, Any], timeout: float) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{base}/api/2.0/mlflow/{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return dict(json.loads(response.read() or b"{}"))
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read() or b"{}")
        except ValueError:
            error = {}
        code = error.get("error_code", f"HTTP {exc.code}")
        raise TrackingError(f"{code}: {error.get('message', exc.reason)}") from None
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        raise TrackingError(f"MLflow at {base} unreachable: {exc}") from None


def _existing_version(base: str, name: str, source: str, timeout: float) -> str | None:
    """The version already registered for `source` (a retry after a crash between registering
    and recording it in status registers nothing twice)."""
    query = urllib.parse.urlencode({"filter": f"name='{name}' and source_path='{source}'"})
    request = urllib.request.Request(f"{base}/api/2.0/mlflow/model-versions/search?{query}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            found = json.loads(response.read() or b"{}").get("model_versions") or []
    except (urllib.error.URLError, TimeoutError, OSError, ValueError):
        return None
    return str(found[0]["version"]) if found else None


def register_model_version(
    base: str,
    name: str,
    *,
    source: str,
    run_id: str | None,
    tags: Mapping[str, str],
    timeout: float = 10.0,
) -> str:
    """Create the registered model when absent and a version of it; returns the version."""
    existing = _existing_version(base, name, source, timeout)
    if existing is not None:
        return existing
    try:
        _post(base, "registered-models/create", {"name": name}, timeout)
    except TrackingError as exc:
        if not str(exc).startswith("RESOURCE_ALREADY_EXISTS"):
            raise
    body: dict[str, Any] = {
        "name": name,
        "source": source,
        "tags": [{"key": k, "value": v} for k, v in sorted(tags.items())],
    }
    if run_id:
        body["run_id"] = run_id
    created = _post(base, "model-versions/create", body, timeout)
    return str(created["model_version"]["version"])

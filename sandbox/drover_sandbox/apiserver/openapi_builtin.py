"""Local control plane, discovery layer: real schemas of built-in kinds for ``kubectl explain``.

The Kubernetes 1.32 definitions come from the ``kubernetes-validate`` package when it is
installed (a development dependency); without it built-in kinds are documented as free-form
objects, which kubectl accepts.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

__all__ = ["builtin_schemas"]

_PREFERRED = "v1.32.0-local"


@functools.lru_cache(maxsize=1)
def _definitions() -> dict[str, Any]:
    try:
        import kubernetes_validate
    except ImportError:
        return {}
    root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    candidates = [root / _PREFERRED, *sorted(root.glob("v1.*-local"), reverse=True)]
    for directory in candidates:
        path = directory / "_definitions.json"
        if path.is_file():
            defs: dict[str, Any] = json.loads(path.read_text()).get("$defs", {})
            return defs
    return {}


def _convert(node: Any, refs: set[str]) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                name = value.removeprefix("#/$defs/")
                refs.add(name)
                out[key] = f"#/components/schemas/{name}"
            elif key == "type" and isinstance(value, list):
                kinds = [v for v in value if v != "null"]
                if len(kinds) == 1:
                    out[key] = kinds[0]
            else:
                out[key] = _convert(value, refs)
        if isinstance(out.get("$ref"), str) and len(out) > 1:
            # kube publishes a described reference as allOf: [$ref] plus the description.
            out["allOf"] = [{"$ref": out.pop("$ref")}]
        return out
    if isinstance(node, list):
        return [_convert(v, refs) for v in node]
    return node


@functools.lru_cache(maxsize=64)
def _closure(name: str) -> dict[str, Any]:
    defs = _definitions()
    if name not in defs:
        return {}
    out: dict[str, Any] = {}
    pending = [name]
    while pending:
        current = pending.pop()
        if current in out or current not in defs:
            continue
        refs: set[str] = set()
        out[current] = _convert(defs[current], refs)
        pending.extend(refs - set(out))
    return out


def builtin_schemas(name: str) -> dict[str, Any]:
    """``name`` (``io.k8s.api.apps.v1.Deployment``) and every schema it references, as
    OpenAPI v3 components; empty when the definitions are not available."""
    return copy.deepcopy(_closure(name))

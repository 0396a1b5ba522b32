"""Plugin layer, pure: render a Drover resource and the objects it owns as a tree with conditions.

`render_status` takes plain dicts (as `kubectl get -o json` prints them) and returns the text
`kubectl drover status` prints; the ownership tree follows `metadata.ownerReferences` by uid.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

Obj = Mapping[str, Any]
# The summary conditions first, then the kind's own sub-conditions in the order written.
SUMMARY = ("Ready", "Progressing", "Degraded")
KSTATUS_MIRRORS = ("Reconciling", "Stalled")  # repeat Progressing/Degraded for kstatus
# The fetch's progress as drover.policy.fetching words it in the Fetched condition's message.
FETCHED_MB = re.compile(r"(\d+(?:\.\d+)?)/(\d+(?:\.\d+)?) MB")
BAR_WIDTH = 24


def ref(obj: Obj) -> str:
    return f"{obj.get('kind', '?')}/{obj.get('metadata', {}).get('name', '?')}"


def owned_by(parent: Obj, objects: Sequence[Obj]) -> list[Obj]:
    """The objects whose owner references name `parent`'s uid, sorted by kind and name."""
    uid = parent.get("metadata", {}).get("uid")
    if not uid:
        return []
    found = [
        o
        for o in objects
        if any(r.get("uid") == uid for r in o.get("metadata", {}).get("ownerReferences") or ())
    ]
    return sorted(found, key=ref)


def state(obj: Obj) -> str:
    """One short phrase of an object's state, from the fields its own controller writes."""
    status = obj.get("status") or {}
    kind = obj.get("kind")
    if kind == "RayJob":
        parts = [status.get("jobDeploymentStatus"), status.get("jobStatus")]
    elif kind == "RayService":
        parts = [status.get("serviceStatus") or _condition_text(status, "Ready")]
    elif kind == "RayCluster":
        parts = [status.get("state")]
    elif kind == "PersistentVolumeClaim":
        parts = [status.get("phase"), (status.get("capacity") or {}).get("storage")]
    else:
        parts = [status.get("phase"), _condition_text(status, "Ready")]
    return " ".join(str(p) for p in parts if p) or "-"


def _condition_text(status: Mapping[str, Any], type_: str) -> str | None:
    for cond in status.get("conditions") or ():
        if cond.get("type") == type_:
            return f"{type_}={cond.get('status')}"
    return None


def condition_rows(obj: Obj) -> list[tuple[str, str, str, str]]:
    """(type, status, reason, message) of each condition; kstatus' mirrors left out."""
    conds = [
        c
        for c in (obj.get("status") or {}).get("conditions") or ()
        if c.get("type") not in KSTATUS_MIRRORS
    ]
    first = [c for t in SUMMARY for c in conds if c.get("type") == t]
    rest = [c for c in conds if c.get("type") not in SUMMARY]
    return [
        (
            str(c.get("type", "")),
            str(c.get("status", "")),
            str(c.get("reason", "")),
            str(c.get("message", "")),
        )
        for c in first + rest
    ]


def _table(rows: Sequence[tuple[str, ...]], indent: str) -> list[str]:
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return [
        (
            indent
            + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
            + "  "
            + row[-1]
        ).rstrip()
        for row in rows
    ]


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """`[#########---------------]  38%` for 0 <= fraction <= 1."""
    fraction = min(max(fraction, 0.0), 1.0)
    filled = round(fraction * width)
    return f"[{'#' * filled}{'-' * (width - filled)}] {round(fraction * 100):3d}%"


def progress_line(obj: Obj) -> str | None:
    """A progress bar for a fine-tune that trains or a model whose weights are downloading."""
    status = obj.get("status") or {}
    if obj.get("kind") == "FineTuneJob" and status.get("phase") not in ("Succeeded", "Failed"):
        progress = status.get("progress") or {}
        total = progress.get("totalSteps")
        if not total:
            return None
        step = progress.get("step", 0)
        text = f"training {bar(step / total)}  step {step}/{total}"
        if progress.get("loss") is not None:
            text += f"  loss {progress['loss']:.4g}"
        return text
    if obj.get("kind") == "FoundationModel":
        for cond in status.get("conditions") or ():
            if cond.get("type") == "Fetched" and cond.get("status") == "Unknown":
                found = FETCHED_MB.search(str(cond.get("message", "")))
                if found and float(found.group(2)) > 0:
                    done, total = float(found.group(1)), float(found.group(2))
                    return f"fetching {bar(done / total)}  {found.group(0)}"
    return None


def render_status(root: Obj, objects: Sequence[Obj]) -> str:
    """The resource, its conditions, then every object it owns (recursively) as a tree."""
    meta, status = root.get("metadata", {}), root.get("status") or {}
    generation, observed = meta.get("generation"), status.get("observedGeneration")
    lines = [f"{ref(root)} in {meta.get('namespace', 'default')}: {state(root)}"]
    if generation is not None and observed is not None and observed != generation:
        lines.append(f"  (status is of generation {observed}; the spec is at {generation})")
    if (progress := progress_line(root)) is not None:
        lines.append("  " + progress)
    lines += _table(condition_rows(root), "  ")
    lines += _children(root, objects, "", set())
    return "\n".join(lines) + "\n"


def _children(parent: Obj, objects: Sequence[Obj], prefix: str, seen: set[str]) -> list[str]:
    lines: list[str] = []
    kids = [k for k in owned_by(parent, objects) if k.get("metadata", {}).get("uid") not in seen]
    for i, kid in enumerate(kids):
        last = i == len(kids) - 1
        lines.append(f"{prefix}{'└─' if last else '├─'} {ref(kid)}: {state(kid)}")
        inner = prefix + ("   " if last else "│  ")
        rows = [r for r in condition_rows(kid) if r[1] != "True" or r[0] in SUMMARY]
        lines += _table(rows, inner + "  ")
        uid = kid.get("metadata", {}).get("uid")
        lines += _children(kid, objects, inner, seen | {uid} if uid else seen)
    return lines

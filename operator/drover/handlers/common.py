"""Handlers layer: what every handler does the same way — parse, record status, tell the user.

`parse_resource` turns a body into its pydantic model or an `InvalidSpec` outcome; `write_status`
merges conditions, derives Ready/Progressing/Degraded, and patches only what changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import kopf
from pydantic import ValidationError

from drover.api.common import ResourceBase
from drover.api.reasons import SpecReason
from drover.builders.raycluster import ContainerImage, Placement
from drover.config import OperatorConfig
from drover.k8s import children
from drover.policy.conditions import Cond, set_conditions, summarise
from drover.policy.events import Event

R = TypeVar("R", bound=ResourceBase)


def now() -> datetime:
    return datetime.now(UTC)


def worker_image(config: OperatorConfig, placement: Placement | None = None) -> ContainerImage:
    """The Ray pods' image on `placement` (None: a CPU-only job such as a fetch or an index
    build) with the configured pull policy: the class's own image, else the GPU or CPU build."""
    accelerator = config.accelerator_classes.get(placement.class_name) if placement else None
    return ContainerImage(config.images.for_class(accelerator), config.images.pull_policy.value)


def explain_validation(exc: ValidationError) -> str:
    """`spec.replicas.min: <message>` lines with the camelCase names the user wrote."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def parse_resource(model: type[R], body: Mapping[str, Any]) -> R | str:
    """The resource's model, or a message naming the invalid field(s) and the fix."""
    raw = {k: v for k, v in dict(body).items() if k in ("apiVersion", "kind", "metadata", "spec")}
    raw["metadata"] = dict(raw.get("metadata") or {})
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        return explain_validation(exc)


def write_status(
    body: Mapping[str, Any],
    patch: kopf.Patch,
    *,
    fields: Mapping[str, Any],
    conditions: Iterable[Cond],
    declared: tuple[str, ...],
    when: datetime,
) -> bool:
    """Patch status with `fields` and `conditions` (+ Ready summary); True when anything changed."""
    status = dict(body.get("status") or {})
    generation = int(body.get("metadata", {}).get("generation") or 1)
    conds = set_conditions(status.get("conditions"), conditions, generation=generation, now=when)
    conds = summarise(conds, declared, generation=generation, now=when)
    desired = {**fields, "conditions": conds, "observedGeneration": generation}
    changed = {k: v for k, v in desired.items() if status.get(k) != v}
    for key, value in changed.items():
        patch.status[key] = merge_patch(status.get(key), value)
    return bool(changed)


def merge_patch(old: Any, new: Any) -> Any:
    """The JSON merge patch turning `old` into `new`: keys that disappeared become null, so a
    status block written as a whole (rollout, autoscaling) loses the fields it no longer has."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    out = {k: merge_patch(old.get(k), v) for k, v in new.items()}
    out.update({k: None for k in old if k not in new})
    return out


def emit(body: Mapping[str, Any], event: Event | None, logger: Any) -> None:
    if event is None:
        return
    kopf.event(dict(body), type=event.type, reason=event.reason, message=event.message)
    log = logger.warning if event.type == "Warning" else logger.info
    log(f"{event.reason}: {event.message}")


def invalid_spec(
    body: Mapping[str, Any],
    patch: kopf.Patch,
    message: str,
    declared: tuple[str, ...],
    logger: Any,
    reason: str = SpecReason.INVALID_SPEC,
) -> None:
    """Ready=False with the reason and message; a Warning event once; no retry loop."""
    changed = write_status(
        body,
        patch,
        fields={"phase": "Failed"},
        conditions=[Cond(declared[0], False, reason, message)],
        declared=declared,
        when=now(),
    )
    if changed:
        emit(body, Event("Warning", reason, message), logger)


def with_own_patch(
    kind: str, body: Mapping[str, Any], reconcile: Callable[[kopf.Patch], None], retry: float
) -> bool:
    """Run a timer's `reconcile` and write the patch it fills here rather than through kopf.

    kopf ends a timer for good when the patch it applies after the timer fails (a 409, a status
    the API refuses, an API server away for longer than kopf's retries): that resource would
    never be polled again, its status frozen. Written here, a failed patch is a TemporaryError,
    and kopf runs the timer again after `retry` seconds. True when something was written.
    """
    own = kopf.Patch()
    reconcile(own)
    if not own:
        return False
    meta = body.get("metadata", {})
    return children.apply_patch(
        kind, meta.get("namespace") or "default", meta["name"], dict(own), retry=retry
    )

"""Policy layer: the Kubernetes event a decision asks for.

Pure decisions return an `Event` beside their status; the handlers emit it (`handlers.common.emit`)
through kopf, so the decision itself never talks to the API.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Event"]


@dataclass(frozen=True)
class Event:
    """One event on the resource: its type, a CamelCase reason and a sentence."""

    type: str  # Normal | Warning
    reason: str
    message: str

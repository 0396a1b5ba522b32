"""Builders layer: the error a builder raises when a spec cannot be turned into children.

It carries the condition reason and a message that names the field and the fix; handlers turn it
into Ready=False with that reason and a Warning event, and do not retry until the spec changes.
"""

from __future__ import annotations


class SpecError(Exception):
    """A spec the schema accepted but the cluster cannot satisfy (unknown class, too large...)."""

    def __init__(self, reason: str, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.reason = reason
        self.field = field
        self.message = f"{field}: {message}"

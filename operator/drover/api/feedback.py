"""API layer: an InferenceService's user feedback (`spec.feedback`), stored for fine-tuning.

With feedback on, the router answers `POST /v1/feedback` (an answer's `id`, a rating, an optional
correction) and appends request, response and feedback, redacted, as JSON Lines under `storage`,
which a FineTuneJob reads with `dataset.format: feedback`.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import Field, field_validator

from drover.api.base import ApiModel, Rule
from drover.api.common import sub
from drover.api.uris import SourceUri


class BuiltinRedactor(StrEnum):
    """A built-in redactor of personal data (the router's drover_workers.serve.redact)."""

    EMAIL = "email"
    IBAN = "iban"
    CARD = "card"
    IPV4 = "ipv4"
    PHONE = "phone"


class RedactionPattern(ApiModel):
    """A regular expression of the service's own; each match becomes `[<NAME>]`."""

    name: str = Field(
        min_length=1,
        max_length=32,
        pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
        description="Names the placeholder: matches of pattern employee-id become [EMPLOYEE-ID].",
    )
    pattern: str = Field(
        min_length=1,
        max_length=1024,
        description="A regular expression in Python's syntax (the router's `re` module), e.g. "
        "'EMP-[0-9]{6}'.",
    )

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(
                f"{value!r} is not a valid regular expression ({exc}): write it in Python's "
                "re syntax"
            ) from None
        if compiled.fullmatch(""):
            raise ValueError(f"{value!r} matches the empty string: make it match something")
        return value


class RedactionSpec(ApiModel):
    """What is redacted from every text before a feedback record is written."""

    builtin: list[BuiltinRedactor] = Field(
        default_factory=lambda: list(BuiltinRedactor),
        max_length=len(BuiltinRedactor),
        description="Built-in redactors: email, iban, card (13-19 digits), ipv4, phone; all of "
        "them when unset. An empty list turns them off.",
    )
    patterns: list[RedactionPattern] = Field(
        default_factory=list,
        max_length=32,
        description="The service's own patterns, applied after the built-in redactors.",
    )


class FeedbackSpec(ApiModel):
    """User feedback on answers: `POST /v1/feedback`, stored redacted for fine-tuning."""

    __rules__ = (
        Rule(
            cel="!self.enabled || has(self.storage)",
            message="feedback.enabled needs feedback.storage: set it to a pvc://claim/path the "
            "router writes the records under",
            check=lambda f: not f.enabled or f.storage is not None,
            field_path=".storage",
        ),
        Rule(
            cel="!has(self.storage) || self.storage.startsWith('pvc://')",
            message="feedback.storage must be a pvc://claim/path (a claim the router's pods "
            "mount read-write and a FineTuneJob reads)",
            check=lambda f: f.storage is None or f.storage.startswith("pvc://"),
            field_path=".storage",
        ),
    )

    enabled: bool = Field(
        default=False,
        description="Accept POST /v1/feedback and remember answers for it; off, the endpoint "
        "answers 404.",
    )
    storage: SourceUri | None = Field(
        default=None,
        description="Where records are appended: pvc://claim/path (an existing claim; "
        "ReadWriteMany when the service's workers may span nodes). Files are "
        "<path>/<UTC date>/<router replica>.jsonl; a FineTuneJob reads the same URI with "
        "dataset.format: feedback.",
    )
    redact: RedactionSpec = sub(
        RedactionSpec, "Redaction applied to every text before anything is written."
    )
    remember: int = Field(
        default=10000,
        ge=1,
        le=1000000,
        description="Answers the router keeps for feedback (the oldest are forgotten first, "
        "also beyond 64 Mi characters); feedback on a forgotten answer gets 404.",
    )

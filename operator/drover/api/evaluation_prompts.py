"""API layer: the evaluation prompts of a rollout's analysis (`analysis.evaluationPrompts`).

Each prompt is sent to the canary before it gets traffic and at each step; its answer must meet
every expectation given (`drover.policy.evaluation` scores it). Part of `drover.api.rollout`.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from drover.api.base import ApiModel, Rule

__all__ = ["EvaluationPrompt", "PromptExpectation"]


class PromptExpectation(ApiModel):
    """What an answer to an evaluation prompt must satisfy (all given checks must hold)."""

    __rules__ = (
        Rule(
            cel="has(self.contains) || has(self.notContains) || has(self.regex) || "
            "has(self.reference)",
            message="set at least one of contains, notContains, regex or reference",
            check=lambda e: any(
                x is not None for x in (e.contains, e.not_contains, e.regex, e.reference)
            ),
        ),
        Rule(
            cel="!has(self.minRougeL) || has(self.reference)",
            message="minRougeL needs a reference answer to compare with",
            check=lambda e: e.min_rouge_l is None or e.reference is not None,
            field_path=".minRougeL",
        ),
    )

    contains: str | None = Field(
        default=None, min_length=1, description="The answer must contain this text (ignoring case)."
    )
    not_contains: str | None = Field(
        default=None,
        min_length=1,
        description="The answer must not contain this text (ignoring case).",
    )
    regex: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="The answer must match this Python regular expression (re.search).",
    )
    reference: str | None = Field(
        default=None, min_length=1, description="A reference answer for the ROUGE-L comparison."
    )
    min_rouge_l: float | None = Field(
        default=None,
        ge=0,
        le=1,
        alias="minRougeL",
        description="Minimum ROUGE-L F1 of the answer against reference (default 0.3).",
    )

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as err:
                raise ValueError(f"regex does not compile ({err}); fix the expression") from err
        return v


class EvaluationPrompt(ApiModel):
    """A prompt sent to the canary before it gets traffic and at each step."""

    prompt: str = Field(min_length=1, max_length=8000, description="The user message sent.")
    expect: PromptExpectation = Field(description="What the answer must satisfy.")

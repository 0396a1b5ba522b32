"""API layer: the base every Drover resource model builds on.

`ApiModel` gives camelCase wire names, forbids unknown fields and carries cross-field `Rule`s.
A rule is written once and used twice: as an `x-kubernetes-validations` CEL rule in the generated
CRD (the API server checks it) and as a Python check in the model (the operator and the tests
check it), both with the same message, so either path tells the user the same thing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, model_validator
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

GROUP = "drover.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


@dataclass(frozen=True)
class Rule:
    """A cross-field rule: `cel` for the API server, `check` for Python, one `message` for both.

    `check` receives the model instance and returns True when the rule holds. `field_path` is the
    CEL `fieldPath` (e.g. ``.max``) naming the field the message is about.
    """

    cel: str
    message: str
    check: Callable[[Any], bool]
    field_path: str | None = None

    def to_crd(self) -> dict[str, str]:
        rule = {"rule": self.cel, "message": self.message}
        if self.field_path:
            rule["fieldPath"] = self.field_path
        return rule


class ApiModel(BaseModel):
    """Base of every spec/status model: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=False,
    )

    # Cross-field rules of this class (not inherited): see `Rule`.
    __rules__: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="after")
    def _check_rules(self) -> ApiModel:
        for rule in type(self).__dict__.get("__rules__", ()):
            if not rule.check(self):
                # A custom error type keeps the message unprefixed and carries the field path,
                # so an error report can name the field (`drover.api.parsing`).
                raise PydanticCustomError(
                    "drover_rule",
                    rule.message,
                    {"field_path": rule.field_path or ""},
                )
        return self

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        rules = cls.__dict__.get("__rules__", ())
        if rules:
            target["x-kubernetes-validations"] = [rule.to_crd() for rule in rules]
        return schema

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict as it appears in a manifest (camelCase, unset fields omitted)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """The one condition shape (metav1.Condition) used by every Drover resource."""

    type: str = Field(description="Condition type, e.g. Ready, ModelReady, Progressing.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(description="CamelCase reason from a fixed set, e.g. WaitingForModel.")
    message: str = Field(default="", description="A sentence a person can act on.")
    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation this condition was computed from."
    )
    last_transition_time: datetime | None = Field(
        default=None, description="When status last changed (not when reason or message did)."
    )


class LocalObjectReference(ApiModel):
    """A reference to another Drover object in the same namespace."""

    name: str = Field(min_length=1, max_length=253, description="Name of the object.")


class SecretKeyReference(ApiModel):
    """A key of a Secret in the same namespace; secrets are never written inline."""

    name: str = Field(min_length=1, max_length=253, description="Name of the Secret.")
    key: str = Field(min_length=1, description="Key within the Secret's data.")

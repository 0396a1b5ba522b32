"""API layer: the pieces the four Drover resources share.

Quantities, labels, accelerator requests, storage, dataset references, the status base with
conditions, and the base of every top-level kind. Source URIs are in `drover.api.uris`.
"""

from __future__ import annotations

import datetime
import re
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from drover.api.base import (
    API_VERSION,
    ApiModel,
    Condition,
    LocalObjectReference,
    Rule,
    SecretKeyReference,
)
from drover.api.uris import URI_FORMS, SourceUri

__all__ = [
    "API_VERSION",
    "NAME_RULE",
    "AcceleratorRequest",
    "AccessMode",
    "Condition",
    "DatasetFormat",
    "DatasetSource",
    "DnsLabel",
    "Lineage",
    "LocalObjectReference",
    "Quantity",
    "ResourceBase",
    "SecretKeyReference",
    "StatusBase",
    "StorageSpec",
    "VersionLabel",
    "format_timestamp",
    "quantity_bytes",
    "sub",
]


QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"
_QUANTITY_RE = re.compile(QUANTITY_PATTERN)
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_DNS_LABEL_RE = re.compile(DNS_LABEL_PATTERN)


def _check_quantity(value: str) -> str:
    if not _QUANTITY_RE.fullmatch(value):
        raise ValueError(
            f"invalid quantity {value!r}: write a size such as 512Mi, 20Gi or 1Ti "
            "(a number with an optional Ki/Mi/Gi/Ti/Pi/Ei or k/M/G/T/P/E suffix)"
        )
    return value


def _check_dns_label(value: str) -> str:
    if not _DNS_LABEL_RE.fullmatch(value):
        raise ValueError(
            f"invalid name {value!r}: use lower-case letters, digits and '-', "
            "starting and ending with a letter or digit (DNS-1123 label)"
        )
    return value


Quantity = Annotated[
    str, AfterValidator(_check_quantity), Field(json_schema_extra={"pattern": QUANTITY_PATTERN})
]
_QUANTITY_SUFFIX: dict[str, int] = {
    "": 1,
    **{s: 1000**i for i, s in enumerate(("k", "M", "G", "T", "P", "E"), start=1)},
    **{s: 1024**i for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"), start=1)},
}


def quantity_bytes(value: str) -> int:
    """The bytes a valid `Quantity` stands for (`64Mi` -> 67108864), rounded down."""
    _check_quantity(value)
    suffix = next((s for s in _QUANTITY_SUFFIX if s and value.endswith(s)), "")
    whole, _, fraction = value.removesuffix(suffix).partition(".")
    # Integer arithmetic: 1.5Gi is exactly 1610612736, not a float's approximation of it.
    decimals: int = 10 ** len(fraction)
    return int(whole + fraction) * _QUANTITY_SUFFIX[suffix] // decimals


VERSION_LABEL_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$"
_VERSION_LABEL_RE = re.compile(VERSION_LABEL_PATTERN)


def _check_version_label(value: str) -> str:
    if not _VERSION_LABEL_RE.fullmatch(value):
        raise ValueError(
            f"invalid version label {value!r}: use letters, digits, '.', '_' and '-', "
            "starting and ending with a letter or digit (e.g. v2 or 2024.06-rc1)"
        )
    return value


VersionLabel = Annotated[
    str,
    AfterValidator(_check_version_label),
    Field(min_length=1, max_length=63, json_schema_extra={"pattern": VERSION_LABEL_PATTERN}),
]
DnsLabel = Annotated[
    str,
    AfterValidator(_check_dns_label),
    Field(min_length=1, max_length=63, json_schema_extra={"pattern": DNS_LABEL_PATTERN}),
]


def sub(model: type[ApiModel], description: str) -> Any:
    """A nested block whose fields all have defaults; the CRD defaults it to `{}` (see crdgen)."""
    return Field(default_factory=model, description=description)


class AcceleratorRequest(ApiModel):
    """Accelerators per replica or worker, by class name from the operator's configuration."""

    accelerator_class: DnsLabel = Field(
        alias="class",
        description=(
            "Accelerator class, a name the operator configuration maps to a resource name "
            "(e.g. nvidia.com/gpu), node selector and tolerations, such as nvidia-l4 or cpu."
        ),
    )
    count: int = Field(
        default=1,
        ge=0,
        le=16,
        description="Accelerator devices per replica (ignored by classes without a resource name).",
    )


class AccessMode(StrEnum):
    """PersistentVolumeClaim access mode."""

    READ_WRITE_ONCE = "ReadWriteOnce"
    READ_WRITE_MANY = "ReadWriteMany"
    READ_ONLY_MANY = "ReadOnlyMany"
    READ_WRITE_ONCE_POD = "ReadWriteOncePod"


class StorageSpec(ApiModel):
    """A PersistentVolumeClaim Drover creates, or an existing claim it uses as is."""

    __rules__ = (
        Rule(
            cel="!has(self.existingClaim) || !has(self.storageClassName)",
            message=(
                "set existingClaim or storageClassName, not both: an existing claim already has "
                "its storage class; remove storageClassName"
            ),
            check=lambda s: s.existing_claim is None or s.storage_class_name is None,
            field_path=".storageClassName",
        ),
    )

    size: Quantity = Field(
        default="10Gi",
        description="Requested capacity (a Kubernetes quantity such as 20Gi); ignored for an "
        "existing claim.",
    )
    storage_class_name: str | None = Field(
        default=None,
        max_length=253,
        description="StorageClass of the claim Drover creates; the cluster default when unset.",
    )
    access_mode: AccessMode = Field(
        default=AccessMode.READ_WRITE_ONCE,
        description="Access mode of the claim Drover creates. ReadWriteOnce binds on every "
        "storage class but attaches to one node at a time: Drover refuses it where Ray pods "
        "that may run on different nodes would mount the claim (serving on several workers, a "
        "fine-tune with several workers) rather than leave them in ContainerCreating with a "
        "Multi-Attach error. ReadWriteMany lets pods on several nodes share one copy; it needs "
        "a storage class that offers it (NFS, CephFS, EFS, Filestore, Azure Files).",
    )
    existing_claim: DnsLabel | None = Field(
        default=None,
        description="Name of an existing PersistentVolumeClaim to use instead of creating one.",
    )


class DatasetFormat(StrEnum):
    """Layout of a JSON Lines dataset (or plain text files for `text`)."""

    CHAT = "chat"
    PROMPT_COMPLETION = "prompt-completion"
    TEXT = "text"
    FEEDBACK = "feedback"


class DatasetSource(ApiModel):
    """A dataset by URI: JSON Lines of chat messages or prompt/completion pairs, or raw text."""

    uri: SourceUri = Field(description=f"Where the dataset lives: {URI_FORMS}.")
    format: DatasetFormat = Field(
        default=DatasetFormat.CHAT,
        description="chat: {messages: [{role, content}]} per line; prompt-completion: {prompt, "
        "completion} per line; text: raw text used as is; feedback: the records an "
        "InferenceService's spec.feedback stores (a correction, or a good answer, becomes an "
        "example).",
    )
    credentials_secret_ref: SecretKeyReference | None = Field(
        default=None,
        description="Secret key with the token or credentials for hf:// or s3:// (never inline).",
    )


class Lineage(ApiModel):
    """Where a fine-tuned model came from: base model, data and the job that produced it."""

    base_model: str = Field(description="Name of the base FoundationModel.")
    base_model_digest: str | None = Field(
        default=None, description="Content digest of the base model's weights."
    )
    dataset: str = Field(description="URI of the training dataset.")
    dataset_digest: str | None = Field(
        default=None, description="Content digest of the training dataset."
    )
    fine_tune_job: str = Field(description="Name of the FineTuneJob that produced the model.")
    method: str = Field(description="Fine-tuning method used (lora, full, continued-pretraining).")


class StatusBase(ApiModel):
    """What every Drover status has: the generation it reflects and standard conditions."""

    # Condition types whose truth makes Ready true (the policy layer derives Ready from them).
    ready_sub_conditions: ClassVar[tuple[str, ...]] = ()

    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation this status was computed from."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        description="Standard conditions; Ready summarises the others (kstatus, Argo CD, Flux).",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )

    def condition(self, type_: str) -> Condition | None:
        """The condition of that type, if set."""
        return next((c for c in self.conditions if c.type == type_), None)


# Drover puts a resource's name in label values and child names (RayJob, PVC, Serve app), which
# Kubernetes limits to 63 characters; the CRD checks it at the root, the model here.
NAME_RULE = Rule(
    cel="!has(self.metadata.name) || size(self.metadata.name) <= 63",
    message="metadata.name must be at most 63 characters (Drover uses it in label values and "
    "child names): choose a shorter name",
    check=lambda r: len(r.name) <= 63,
    # No fieldPath: the CRD's metadata schema declares no fields for one to point at.
)


class ResourceBase(ApiModel):
    """Base of the four top-level kinds: apiVersion, kind and free-form metadata."""

    KIND: ClassVar[str] = ""

    api_version: str = Field(default=API_VERSION, description="Always drover.dev/v1alpha1.")
    kind: str = Field(description="The resource kind.")
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Standard Kubernetes object metadata."
    )

    @model_validator(mode="after")
    def _check_kind(self) -> ResourceBase:
        if self.api_version != API_VERSION:
            raise ValueError(f"apiVersion must be {API_VERSION}, not {self.api_version!r}")
        if self.KIND and self.kind != self.KIND:
            raise ValueError(f"kind must be {self.KIND}, not {self.kind!r}")
        if not NAME_RULE.check(self):
            raise PydanticCustomError(
                "drover_rule", NAME_RULE.message, {"field_path": ".metadata.name"}
            )
        return self

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def namespace(self) -> str | None:
        ns = self.metadata.get("namespace")
        return str(ns) if ns else None

    @property
    def generation(self) -> int | None:
        gen = self.metadata.get("generation")
        return int(gen) if gen is not None else None


def parse_timestamp(value: Any) -> datetime.datetime | None:
    """A Kubernetes RFC 3339 timestamp (`2026-11-22T08:00:00Z`) as an aware datetime; None when
    absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def format_timestamp(when: datetime.datetime) -> str:
    """`when` as Kubernetes writes a timestamp (RFC 3339 to the second, `Z`): the one format of
    every time Drover records in status."""
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")

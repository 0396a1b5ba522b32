"""API layer: Drover's resource models, their registry and manifest parsing.

The pydantic models are the single source of truth for the CRDs (`python -m drover.api.crdgen`).
"""

from drover.api.base import API_VERSION, GROUP, VERSION, Condition, ConditionStatus
from drover.api.finetunejob import FineTuneJob, FineTuneJobSpec, FineTuneJobStatus
from drover.api.foundationmodel import FoundationModel, FoundationModelSpec, FoundationModelStatus
from drover.api.inferenceservice import (
    InferenceService,
    InferenceServiceSpec,
    InferenceServiceStatus,
)
from drover.api.parsing import FieldError, InvalidResource, parse_resource
from drover.api.registry import KINDS, KindInfo, PrinterColumn, kind_info
from drover.api.vectorindex import VectorIndex, VectorIndexSpec, VectorIndexStatus

__all__ = [
    "API_VERSION",
    "GROUP",
    "KINDS",
    "VERSION",
    "Condition",
    "ConditionStatus",
    "FieldError",
    "FineTuneJob",
    "FineTuneJobSpec",
    "FineTuneJobStatus",
    "FoundationModel",
    "FoundationModelSpec",
    "FoundationModelStatus",
    "InferenceService",
    "InferenceServiceSpec",
    "InferenceServiceStatus",
    "InvalidResource",
    "KindInfo",
    "PrinterColumn",
    "VectorIndex",
    "VectorIndexSpec",
    "VectorIndexStatus",
    "kind_info",
    "parse_resource",
]

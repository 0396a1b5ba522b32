"""API layer: the registry of Drover's four kinds (names, models, printer columns).

The CRD generator, the operator's handlers and the tests all read the kinds from here, so a name
is written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drover.api.base import API_VERSION, GROUP, VERSION, ApiModel
from drover.api.common import ResourceBase
from drover.api.finetunejob import FineTuneJob, FineTuneJobSpec, FineTuneJobStatus
from drover.api.foundationmodel import FoundationModel, FoundationModelSpec, FoundationModelStatus
from drover.api.inferenceservice import (
    InferenceService,
    InferenceServiceSpec,
    InferenceServiceStatus,
)
from drover.api.vectorindex import VectorIndex, VectorIndexSpec, VectorIndexStatus

CATEGORY = "drover"
READY_PATH = '.status.conditions[?(@.type=="Ready")].status'


@dataclass(frozen=True)
class PrinterColumn:
    """One `additionalPrinterColumns` entry of a CRD."""

    name: str
    type: str  # string | integer | number | boolean | date
    json_path: str
    description: str
    priority: int = 0

    def to_crd(self) -> dict[str, Any]:
        column: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "jsonPath": self.json_path,
            "description": self.description,
        }
        if self.priority:
            column["priority"] = self.priority
        return column


def _ready() -> PrinterColumn:
    return PrinterColumn("Ready", "string", READY_PATH, "The Ready condition's status.")


def _age() -> PrinterColumn:
    return PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Time since creation.")


@dataclass(frozen=True)
class KindInfo:
    """Everything about one kind that is not in its pydantic models."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    model: type[ResourceBase]
    spec_model: type[ApiModel]
    status_model: type[ApiModel]
    printer_columns: tuple[PrinterColumn, ...]

    @property
    def group(self) -> str:
        return GROUP

    @property
    def version(self) -> str:
        return VERSION

    @property
    def api_version(self) -> str:
        return API_VERSION

    @property
    def crd_name(self) -> str:
        """The CustomResourceDefinition's metadata.name, e.g. foundationmodels.drover.dev."""
        return f"{self.plural}.{GROUP}"

    @property
    def file_name(self) -> str:
        """The generated file's name, e.g. drover.dev_foundationmodels.yaml."""
        return f"{GROUP}_{self.plural}.yaml"


KINDS: tuple[KindInfo, ...] = (
    KindInfo(
        kind="FoundationModel",
        plural="foundationmodels",
        singular="foundationmodel",
        short_names=("fmodel",),
        model=FoundationModel,
        spec_model=FoundationModelSpec,
        status_model=FoundationModelStatus,
        printer_columns=(
            PrinterColumn("Task", "string", ".spec.task", "text-generation or embedding."),
            PrinterColumn("Source", "string", ".spec.source.uri", "Where the weights come from."),
            PrinterColumn("Phase", "string", ".status.phase", "Summary phase."),
            PrinterColumn("Bytes", "integer", ".status.sizeBytes", "Bytes of cached weights."),
            PrinterColumn("Digest", "string", ".status.digest", "Content digest.", priority=1),
            _ready(),
            _age(),
        ),
    ),
    KindInfo(
        kind="FineTuneJob",
        plural="finetunejobs",
        singular="finetunejob",
        short_names=("ftjob",),
        model=FineTuneJob,
        spec_model=FineTuneJobSpec,
        status_model=FineTuneJobStatus,
        printer_columns=(
            PrinterColumn("Base", "string", ".spec.baseModel.name", "The base FoundationModel."),
            PrinterColumn(
                "Method", "string", ".spec.method", "lora, full or continued-pretraining."
            ),
            PrinterColumn(
                "Progress", "integer", ".status.progress.percent", "Training steps done, percent."
            ),
            PrinterColumn("Loss", "number", ".status.progress.loss", "Last training loss.", 1),
            PrinterColumn("Phase", "string", ".status.phase", "Summary phase."),
            PrinterColumn(
                "Output", "string", ".status.outputModel.name", "The FoundationModel produced.", 1
            ),
            _age(),
        ),
    ),
    KindInfo(
        kind="VectorIndex",
        plural="vectorindexes",
        singular="vectorindex",
        short_names=("vindex",),
        model=VectorIndex,
        spec_model=VectorIndexSpec,
        status_model=VectorIndexStatus,
        printer_columns=(
            PrinterColumn(
                "Embedder", "string", ".spec.embeddingModel.name", "The embedding model."
            ),
            PrinterColumn("Version", "integer", ".status.version", "Current index version."),
            PrinterColumn("Documents", "integer", ".status.documents", "Documents indexed.", 1),
            PrinterColumn("Chunks", "integer", ".status.chunks", "Chunks indexed."),
            PrinterColumn("Phase", "string", ".status.phase", "Summary phase.", 1),
            _ready(),
            _age(),
        ),
    ),
    KindInfo(
        kind="InferenceService",
        plural="inferenceservices",
        singular="inferenceservice",
        short_names=("infsvc",),
        model=InferenceService,
        spec_model=InferenceServiceSpec,
        status_model=InferenceServiceStatus,
        printer_columns=(
            PrinterColumn("Model", "string", ".spec.model.name", "The FoundationModel served."),
            PrinterColumn(
                "Stable", "integer", ".status.stable.weight", "Traffic percent to the stable."
            ),
            PrinterColumn(
                "Canary", "integer", ".status.canary.weight", "Traffic percent to the canary."
            ),
            PrinterColumn("Replicas", "integer", ".status.replicas.current", "Replicas running."),
            _ready(),
            PrinterColumn("Phase", "string", ".status.phase", "Summary phase.", 1),
            PrinterColumn("URL", "string", ".status.url", "Root of the OpenAI-compatible API.", 1),
            _age(),
        ),
    ),
)


def kind_info(name: str) -> KindInfo:
    """The kind by its kind, plural, singular or short name (case-insensitive)."""
    wanted = name.lower()
    for info in KINDS:
        if wanted in (info.kind.lower(), info.plural, info.singular, *info.short_names):
            return info
    known = ", ".join(info.kind for info in KINDS)
    raise KeyError(f"unknown Drover kind {name!r}: expected one of {known}")

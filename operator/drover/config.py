"""Operator configuration: the pydantic model of the Helm chart's ConfigMap.

`drover.config_loader.load_config` reads it from the mounted YAML and `DROVER_*` overrides.
"""

from __future__ import annotations

import re
from enum import StrEnum
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from drover.api.base import ApiModel
from drover.api.common import QUANTITY_PATTERN
from drover.api.inferenceservice import Quantization
from drover.images import ImageRef, ImagesConfig

# An extended resource name (`nvidia.com/gpu`, `amd.com/gpu`, `google.com/tpu`); empty means CPU.
RESOURCE_NAME_PATTERN = (
    r"^$|^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
# A DNS-1123 label: namespace names and accelerator class names.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A CPU quantity as Kubernetes writes it: "2", "1.5", "500m".
CPU_PATTERN = r"^([0-9]+(\.[0-9]+)?|[0-9]+m)$"
# The Serve route prefix: "/" or "/segment[/segment...]".
ROUTE_PREFIX_PATTERN = r"^/([A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*)?$"


class ConfigError(Exception):
    """The operator configuration is invalid; the message names the key and how to fix it."""


class TolerationOperator(StrEnum):
    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(StrEnum):
    NONE = ""
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Toleration(ApiModel):
    """A Kubernetes toleration (core/v1 Toleration) copied onto the pods of an accelerator class."""

    key: str = Field(default="", description="Taint key to tolerate; empty with Exists: all.")
    operator: TolerationOperator = Field(
        default=TolerationOperator.EQUAL, description="Exists or Equal (the default)."
    )
    value: str = Field(default="", description="Taint value to match when operator is Equal.")
    effect: TaintEffect = Field(
        default=TaintEffect.NONE,
        description="NoSchedule, PreferNoSchedule or NoExecute; empty matches every effect.",
    )
    toleration_seconds: int | None = Field(
        default=None, ge=0, description="With NoExecute: how long the pod stays bound after."
    )


class AcceleratorClass(ApiModel):
    """A node pool named once: what a resource's `accelerator.class` turns into on Ray pods."""

    resource_name: str = Field(
        default="nvidia.com/gpu",
        description=(
            "Extended resource requested per accelerator, e.g. nvidia.com/gpu or amd.com/gpu; "
            'empty ("") for a CPU-only class.'
        ),
    )
    memory_gib: float | None = Field(
        default=None,
        gt=0,
        alias="memoryGiB",
        description="Memory of one accelerator in GiB; used to refuse models that cannot fit.",
    )
    quantizations: list[Quantization] | None = Field(
        default=None,
        description=(
            "Quantized formats (InferenceService runtime.quantization) this class's devices run: "
            "awq, gptq, fp8. Unset: all three on a GPU class, awq and gptq on a CPU-only class "
            "(vLLM's CPU backend runs no fp8 weights)."
        ),
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node labels the Ray worker pods of this class require."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, description="Tolerations for the taints of this class's nodes."
    )
    cpu: str = Field(
        default="2",
        pattern=CPU_PATTERN,
        description="CPUs of each Ray worker pod on this class (request and limit), e.g. 8.",
    )
    memory: str = Field(
        default="8Gi",
        pattern=QUANTITY_PATTERN,
        description="Memory of each Ray worker pod on this class (request and limit), e.g. "
        "64Gi: loading weights needs host memory beside the GPUs'.",
    )
    image: ImageRef | None = Field(
        default=None,
        description="The Ray pods' image on this class (e.g. a ROCm build for AMD GPUs); unset: "
        "images.workers on a GPU class, images.workersCpu on a CPU class.",
    )

    @field_validator("resource_name")
    @classmethod
    def _resource_name(cls, value: str) -> str:
        if not re.match(RESOURCE_NAME_PATTERN, value):
            raise ValueError(
                'must be an extended resource name such as nvidia.com/gpu, or "" for a CPU class'
            )
        return value

    @property
    def is_cpu(self) -> bool:
        """True for a CPU-only class (no extended resource requested)."""
        return self.resource_name == ""


class PrometheusConfig(ApiModel):
    """Where the autoscaler and the canary analysis read metrics."""

    url: str = Field(
        default="http://prometheus-operated.monitoring:9090",
        description="Base URL of the Prometheus HTTP API (http or https, without /api/v1).",
    )
    timeout_seconds: float = Field(
        default=5.0, gt=0, le=120, description="Timeout of one Prometheus query in seconds."
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "must be an http(s) URL with a host, e.g. http://prometheus-operated.monitoring:9090"
            )
        return value.rstrip("/")


class TrackingConfig(ApiModel):
    """Experiment tracking: each FineTuneJob as an MLflow run, each model it produces as a
    registered model version."""

    mlflow_uri: str = Field(
        default="",
        description="MLflow tracking server (http or https); empty: no tracking.",
    )
    experiment: str = Field(
        default="drover", min_length=1, description="MLflow experiment of the fine-tune runs."
    )

    @field_validator("mlflow_uri")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if value and (parts.scheme not in ("http", "https") or not parts.hostname):
            raise ValueError("must be an http(s) URL with a host, e.g. http://mlflow.mlflow:5000")
        return value.rstrip("/")


class ServingConfig(ApiModel):
    """Defaults of every InferenceService's Ray Serve applications."""

    http_port: int = Field(
        default=8000, ge=1, le=65535, description="Port of Ray Serve's HTTP proxy (KubeRay: 8000)."
    )
    route_prefix: str = Field(
        default="/",
        description="Route prefix of the router; the OpenAI API answers under <prefix>v1/... .",
    )
    service_domain: str = Field(
        default="svc",
        min_length=1,
        description="Suffix of status.url hosts: <service>.<namespace>.<serviceDomain>.",
    )

    replica_cpus: float = Field(
        default=1.0,
        gt=0,
        le=256,
        description="CPUs each model replica reserves in Ray (its GPUs come from the class).",
    )
    url_template: str = Field(
        default="",
        description="Overrides status.url; placeholders {name}, {namespace}, {rayservice}. The "
        "local stack sets it to its loopback Serve proxy; empty on a cluster.",
    )

    def url_for(self, *, name: str, namespace: str, rayservice: str) -> str:
        """status.url: KubeRay's serve Service (`<rayservice>-serve-svc`), or the template."""
        template = self.url_template or (
            "http://{rayservice}-serve-svc.{namespace}."
            + self.service_domain
            + f":{self.http_port}"
            + self.route_prefix.rstrip("/")
        )
        return template.format(name=name, namespace=namespace, rayservice=rayservice).rstrip("/")

    @field_validator("route_prefix")
    @classmethod
    def _route_prefix(cls, value: str) -> str:
        if not re.match(ROUTE_PREFIX_PATTERN, value):
            raise ValueError('must start with "/" and contain path segments only, e.g. / or /llm')
        return value


class OperatorRuntime(ApiModel):
    """The operator process itself: ports and peering."""

    health_port: int = Field(
        default=8080, ge=1, le=65535, description="kopf liveness endpoint port (GET /healthz)."
    )
    metrics_port: int = Field(
        default=8081, ge=1, le=65535, description="Prometheus metrics port (GET /metrics)."
    )
    peering_name: str = Field(
        default="drover",
        description="kopf peering object name; replicas sharing it elect one active operator.",
    )

    peering_priority: int | None = Field(
        default=None,
        ge=0,
        le=2**31 - 1,
        description=(
            "kopf peering priority. None: each replica picks a random priority at start, "
            "because kopf freezes every peer when two share a priority."
        ),
    )

    read_secrets: bool = Field(
        default=False,
        description=(
            "The chart's rbac.readSecrets: the operator may `get` Secrets, so it checks that a "
            "referenced credentials Secret and key exist and reports a missing one as a "
            "condition before any pod starts. Off: it never reads Secrets; a missing one "
            "surfaces as the fetch job's failure."
        ),
    )

    @field_validator("peering_name")
    @classmethod
    def _peering_name(cls, value: str) -> str:
        if not re.match(DNS_LABEL_PATTERN, value) or len(value) > 63:
            raise ValueError("must be a DNS label: lower-case letters, digits and '-'")
        return value

    @property
    def liveness_endpoint(self) -> str:
        """The value for `kopf run --liveness` / `kopf.run(liveness_endpoint=...)`."""
        return f"http://0.0.0.0:{self.health_port}/healthz"


class ReconcileTiming(ApiModel):
    """How often the operator looks again; all in seconds."""

    dependency_retry_seconds: float = Field(
        default=15, gt=0, le=3600, description="Retry delay while a dependency is not ready."
    )
    progress_poll_seconds: float = Field(
        default=10,
        gt=0,
        le=30,
        description="Interval of polling RayJob / RayService progress; at most 30 s, so a job's "
        "result is read well within the 60 s KubeRay keeps its cluster.",
    )
    autoscale_interval_seconds: float = Field(
        default=15, gt=0, le=3600, description="Interval of the autoscaler timer per service."
    )


class OperatorConfig(ApiModel):
    """The whole operator configuration (chart values `config` + ports + watchNamespaces)."""

    watch_namespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces to watch; empty means every namespace (cluster-wide).",
    )
    operator: OperatorRuntime = Field(
        default_factory=OperatorRuntime, description="Ports and peering of the operator process."
    )
    accelerator_classes: dict[str, AcceleratorClass] = Field(
        default_factory=lambda: {"cpu": AcceleratorClass(resource_name="")},
        description="Accelerator classes by name; a resource's accelerator.class names one.",
    )
    prometheus: PrometheusConfig = Field(
        default_factory=PrometheusConfig, description="Prometheus for autoscaling and analysis."
    )
    images: ImagesConfig = Field(default_factory=ImagesConfig, description="Ray pod images.")
    serving: ServingConfig = Field(
        default_factory=ServingConfig, description="Serving defaults (Serve port, route prefix)."
    )
    reconcile: ReconcileTiming = Field(
        default_factory=ReconcileTiming, description="Retry and polling intervals."
    )
    tracking: TrackingConfig = Field(
        default_factory=TrackingConfig, description="MLflow tracking of fine-tunes."
    )

    @field_validator("watch_namespaces")
    @classmethod
    def _namespace_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.match(DNS_LABEL_PATTERN, name) or len(name) > 63:
                raise ValueError(f"{name!r} is not a namespace name (a DNS-1123 label)")
        if len(set(value)) != len(value):
            raise ValueError("lists a namespace twice")
        return value

    @field_validator("accelerator_classes")
    @classmethod
    def _class_names(cls, value: dict[str, AcceleratorClass]) -> dict[str, AcceleratorClass]:
        for name in value:
            if not re.match(DNS_LABEL_PATTERN, name) or len(name) > 63:
                raise ValueError(
                    f"class name {name!r} must be lower-case letters, digits and '-' (DNS label)"
                )
        return value

    @property
    def clusterwide(self) -> bool:
        """True when the operator watches every namespace (kopf --all-namespaces)."""
        return not self.watch_namespaces

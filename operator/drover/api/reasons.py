"""API layer: the reasons a Drover condition can carry, one enum per kind plus the shared ones.

A condition's `reason` is CamelCase and comes from here, so a reader (a person, an alert, a
GitOps health check) can rely on the set. Each kind's enum holds the reasons only that kind
writes; `DependencyReason`, `JobReason`, `SpecReason` and `SummaryReason` are written by every
kind with a dependency, a Ray job, a spec check or a summary. The README's "Condition reasons"
section lists them all (a unit test keeps the two in step).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "REASON_ENUMS",
    "DependencyReason",
    "DriftReason",
    "FineTuneJobReason",
    "FoundationModelReason",
    "InferenceServiceReason",
    "JobReason",
    "MetricsReason",
    "SpecReason",
    "SummaryReason",
    "VectorIndexReason",
]


class SummaryReason(StrEnum):
    """Ready, Progressing and Degraded (and kstatus' Reconciling, Stalled) on every kind; when a
    sub-condition blocks Ready they carry its reason instead."""

    ALL_CONDITIONS_READY = "AllConditionsReady"  # Ready: every declared condition is True
    RECONCILING = "Reconciling"  # a declared condition is not known yet
    NOT_READY = "NotReady"  # a blocking condition gave no reason of its own
    SETTLED = "Settled"  # Progressing=False: nothing left to wait for
    NO_FAILURES = "NoFailures"  # Degraded=False


class SpecReason(StrEnum):
    """A spec the schema accepted but that cannot work here; a person must change it."""

    INVALID_SPEC = "InvalidSpec"
    UNKNOWN_ACCELERATOR_CLASS = "UnknownAcceleratorClass"
    UNSUPPORTED_ACCELERATOR = "UnsupportedAccelerator"
    MODEL_TOO_LARGE = "ModelTooLarge"
    CLAIM_ACCESS_MODE = "ClaimAccessMode"
    CONTEXT_TOO_LONG = "ContextTooLong"
    INVALID_PARALLELISM = "InvalidParallelism"
    INVALID_RUNTIME = "InvalidRuntime"
    UNSUPPORTED_QUANTIZATION = "UnsupportedQuantization"


class DependencyReason(StrEnum):
    """A FoundationModel (or Secret) another resource depends on: BaseModelReady,
    EmbeddingModelReady, ModelReady; the Secret reasons on a FoundationModel's Fetched."""

    MODEL_READY = "ModelReady"
    MODEL_NOT_FOUND = "ModelNotFound"
    WAITING_FOR_MODEL = "WaitingForModel"
    DEPENDENCY_FAILED = "DependencyFailed"
    SECRET_NOT_FOUND = "SecretNotFound"
    SECRET_KEY_NOT_FOUND = "SecretKeyNotFound"


class JobReason(StrEnum):
    """The Ray job of a FoundationModel's fetch, a FineTuneJob or a VectorIndex build."""

    # The job succeeded but its result could not be read; deleting the RayJob reruns it.
    RESULT_UNAVAILABLE = "ResultUnavailable"


class FoundationModelReason(StrEnum):
    """CacheReady, Fetched and InUse of a FoundationModel."""

    CLAIM_BOUND = "ClaimBound"  # CacheReady
    FETCHING = "Fetching"  # Fetched=Unknown
    CACHED = "Cached"  # Fetched=True
    FETCH_FAILED = "FetchFailed"  # Fetched=False
    IN_USE = "InUse"  # InUse=True: deletion waits for its users


class FineTuneJobReason(StrEnum):
    """Trained and Evaluated of a FineTuneJob."""

    SUBMITTED = "Submitted"  # Trained=Unknown: the RayJob is not running yet
    TRAINING = "Training"  # Trained=Unknown
    FINISHING = "Finishing"  # Trained=Unknown: reading the result
    TRAINED = "Trained"  # Trained=True
    TRAINING_FAILED = "TrainingFailed"  # Trained=False
    PENDING = "Pending"  # Evaluated=Unknown
    EVALUATION_PASSED = "EvaluationPassed"  # Evaluated=True
    EVALUATION_BELOW_THRESHOLD = "EvaluationBelowThreshold"  # Evaluated=False


class VectorIndexReason(StrEnum):
    """Built of a VectorIndex."""

    BUILDING = "Building"  # a version is being built (True while an older one serves)
    BUILT = "Built"  # Built=True
    INDEX_BUILD_FAILED = "IndexBuildFailed"  # Built=False


class InferenceServiceReason(StrEnum):
    """ModelReady and ServingReady of an InferenceService (RolloutHealthy carries the rollout
    phase, `drover.api.rollout.RolloutPhase`; MetricsUnavailable a `MetricsReason`)."""

    MODEL_IS_ADAPTER = "ModelIsAdapter"  # ModelReady=False: serve it as spec.adapter
    INDEX_READY = "IndexReady"  # ModelReady=True: the VectorIndex it retrieves from is ready
    WAITING_FOR_INDEX = "WaitingForIndex"  # ModelReady=False
    INDEX_NOT_FOUND = "IndexNotFound"  # ModelReady=False
    DEPLOYING = "Deploying"  # ServingReady=Unknown
    SERVING = "Serving"  # ServingReady=True
    SERVING_FAILED = "ServingFailed"  # ServingReady=False
    RAY_CLUSTER_UPGRADE = "RayClusterUpgrade"  # ServingReady=True: KubeRay replaces the cluster


class MetricsReason(StrEnum):
    """MetricsUnavailable of an InferenceService: why the autoscaler or the rollout analysis has
    (or lacks) the metrics it reads from Prometheus."""

    PROMETHEUS_UNREACHABLE = "PrometheusUnreachable"  # no answer at the configured URL
    QUERY_FAILED = "PrometheusQueryFailed"  # an answer, but an error
    NO_SERIES = "NoSeries"  # an answer without a single series
    AVAILABLE = "MetricsAvailable"  # MetricsUnavailable=False


class DriftReason(StrEnum):
    """DriftDetected of an InferenceService with spec.drift: the population stability index of
    recent prompts against the stable version's reference window."""

    DRIFT_DETECTED = "DriftDetected"  # True: a signal's PSI is above the threshold
    NO_DRIFT = "NoDrift"  # False: every signal tested is within it
    COLLECTING_REFERENCE = "CollectingReference"  # Unknown: the reference has too few prompts
    NOT_ENOUGH_SAMPLES = "NotEnoughSamples"  # Unknown: the recent window has too few prompts
    DRIFT_METRICS_UNAVAILABLE = "DriftMetricsUnavailable"  # Unknown: Prometheus gave no answer


REASON_ENUMS: tuple[type[StrEnum], ...] = (
    SummaryReason,
    SpecReason,
    DependencyReason,
    JobReason,
    FoundationModelReason,
    FineTuneJobReason,
    VectorIndexReason,
    InferenceServiceReason,
    MetricsReason,
    DriftReason,
)

"""Operator configuration: the container images of the Ray pods the operator creates.

`ImagesConfig` is the chart's `config.images` (the GPU and CPU workers images and their pull
policy); `ImageRef` is one image, also an accelerator class's own `image`. Part of
`drover.config.OperatorConfig`; `drover.handlers.common.worker_image` picks a pod's image.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from drover import __version__
from drover.api.base import ApiModel

if TYPE_CHECKING:
    from drover.config import AcceleratorClass

__all__ = ["IMAGE_REGISTRY", "ImagePullPolicy", "ImageRef", "ImagesConfig"]

# Where release images are pushed (.github/workflows/release.yml) and `make images` tags them.
IMAGE_REGISTRY = "ghcr.io/drover-dev"
# An image repository (`[registry[:port]/]path`, lower case) and a digest (`sha256:<64 hex>`), as
# the OCI distribution spec and Kubernetes' image references allow.
IMAGE_REPOSITORY_PATTERN = r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$"
IMAGE_TAG_PATTERN = r"^$|^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
IMAGE_DIGEST_PATTERN = r"^$|^sha256:[a-f0-9]{64}$"


class ImageRef(ApiModel):
    """A container image by repository and tag or digest (the digest wins when both are set).

    A plain string (`repo:tag` or `repo@sha256:...`) is accepted too: the `DROVER_IMAGE_*`
    environment overrides and the local stack give one."""

    repository: str = Field(
        min_length=1,
        pattern=IMAGE_REPOSITORY_PATTERN,
        description="Image repository, e.g. ghcr.io/drover-dev/drover-workers.",
    )
    tag: str = Field(
        default="",
        pattern=IMAGE_TAG_PATTERN,
        description="Image tag; the chart fills in its appVersion when empty.",
    )
    digest: str = Field(
        default="",
        pattern=IMAGE_DIGEST_PATTERN,
        description="Image digest (sha256:<64 hex>); wins over the tag.",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_reference(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        name, _, digest = value.partition("@")
        repository, tag = name, ""
        if ":" in name.rsplit("/", 1)[-1]:
            repository, tag = name.rsplit(":", 1)
        return {"repository": repository, "tag": tag, "digest": digest}

    @model_validator(mode="after")
    def _tag_or_digest(self) -> ImageRef:
        if not self.tag and not self.digest:
            raise ValueError(
                f"image {self.repository} needs a tag or a digest, e.g. {self.repository}:"
                f"{__version__}"
            )
        return self

    @property
    def reference(self) -> str:
        """What a pod's `image` field says: `repo@sha256:...`, else `repo:tag`."""
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag}"


class ImagePullPolicy(StrEnum):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class ImagesConfig(ApiModel):
    """Container images of the Ray pods the operator creates (head, workers and submitter of a
    cluster run one image, as KubeRay requires one Ray and Python version per cluster)."""

    workers: ImageRef = Field(
        default_factory=lambda: ImageRef(
            repository=f"{IMAGE_REGISTRY}/drover-workers", tag=__version__
        ),
        description="Ray + vLLM (CUDA build) + drover_workers: the pods of GPU classes.",
    )
    workers_cpu: ImageRef = Field(
        default_factory=lambda: ImageRef(
            repository=f"{IMAGE_REGISTRY}/drover-workers", tag=f"{__version__}-cpu"
        ),
        description="Ray + vLLM (CPU build) + drover_workers: CPU classes, fetch and index jobs.",
    )
    pull_policy: ImagePullPolicy = Field(
        default=ImagePullPolicy.IF_NOT_PRESENT, description="imagePullPolicy of those pods."
    )

    def for_class(self, accelerator: AcceleratorClass | None) -> str:
        """The image of pods on `accelerator` (None: a CPU pod, such as a fetch or an index
        build): the class's own image, else the GPU or the CPU workers image."""
        if accelerator is not None and accelerator.image is not None:
            return accelerator.image.reference
        if accelerator is None or accelerator.is_cpu:
            return self.workers_cpu.reference
        return self.workers.reference

"""Builders layer: turn `accelerator: {class, count}` into a Ray worker placement.

Accelerator classes are named once in the operator configuration; asking for one that does not
exist, or for a model that cannot fit the class's memory, is a `SpecError` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping

from drover.api.common import AcceleratorRequest
from drover.api.reasons import SpecReason
from drover.builders.errors import SpecError
from drover.builders.raycluster import Placement
from drover.config import AcceleratorClass

# Headroom over the weights for activations and the KV cache.
_HEADROOM = 1.2


def resolve_placement(
    request: AcceleratorRequest | None,
    classes: Mapping[str, AcceleratorClass],
    *,
    field: str,
    parameter_count: int | None = None,
    bytes_per_parameter: float = 2.0,
) -> Placement:
    """The placement for `request` (CPU when None), or a SpecError naming `field`.

    `bytes_per_parameter` is what one weight takes: 2 at 16-bit precision (the default), less
    for a quantized checkpoint."""
    if request is None:
        return Placement(class_name="cpu")
    cls = classes.get(request.accelerator_class)
    if cls is None:
        known = ", ".join(sorted(classes)) or "none configured"
        raise SpecError(
            SpecReason.UNKNOWN_ACCELERATOR_CLASS,
            f"{field}.class",
            f"accelerator class {request.accelerator_class!r} is not in the operator "
            f"configuration (known: {known}); use one of those or add it to the chart's "
            "acceleratorClasses",
        )
    count = 0 if cls.is_cpu else request.count
    if parameter_count and cls.memory_gib and count:
        need_gib = parameter_count * bytes_per_parameter * _HEADROOM / 2**30
        have_gib = cls.memory_gib * count
        if need_gib > have_gib:
            raise SpecError(
                SpecReason.MODEL_TOO_LARGE,
                f"{field}.count",
                f"the model needs about {need_gib:.1f} GiB but {count} x "
                f"{request.accelerator_class} give {have_gib:.0f} GiB; raise the count or pick "
                "a class with more memory",
            )
    return Placement(
        class_name=request.accelerator_class,
        resource_name=cls.resource_name,
        count=count,
        node_selector=dict(cls.node_selector),
        tolerations=[t.to_wire() for t in cls.tolerations],
        cpu=cls.cpu,
        memory=cls.memory,
    )

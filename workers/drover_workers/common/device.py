"""Which torch device a worker computes on, and a loud failure when the GPUs it was given are
not usable (a CUDA-less image, a driver mismatch): a GPU pool must never train on its CPU."""

from __future__ import annotations

from typing import Any

from drover_workers.common.runner import WorkerError


def torch_device(gpus: int) -> str:
    """ "cuda" when the worker was given GPUs and torch sees them, "cpu" when it was given none.

    Ray hides the GPUs a process did not reserve (CUDA_VISIBLE_DEVICES), so "cuda" is always one
    of this process's own devices."""
    if gpus <= 0:
        return "cpu"
    import torch

    if not torch.cuda.is_available():
        raise WorkerError(
            "GPUUnavailable",
            f"gpusPerWorker: {gpus} GPU(s) reserved but torch {torch.__version__} sees none "
            "(a CPU-only torch in the workers image, or no NVIDIA driver on the node); use the "
            "CUDA workers image on GPU classes",
        )
    return "cuda"


def to_device(batch: dict[str, Any], device: Any) -> dict[str, Any]:
    """A collated batch moved to `device` (a no-op on the CPU)."""
    return {k: v.to(device) for k, v in batch.items()}


def model_device(model: Any) -> Any:
    """The device of a model's first parameter: where its inputs must go."""
    return next(model.parameters()).device

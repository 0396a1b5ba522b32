"""Worker common: facts read from a checkpoint's `config.json` (no model is loaded).

`context_length` is the context the model was built for, as vLLM derives its default
`max_model_len` (vllm/config/model.py, `_get_and_verify_max_len`): the first of the usual keys,
scaled by a rope-scaling factor of the kinds that stretch the context (linear, dynamic, yarn).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONTEXT_KEYS = (
    "max_position_embeddings",
    "n_positions",
    "max_seq_len",
    "seq_length",
    "max_sequence_length",
    "model_max_length",
)
STRETCHING_ROPE = ("linear", "dynamic", "yarn")


def _rope_factor(config: dict[str, Any]) -> float:
    rope = config.get("rope_scaling") or config.get("rope_parameters") or {}
    kind = rope.get("rope_type") or rope.get("type")
    factor = rope.get("factor")
    if kind in STRETCHING_ROPE and isinstance(factor, int | float) and factor > 1:
        return float(factor)
    return 1.0


def context_length(model_dir: str | Path) -> int | None:
    """Tokens of context of the checkpoint in `model_dir`; None when it says nothing (an adapter
    alone, an unusual config)."""
    path = Path(model_dir) / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for section in (config, config.get("text_config") or {}):
        for key in CONTEXT_KEYS:
            value = section.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return int(value * _rope_factor(section))
    return None

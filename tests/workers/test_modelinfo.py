"""A checkpoint's context length, read from its config.json as vLLM derives max_model_len."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drover_workers.common.modelinfo import context_length


@pytest.mark.parametrize(
    ("config", "expect"),
    [
        ({"max_position_embeddings": 32768}, 32768),  # Llama, Qwen2, Mistral
        ({"n_positions": 1024}, 1024),  # GPT-2
        ({"text_config": {"max_position_embeddings": 8192}}, 8192),  # multimodal wrappers
        (
            {
                "max_position_embeddings": 32768,
                "rope_scaling": {"rope_type": "yarn", "factor": 4.0},
            },
            131072,
        ),
        (  # llama3-style rope scaling does not stretch max_position_embeddings in vLLM
            {
                "max_position_embeddings": 131072,
                "rope_scaling": {"rope_type": "llama3", "factor": 8},
            },
            131072,
        ),
        ({"hidden_size": 64}, None),
    ],
)
def test_context_length_of_a_checkpoint(tmp_path: Path, config: dict, expect: int | None) -> None:
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert context_length(tmp_path) == expect


def test_a_directory_without_a_config_has_no_context_length(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text("{}")  # a LoRA adapter alone
    assert context_length(tmp_path) is None

"""Loading the model to train (base, optional adapter merged in, LoRA wrapped) and saving the
output in Hugging Face format: the adapter alone, or full (merged) weights."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from drover_workers.common.digest import read_manifest, write_manifest
from drover_workers.finetune.config import FinetuneConfig


def load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base(config: FinetuneConfig) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(config.base_model_path, dtype=torch.float32)
    if config.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, config.adapter).merge_and_unload()
    return model


def load_trainable(config: FinetuneConfig, device: str = "cpu") -> Any:
    import torch

    torch.manual_seed(config.hyperparameters.seed)
    model = load_base(config).to(device)
    if config.method == "lora":
        from peft import LoraConfig, get_peft_model

        lora = config.lora
        model = get_peft_model(
            model,
            LoraConfig(
                r=lora.rank,
                lora_alpha=lora.alpha,
                lora_dropout=lora.dropout,
                target_modules=lora.target_modules,
                task_type="CAUSAL_LM",
            ),
        )
    return model


def output_path(config: FinetuneConfig) -> Path:
    return Path(config.output_dir) / "model"


def is_adapter_output(config: FinetuneConfig) -> bool:
    return config.method == "lora" and not config.merge


def save_output(config: FinetuneConfig, model: Any, tokenizer: Any) -> Path:
    """Write the result under a temporary name, then rename it to `<outputDir>/model`."""
    final = output_path(config)
    tmp = final.with_name(".model.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if config.method == "lora" and config.merge:
        model = model.merge_and_unload()
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def write_output_manifest(config: FinetuneConfig, extra: dict[str, Any]) -> dict[str, Any]:
    base = read_manifest(config.base_model_path)
    return write_manifest(
        output_path(config),
        {
            "method": config.method,
            "adapter": is_adapter_output(config),
            "baseModelPath": config.base_model_path,
            "baseModelDigest": base["digest"] if base else None,
            **extra,
        },
    )


def load_trained(config: FinetuneConfig, device: str = "cpu") -> Any:
    """The saved output as a model ready to generate (base + adapter for an adapter output)."""
    import torch
    from transformers import AutoModelForCausalLM

    path = output_path(config)
    if is_adapter_output(config):
        from peft import PeftModel

        return PeftModel.from_pretrained(load_base(config).to(device), str(path))
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(device)

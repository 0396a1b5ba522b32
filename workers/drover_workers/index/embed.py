"""Embedding with a transformers encoder: mean pooling over the attention mask, L2-normalised.

The one sentence embedder of the workers: the index build embeds chunks with it, and the serving
router (retrieval queries) and an embedding service's replicas embed with it too, so an index
and its queries always share one computation. It runs on the GPU when the pod has one."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class Embedder:
    """Loads tokenizer + AutoModel once; `embed(texts)` returns float32 [n, dims] unit vectors."""

    def __init__(self, path: str | Path, batch_size: int = 32, max_length: int | None = None):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.path = str(path)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.model = AutoModel.from_pretrained(self.path).to(self.device)
        self.model.eval()
        self.batch_size = batch_size
        limit = getattr(self.model.config, "max_position_embeddings", 512)
        self.max_length = min(max_length or limit, limit, self.tokenizer.model_max_length)
        self._torch = torch

    @property
    def dimensions(self) -> int:
        return int(self.model.config.hidden_size)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.embed_counted(texts)[0]

    def embed_counted(self, texts: list[str]) -> tuple[np.ndarray, int]:
        """Unit vectors for `texts` (float32 [n, dims]) and the number of tokens read."""
        torch = self._torch
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        tokens = 0
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(
                    texts[start : start + self.batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[start : start + len(pooled)] = pooled.float().cpu().numpy()
                tokens += int(batch["attention_mask"].sum())
        return out, tokens


def embed_texts(path: str, texts: list[str], batch_size: int = 32) -> np.ndarray:
    """One-shot helper (what a Ray task runs): load the embedder and embed the texts."""
    return Embedder(path, batch_size).embed(texts)

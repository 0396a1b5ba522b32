"""Training and evaluation examples: chat (through the tokenizer's chat template when it has
one), prompt-completion (loss on the completion only), raw text (packed into blocks) and the
feedback the router stored (turned into chat and prompt-completion rows: finetune.feedback)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drover_workers.finetune.feedback import feedback_rows


class DataError(ValueError):
    """The data set cannot be read as the configured format; the message names file and line."""


@dataclass(frozen=True)
class Example:
    input_ids: list[int]
    labels: list[int]  # -100 where no loss is taken
    prompt: str | None = None  # for generation-based evaluation
    reference: str | None = None


def read_rows(path: Path, fmt: str) -> list[Any]:
    """jsonl rows for chat/prompt-completion; texts (files or jsonl "text") for text."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    rows: list[Any] = []
    for file in files:
        if file.suffix == ".jsonl":
            for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{file.name}:{n}: not valid JSON ({exc.msg})") from None
                rows.append(row["text"] if fmt == "text" and isinstance(row, dict) else row)
        elif fmt == "text" and file.suffix in (".txt", ".md"):
            rows.append(file.read_text(encoding="utf-8"))
    if not rows:
        raise DataError(f"{path}: no rows found for format {fmt}")
    return rows


def _chat_parts(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[str, str]:
    if not messages or messages[-1].get("role") != "assistant":
        raise DataError("a chat row must end with an assistant message")
    history, answer = messages[:-1], messages[-1]["content"]
    if getattr(tokenizer, "chat_template", None):
        prompt = tokenizer.apply_chat_template(history, tokenize=False, add_generation_prompt=True)
    else:
        prompt = "".join(f"{m['role']}: {m['content']}\n" for m in history) + "assistant: "
    return prompt, answer


def prompt_and_answer(tokenizer: Any, row: Any, fmt: str, n: int) -> tuple[str, str]:
    try:
        if fmt == "chat":
            return _chat_parts(tokenizer, row["messages"])
        return str(row["prompt"]), str(row["completion"])
    except (KeyError, TypeError):
        need = '"messages"' if fmt == "chat" else '"prompt" and "completion"'
        raise DataError(f"row {n}: format {fmt} needs {need}") from None


def supervised_examples(tokenizer: Any, rows: list[Any], fmt: str, max_len: int) -> list[Example]:
    eos = tokenizer.eos_token or ""
    out = []
    for n, row in enumerate(rows, start=1):
        prompt, answer = prompt_and_answer(tokenizer, row, fmt, n)
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        a_ids = tokenizer(answer + eos, add_special_tokens=False)["input_ids"]
        ids = (p_ids + a_ids)[:max_len]
        labels = ([-100] * len(p_ids) + a_ids)[:max_len]
        if any(label != -100 for label in labels):
            out.append(Example(ids, labels, prompt, answer))
    return out


def text_examples(tokenizer: Any, texts: list[str], max_len: int) -> list[Example]:
    """Concatenate the texts (eos between) and cut them into blocks of max_len tokens."""
    eos_id = tokenizer.eos_token_id
    stream: list[int] = []
    for text in texts:
        stream += tokenizer(text, add_special_tokens=False)["input_ids"]
        if eos_id is not None:
            stream.append(eos_id)
    blocks = [stream[i : i + max_len] for i in range(0, len(stream), max_len)]
    return [Example(b, list(b)) for b in blocks if len(b) > 1]


def build_examples(tokenizer: Any, rows: list[Any], fmt: str, max_len: int) -> list[Example]:
    if fmt == "text":
        return text_examples(tokenizer, [str(r) for r in rows], max_len)
    if fmt == "feedback":
        try:
            pairs = feedback_rows(rows)
        except ValueError as exc:
            raise DataError(str(exc)) from None
        return [
            example
            for row_fmt in ("chat", "prompt-completion")
            for example in supervised_examples(
                tokenizer, [row for f, row in pairs if f == row_fmt], row_fmt, max_len
            )
        ]
    return supervised_examples(tokenizer, rows, fmt, max_len)


def collate(examples: list[Example], pad_id: int) -> dict[str, Any]:
    import torch

    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        labels[i, :n] = torch.tensor(e.labels)
        mask[i, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}

"""Reading and chunking documents: a directory of .txt/.md (and .jsonl) files or one .jsonl of
{"id", "text", ...}; chunks are windows of `size` embedder tokens overlapping by `overlap`,
cut on token offsets so each chunk's text is an exact slice of its document."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst")


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)


def _read_jsonl(path: Path, source: str) -> Iterator[Document]:
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{source}:{n}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise ValueError(f'{source}:{n}: each line needs a "text" string')
        doc_id = str(row.get("id", f"{source}#{n}"))
        extra = {k: v for k, v in row.items() if k not in ("id", "text", "source")}
        yield Document(doc_id, row["text"], str(row.get("source", source)), extra)


def included(rel: str, patterns: list[str] | None) -> bool:
    """Glob match on the relative path; `**/` also matches at the top level."""
    if not patterns:
        return True
    return any(
        fnmatch.fnmatch(rel, p) or (p.startswith("**/") and fnmatch.fnmatch(rel, p[3:]))
        for p in patterns
    )


def read_documents(path: Path, include: list[str] | None = None) -> list[Document]:
    """Every document under path (matching `include` globs when given), in sorted order."""
    if path.is_file():
        if path.suffix == ".jsonl":
            return list(_read_jsonl(path, path.name))
        return [Document(path.name, path.read_text(encoding="utf-8"), path.name)]
    docs: list[Document] = []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if any(part.startswith(".") for part in file.relative_to(path).parts):
            continue
        if not included(rel, include):
            continue
        if file.suffix == ".jsonl":
            docs += _read_jsonl(file, rel)
        elif file.suffix.lower() in TEXT_SUFFIXES:
            docs.append(Document(rel, file.read_text(encoding="utf-8"), rel))
    return docs


@dataclass(frozen=True)
class Chunk:
    doc_id: str
    source: str
    text: str
    index: int  # position of the chunk within its document
    tokens: int


def chunk_document(doc: Document, tokenizer: Any, size: int, overlap: int) -> list[Chunk]:
    enc = tokenizer(doc.text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    if not offsets:
        return []
    chunks = []
    step = size - overlap
    start = 0
    while True:
        window = offsets[start : start + size]
        text = doc.text[window[0][0] : window[-1][1]].strip()
        if text:
            chunks.append(Chunk(doc.id, doc.source, text, len(chunks), len(window)))
        if start + size >= len(offsets):
            break
        start += step
    return chunks

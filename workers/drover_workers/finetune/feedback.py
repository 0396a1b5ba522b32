"""Training examples from the feedback the router stored (`dataset.format: feedback`).

The router appends one JSON line per feedback (drover_workers.serve.feedback) under
`<storage>/<UTC date>/<replica>.jsonl`, texts already redacted. A fine-tune first takes a
snapshot of the complete lines (`snapshot`: the router may be appending while it reads, and the
dataset digest must name what was trained on), then `feedback_rows` turns the records into
examples: for each answer the last feedback wins; one with a correction becomes (request,
correction), a good one (rating 1) without correction (request, response), a bad one without
correction is dropped. A chat answer gives a chat row (its messages plus the assistant's
answer), a completion a prompt-completion row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

RECORD_OBJECT = "drover.feedback"


def snapshot(source: Path, dest: Path) -> Path:
    """Copy the complete lines of every `.jsonl` file under `source` (a directory or one file),
    in path order, into `dest`; a last line without its newline (still being written) is left
    out. Returns `dest`."""
    files = (
        sorted(p for p in source.rglob("*.jsonl") if p.is_file()) if source.is_dir() else [source]
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as out:
        for file in files:
            data = file.read_bytes()
            out.write(data[: data.rfind(b"\n") + 1])
    return dest


def _answer(record: dict[str, Any]) -> str | None:
    correction = record.get("correction")
    if isinstance(correction, str) and correction.strip():
        return correction
    if record.get("rating") == 1:
        return str(record.get("response") or "")
    return None


def _row(record: dict[str, Any], answer: str, n: int) -> tuple[str, dict[str, Any]]:
    request = record.get("request")
    kind = record.get("kind")
    if kind == "chat" and isinstance(request, dict) and isinstance(request.get("messages"), list):
        messages = [*request["messages"], {"role": "assistant", "content": answer}]
        return "chat", {"messages": messages}
    if (
        kind == "completion"
        and isinstance(request, dict)
        and isinstance(request.get("prompt"), str)
    ):
        return "prompt-completion", {"prompt": request["prompt"], "completion": answer}
    raise ValueError(
        f"row {n}: a feedback record needs kind chat with request.messages or kind completion "
        "with request.prompt"
    )


def feedback_rows(records: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """(format, row) pairs, chat or prompt-completion, from feedback records (see the module)."""
    last: dict[str, tuple[int, dict[str, Any]]] = {}
    for n, record in enumerate(records, start=1):
        if not isinstance(record, dict) or record.get("object") != RECORD_OBJECT:
            raise ValueError(
                f"row {n}: not a feedback record (object {RECORD_OBJECT!r}); format feedback "
                "reads what the router stores under spec.feedback.storage"
            )
        rid = record.get("response_id")
        if not isinstance(rid, str) or not rid:
            raise ValueError(f"row {n}: a feedback record needs a response_id")
        last.pop(rid, None)  # the newest feedback on an answer counts, at its place in time
        last[rid] = (n, record)
    rows = []
    for n, record in last.values():
        answer = _answer(record)
        if answer is not None:
            rows.append(_row(record, answer, n))
    return rows

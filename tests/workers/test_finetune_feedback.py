"""A fine-tune on the feedback the router stored (`dataset.format: feedback`): the records are
written by the router's own code (serve.feedback: redaction, record, append-only log), read
through the worker's data loader with the real tokenizer, and trained on by the finetune worker
from a pvc:// URI, as a FineTuneJob reads an InferenceService's spec.feedback.storage."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from drover_workers.finetune.data import build_examples, read_rows
from drover_workers.finetune.feedback import snapshot
from drover_workers.finetune.model import load_tokenizer
from drover_workers.serve.feedback import Answer, FeedbackLog, build_record, parse_rating
from drover_workers.serve.redact import BUILTIN_REDACTORS, Redactor

WHEN = datetime(2026, 12, 7, 20, 0, tzinfo=UTC)


def _store(support_chat: Path, root: Path) -> list[str]:
    """Feedback on eight chat answers and one completion under `root`, as the router writes it;
    returns the answers the fine-tune must learn (corrections and good answers, last rating
    per answer wins; bad answers without a correction are dropped)."""
    rows = read_rows(support_chat / "train.jsonl", "chat")[:8]
    log, redactor = FeedbackLog(root, "replica-a"), Redactor(list(BUILTIN_REDACTORS))
    learn: list[str] = []

    def rate(rid: str, answer: Answer, rating: int, correction: str | None = None) -> None:
        body = {"response_id": rid, "rating": rating, "correction": correction}
        record = build_record(answer, parse_rating(body), redactor, {"name": "bot"}, WHEN)
        log.append(record, WHEN)

    for i, row in enumerate(rows):
        history, wanted = row["messages"][:-1], row["messages"][-1]["content"]
        good = Answer("chat", {"messages": history}, (wanted,), "bot", "v1")
        bad = Answer("chat", {"messages": history}, ("noise noise",), "bot", "v1")
        if i % 4 == 0:
            rate(f"r{i}", good, 1)
            learn.append(wanted)
        elif i % 4 == 1:
            rate(f"r{i}", bad, -1, wanted + " Write to help@shop.example.")
            learn.append(wanted + " Write to [EMAIL].")
        elif i % 4 == 2:
            rate(f"r{i}", bad, -1)
        else:  # first liked, then disliked: the last rating counts
            rate(f"r{i}", good, 1)
            rate(f"r{i}", good, -1)
    completion = Answer("completion", {"prompt": "Refunds take"}, (" 14 days.",), "bot", "v1")
    rate("r-completion", completion, 1)
    learn.append(" 14 days.")
    # The router is mid-way through appending a line: it is no part of the data yet.
    with open(root / "2026-12-07" / "replica-a.jsonl", "ab") as fh:
        fh.write(b'{"object":"drover.feedback","response_id":"r-half","rat')
    return learn


def test_feedback_records_become_examples(support_chat: Path, tiny_gpt2: Path, tmp_path) -> None:
    learn = _store(support_chat, tmp_path / "fb")
    data = snapshot(tmp_path / "fb", tmp_path / "snap.jsonl")
    rows = read_rows(data, "feedback")
    assert len(rows) == 11 and all(r["response_id"] != "r-half" for r in rows)
    examples = build_examples(load_tokenizer(str(tiny_gpt2)), rows, "feedback", 256)
    assert sorted(e.reference or "" for e in examples) == sorted(learn)
    (completion,) = [e for e in examples if e.reference == " 14 days."]
    assert completion.prompt == "Refunds take"  # a completion keeps its raw prompt
    chat = next(e for e in examples if e.reference == learn[0])
    assert chat.prompt is not None and chat.prompt != "Refunds take"
    assert "help@shop.example" not in data.read_text("utf-8")


def test_finetune_trains_on_stored_feedback_from_a_claim(
    support_chat: Path, tiny_gpt2: Path, tmp_path, run_inprocess
) -> None:
    _store(support_chat, tmp_path / "pvc" / "feedback" / "support-bot")
    config = {
        "baseModelPath": str(tiny_gpt2),
        "dataset": {"uri": "pvc://feedback/support-bot", "format": "feedback"},
        "method": "lora",
        "lora": {"rank": 8, "alpha": 16, "dropout": 0.0},
        "hyperparameters": {"maxSteps": 3, "learningRate": 3e-3, "batchSize": 2},
        "outputDir": str(tmp_path / "out"),
        "pvcRoot": str(tmp_path / "pvc"),
    }
    run = run_inprocess("finetune", config)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.result["steps"] == 3
    assert run.result["finalLoss"] < run.result["initialLoss"]
    # The digest names the snapshot trained on, not the files the router keeps appending to.
    snap = tmp_path / "out" / ".data" / "dataset.feedback.jsonl"
    assert run.result["datasetDigest"] == f"sha256:{hashlib.sha256(snap.read_bytes()).hexdigest()}"

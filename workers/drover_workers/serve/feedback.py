"""Serve layer: user feedback on the router's answers (`POST /v1/feedback`), stored for training.

When the service's feedback is on (`RouterArgs.feedback`, from `spec.feedback`), the router
remembers each answer it gives (the request as the client sent it, the answer's text, the version)
under the OpenAI `id` it returned, in a bounded in-memory store: the oldest are forgotten first,
beyond `remember` answers or MAX_REMEMBERED_CHARS characters. Feedback naming a remembered id
appends one JSON line (request, response, rating, correction, version, time) to
`<path>/<UTC date>/<replica>.jsonl`; every text in it has gone through the redactors first, so
nothing unredacted is written. A FineTuneJob reads the directory with `dataset.format: feedback`
(drover_workers.finetune.feedback).

Body: `{"response_id": "drover-...", "rating": 1 | -1, "correction": "..."?}`; rating 1 is a good
answer, -1 a bad one; a correction is the answer the user wanted.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from drover_workers.common.config import WorkerModel
from drover_workers.serve.protocol import ApiError, bad
from drover_workers.serve.redact import BUILTIN_REDACTORS, Redactor, compile_pattern

RECORD_OBJECT = "drover.feedback"
MAX_REMEMBERED_CHARS = 64 << 20  # the texts the store holds, all answers together
MAX_CORRECTION_CHARS = 65536
RATINGS = (-1, 1)
BuiltinRedactor = Literal["email", "iban", "card", "ipv4", "phone"]


class RedactPattern(WorkerModel):
    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
    pattern: str = Field(min_length=1, max_length=1024, description="A Python regex.")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        compile_pattern(value)
        return value


class FeedbackArgs(WorkerModel):
    """The router's feedback settings: where records go and what is redacted first."""

    path: str = Field(min_length=1, description="Directory the records are appended under.")
    builtin_redactors: list[BuiltinRedactor] = Field(
        default_factory=lambda: list(BUILTIN_REDACTORS)
    )
    redact: list[RedactPattern] = Field(default_factory=list)
    remember: int = Field(default=10000, ge=1, le=1_000_000, description="Answers remembered.")

    def redactor(self) -> Redactor:
        return Redactor(self.builtin_redactors, [(p.name, p.pattern) for p in self.redact])


@dataclass(frozen=True)
class Answer:
    """What the router answered: the request as the client sent it (`messages` or `prompt`),
    the text of each choice, and who answered."""

    kind: str  # "chat" or "completion"
    request: dict[str, Any]
    texts: tuple[str, ...]
    model: str
    version: str
    sources: tuple[str, ...] = ()

    @cached_property
    def size(self) -> int:
        return len(json.dumps(self.request)) + sum(len(t) for t in self.texts)


class AnswerStore:
    """The last answers by response id, bounded by count and by characters (oldest out)."""

    def __init__(self, limit: int, max_chars: int = MAX_REMEMBERED_CHARS) -> None:
        self.limit, self.max_chars, self.chars = limit, max_chars, 0
        self._answers: OrderedDict[str, Answer] = OrderedDict()

    def __len__(self) -> int:
        return len(self._answers)

    def add(self, rid: str, answer: Answer) -> None:
        size = answer.size
        if size > self.max_chars:
            return  # larger than the whole store: never remembered
        self._answers[rid] = answer
        self.chars += size
        while len(self._answers) > self.limit or self.chars > self.max_chars:
            _, old = self._answers.popitem(last=False)
            self.chars -= old.size

    def get(self, rid: str) -> Answer | None:
        return self._answers.get(rid)


@dataclass(frozen=True)
class Rating:
    response_id: str
    rating: int
    correction: str | None


def parse_rating(body: dict[str, Any]) -> Rating:
    """The feedback body, or a 400 naming the field."""
    rid = body.get("response_id")
    if not isinstance(rid, str) or not rid.strip() or len(rid) > 256:
        raise bad("'response_id' is required: the 'id' of the answer being rated", "response_id")
    rating = body.get("rating")
    if isinstance(rating, bool) or rating not in RATINGS:
        raise bad(f"'rating' must be 1 (a good answer) or -1 (a bad one), got {rating!r}", "rating")
    correction = body.get("correction")
    if correction is not None and (not isinstance(correction, str) or not correction.strip()):
        raise bad("'correction' must be a non-empty string (the answer wanted)", "correction")
    if correction is not None and len(correction) > MAX_CORRECTION_CHARS:
        raise bad(f"'correction' is longer than {MAX_CORRECTION_CHARS} characters", "correction")
    unknown = sorted(set(body) - {"response_id", "rating", "correction"})
    if unknown:
        raise bad(f"unknown field(s) {unknown}: send response_id, rating, correction", unknown[0])
    return Rating(rid, int(rating), correction)


def build_record(
    answer: Answer, rating: Rating, redactor: Redactor, service: dict[str, str], when: datetime
) -> dict[str, Any]:
    """One stored line; every text in it redacted."""
    return {
        "object": RECORD_OBJECT,
        "response_id": rating.response_id,
        "time": when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "service": service,
        "model": answer.model,
        "version": answer.version,
        "kind": answer.kind,
        "request": redactor.value(answer.request),
        "response": redactor.text(answer.texts[0] if answer.texts else ""),
        "rating": rating.rating,
        "correction": redactor.text(rating.correction) if rating.correction else None,
        "sources": list(answer.sources),
    }


class FeedbackLog:
    """Appends records to `<root>/<UTC date>/<tag>.jsonl`, one write per line (O_APPEND), synced."""

    def __init__(self, root: Path, tag: str) -> None:
        self.root, self.tag = root, tag
        self._lock = threading.Lock()

    def append(self, record: dict[str, Any], when: datetime) -> Path:
        day = self.root / when.astimezone(UTC).strftime("%Y-%m-%d")
        path = day / f"{self.tag}.jsonl"
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        with self._lock:
            day.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        return path


def request_of(kind: str, parsed: dict[str, Any]) -> dict[str, Any]:
    """The client's request (before retrieval added context): messages or prompt."""
    if kind == "chat":
        return {"messages": [dict(m) for m in parsed["messages"]]}
    return {"prompt": parsed["prompt"]}


class Feedback:
    """The router's feedback desk; `args` None means the service's feedback is off."""

    def __init__(self, args: FeedbackArgs | None, service: dict[str, str], tag: str) -> None:
        self.args, self.service = args, service
        self.store = AnswerStore(args.remember) if args else None
        self.redactor = args.redactor() if args else None
        self.log = FeedbackLog(Path(args.path), tag) if args else None

    @property
    def on(self) -> bool:
        return self.args is not None

    def remember(
        self, rid: str, kind: str, request: dict[str, Any], texts: list[str], **who: Any
    ) -> None:
        """Keep an answer for later feedback (nothing when feedback is off or for embeddings)."""
        if self.store is not None and kind in ("chat", "completion"):
            self.store.add(rid, Answer(kind, request, tuple(texts), **who))

    def tap(
        self, rid: str, kind: str, request: dict[str, Any], pieces: AsyncIterator[Any], **who: Any
    ) -> AsyncIterator[Any]:
        """`pieces` of a streamed answer, passed on; the answer is remembered once the stream
        has ended (not when it failed or the client went away)."""
        if self.store is None:
            return pieces
        return self._collect(pieces, lambda t: self.remember(rid, kind, request, t, **who))

    @staticmethod
    async def _collect(
        pieces: AsyncIterator[Any], done: Callable[[list[str]], None]
    ) -> AsyncIterator[Any]:
        texts: dict[int, str] = {}
        async for piece in pieces:
            for choice in piece.get("choices") or ():
                index = int(choice.get("index", 0))
                texts[index] = texts.get(index, "") + str(choice.get("text") or "")
            yield piece
        done([texts[i] for i in sorted(texts)])

    def _store(self, answer: Answer, rating: Rating) -> None:
        assert self.log is not None and self.redactor is not None
        when = datetime.now(UTC)
        self.log.append(build_record(answer, rating, self.redactor, self.service, when), when)

    async def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        """Store the feedback in `body`; 404 when feedback is off or the id is not remembered."""
        if self.store is None or self.log is None or self.redactor is None:
            raise ApiError(
                404,
                f"feedback is off for service {self.service['name']}: set spec.feedback.enabled: "
                "true (and spec.feedback.storage) on the InferenceService",
                code="feedback_disabled",
            )
        rating = parse_rating(body)
        answer = self.store.get(rating.response_id)
        if answer is None:
            raise ApiError(
                404,
                f"No answer with id '{rating.response_id}' is remembered: feedback names the 'id' "
                f"of a chat or completion answer of this service, among its last "
                f"{self.store.limit} (a router restart forgets them)",
                param="response_id",
                code="response_not_found",
            )
        await asyncio.to_thread(self._store, answer, rating)  # redaction and I/O off the loop
        return {"object": "feedback", "response_id": rating.response_id, "stored": True}

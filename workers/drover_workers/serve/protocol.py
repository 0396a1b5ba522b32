"""Serve layer: the OpenAI wire format, pure. Request validation, response bodies, error bodies.

`parse_*` turn a JSON body into the engine's request dict or raise `ApiError` (status, OpenAI-shaped
body); `*_response` / `*_chunk` build what the official `openai` client expects.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

ROLES = ("system", "user", "assistant", "tool", "developer")


class ApiError(Exception):
    """An HTTP error with an OpenAI-shaped body: {"error": {message, type, param, code}}."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
        self.headers = {"Retry-After": str(retry_after)} if retry_after else {}


def bad(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code="invalid_value" if param else None)


def load_json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise bad("the request body must be a JSON object")
    return body


def _number(body: dict[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise bad(f"'{key}' must be a number between {lo} and {hi}, got {value!r}", key)
    return float(value)


def _sampling(body: dict[str, Any], max_tokens_cap: int) -> dict[str, Any]:
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens", 16))
    if max_tokens is None:
        max_tokens = 16
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise bad(f"'max_tokens' must be a positive integer, got {max_tokens!r}", "max_tokens")
    if max_tokens > max_tokens_cap:
        raise bad(
            f"'max_tokens' is {max_tokens}; this service allows at most {max_tokens_cap}",
            "max_tokens",
        )
    stop = body.get("stop")
    if stop is None:
        stop = []
    elif isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop) or len(stop) > 4:
        raise bad("'stop' must be a string or a list of at most 4 strings", "stop")
    n = body.get("n", 1)
    if n not in (1, None):
        raise bad("'n' must be 1: this service returns one choice per request", "n")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise bad("'seed' must be an integer", "seed")
    return {
        "max_tokens": max_tokens,
        "temperature": _number(body, "temperature", 1.0, 0.0, 2.0),
        "top_p": _number(body, "top_p", 1.0, 0.0, 1.0),
        "stop": stop,
        "seed": seed,
    }


def _stream_flag(body: dict[str, Any]) -> bool:
    stream = body.get("stream", False)
    if stream is None:
        return False
    if not isinstance(stream, bool):
        raise bad("'stream' must be true or false", "stream")
    return stream


def parse_completion(body: dict[str, Any], max_tokens_cap: int) -> tuple[dict[str, Any], bool]:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise bad("'prompt' is required and must be a string (or a list of one string)", "prompt")
    return {"prompt": prompt, **_sampling(body, max_tokens_cap)}, _stream_flag(body)


def _content(message: dict[str, Any], i: int) -> str:
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}]
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if len(texts) == len(content) and all(isinstance(t, str) for t in texts):
            return "".join(texts)
    raise bad(f"messages[{i}].content must be a string or a list of text parts", "messages")


def parse_chat(body: dict[str, Any], max_tokens_cap: int) -> tuple[dict[str, Any], bool]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("'messages' is required and must be a non-empty list", "messages")
    clean = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or msg.get("role") not in ROLES:
            raise bad(f"messages[{i}].role must be one of {list(ROLES)}", "messages")
        clean.append({"role": msg["role"], "content": _content(msg, i)})
    return {"messages": clean, **_sampling(body, max_tokens_cap)}, _stream_flag(body)


def parse_embedding(body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise bad("'input' must be a string or a non-empty list of strings", "input")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise bad("'encoding_format' must be 'float' or 'base64'", "encoding_format")
    return {"input": texts, "encoding_format": encoding}, False


def embedding_data(vectors: list[list[float]], encoding: str) -> list[dict[str, Any]]:
    """OpenAI's `data` list; base64 is little-endian float32, as the official client decodes."""
    out = []
    for i, vec in enumerate(vectors):
        value: Any = vec
        if encoding == "base64":
            value = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
        out.append({"object": "embedding", "index": i, "embedding": value})
    return out


def usage_of(usage: dict[str, Any]) -> dict[str, int]:
    prompt, completion = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def completion_response(rid: str, model: str, now: int, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "text_completion",
        "created": now,
        "model": model,
        "choices": [
            {
                "index": 0,
                "text": result["text"],
                "logprobs": None,
                "finish_reason": result["finish_reason"],
            }
        ],
        "usage": usage_of(result["usage"]),
    }


def chat_response(rid: str, model: str, now: int, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "chat.completion",
        "created": now,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result["text"]},
                "logprobs": None,
                "finish_reason": result["finish_reason"],
            }
        ],
        "usage": usage_of(result["usage"]),
    }


def stream_chunk(
    rid: str, model: str, now: int, chat: bool, piece: dict[str, Any], first: bool = False
) -> dict[str, Any]:
    """One SSE chunk: a text delta, or the final one with finish_reason and usage."""
    finish = piece.get("finish_reason")
    text = piece.get("text", "")
    if chat:
        delta: dict[str, Any] = {"content": text} if text else {}
        if first:
            delta["role"] = "assistant"
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
        obj = "chat.completion.chunk"
    else:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        obj = "text_completion"
    chunk: dict[str, Any] = {
        "id": rid,
        "object": obj,
        "created": now,
        "model": model,
        "choices": [choice],
    }
    if finish and "usage" in piece:
        chunk["usage"] = usage_of(piece["usage"])
    return chunk


def sse(data: dict[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {payload}\n\n".encode()

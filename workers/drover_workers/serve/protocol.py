"""Serve layer: the OpenAI wire format, pure. Request validation, response bodies, error bodies.

`parse_*` turn a JSON body into the engine's request dict or raise `ApiError` (status, OpenAI-shaped
body); `*_response` / `*_chunk` build what the official `openai` client expects.
"""

from __future__ import annotations

import base64
import json
import struct
import uuid
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


# 2 MiB of JSON is more text than any model's context holds (128k tokens are ~0.5 MB); a larger
# body is refused before it is parsed or sent on to a version (Ray's RPC to the replica fails on
# a 10 MB prompt with an internal error, not a client one).
MAX_BODY_BYTES = 2 << 20


def load_json(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(
            413,
            f"the request body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES} (2 MiB), more "
            "than any model's context: shorten the prompt",
            code="request_too_large",
        )
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


MAX_N = 8
MAX_LOGPROBS = 20


def _int(body: dict[str, Any], key: str, lo: int, hi: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise bad(f"'{key}' must be an integer between {lo} and {hi}, got {value!r}", key)
    return value


def _response_format(body: dict[str, Any]) -> dict[str, Any] | None:
    """`{"type": "text" | "json_object" | "json_schema", "json_schema": {"schema": ...}}` as
    OpenAI defines it; vLLM's structured outputs then constrain the answer."""
    fmt = body.get("response_format")
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"json_object": True}
    if kind == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            return {"json": schema}
        raise bad(
            "'response_format.json_schema.schema' must be a JSON schema object", "response_format"
        )
    raise bad(
        "'response_format.type' must be 'text', 'json_object' or 'json_schema'", "response_format"
    )


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
    stop_ids = body.get("stop_token_ids") or []
    if not isinstance(stop_ids, list) or not all(
        isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in stop_ids
    ):
        raise bad("'stop_token_ids' must be a list of token ids (integers >= 0)", "stop_token_ids")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise bad("'seed' must be an integer", "seed")
    return {
        "max_tokens": max_tokens,
        "temperature": _number(body, "temperature", 1.0, 0.0, 2.0),
        "top_p": _number(body, "top_p", 1.0, 0.0, 1.0),
        "stop": stop,
        "stop_token_ids": stop_ids,
        "seed": seed,
        "n": _int(body, "n", 1, MAX_N) or 1,
        "response_format": _response_format(body),
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
    logprobs = _int(body, "logprobs", 0, MAX_LOGPROBS)  # completions: top-k alternatives
    return {
        "prompt": prompt,
        **_sampling(body, max_tokens_cap),
        "logprobs": logprobs,
    }, _stream_flag(body)


def _content(message: dict[str, Any], i: int) -> str:
    content = message.get("content")
    if content is None:
        # As OpenAI's API: only an assistant turn may come without content (e.g. tool calls).
        if message.get("role") == "assistant":
            return ""
        raise bad(f"messages[{i}].content is required for a {message['role']} message", "messages")
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
    logprobs = body.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        raise bad("'logprobs' must be true or false", "logprobs")
    top = _int(body, "top_logprobs", 0, MAX_LOGPROBS)
    if top is not None and not logprobs:
        raise bad("'top_logprobs' needs 'logprobs': true", "top_logprobs")
    return {
        "messages": clean,
        **_sampling(body, max_tokens_cap),
        "logprobs": (top or 0) if logprobs else None,
    }, _stream_flag(body)


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


def parse_request(
    kind: str, body: dict[str, Any], task: str, service: str, max_tokens_cap: int
) -> tuple[dict[str, Any], bool]:
    """The engine request of a `kind` ("completion", "chat", "embedding") body and whether it
    streams; a 400 when the endpoint does not fit the service's task."""
    embedding_service = task == "embedding"
    if (kind == "embedding") != embedding_service:
        what = "an embedding model" if embedding_service else "a text-generation model"
        use = "/v1/embeddings" if embedding_service else "/v1/completions or /v1/chat/completions"
        raise bad(f"service {service} serves {what}; use {use}")
    if kind == "completion":
        return parse_completion(body, max_tokens_cap)
    if kind == "chat":
        return parse_chat(body, max_tokens_cap)
    return parse_embedding(body)


def response_id() -> str:
    """A new answer's OpenAI `id`."""
    return f"drover-{uuid.uuid4().hex[:24]}"


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


def completion_logprobs(lp: dict[str, Any] | None) -> dict[str, Any] | None:
    """OpenAI's completions `logprobs`: tokens, their logprobs, the top alternatives, offsets."""
    if lp is None:
        return None
    offsets, at = [], 0
    for token in lp["tokens"]:
        offsets.append(at)
        at += len(token)
    return {
        "tokens": lp["tokens"],
        "token_logprobs": lp["logprobs"],
        "top_logprobs": [dict(top) for top in lp["top"]],
        "text_offset": offsets,
    }


def chat_logprobs(lp: dict[str, Any] | None) -> dict[str, Any] | None:
    """OpenAI's chat `logprobs`: one entry per token with its bytes and top alternatives."""
    if lp is None:
        return None

    def entry(token: str, logprob: float) -> dict[str, Any]:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode())}

    return {
        "content": [
            {**entry(t, p), "top_logprobs": [entry(a, q) for a, q in top]}
            for t, p, top in zip(lp["tokens"], lp["logprobs"], lp["top"], strict=True)
        ]
    }


def completion_response(rid: str, model: str, now: int, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "text_completion",
        "created": now,
        "model": model,
        "choices": [
            {
                "index": c["index"],
                "text": c["text"],
                "logprobs": completion_logprobs(c.get("logprobs")),
                "finish_reason": c["finish_reason"],
            }
            for c in result["choices"]
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
                "index": c["index"],
                "message": {"role": "assistant", "content": c["text"]},
                "logprobs": chat_logprobs(c.get("logprobs")),
                "finish_reason": c["finish_reason"],
            }
            for c in result["choices"]
        ],
        "usage": usage_of(result["usage"]),
    }


def stream_chunk(
    rid: str, model: str, now: int, chat: bool, piece: dict[str, Any], first: bool = False
) -> dict[str, Any]:
    """One SSE chunk: a choice's text delta, or the end (finish_reason per choice, and usage)."""
    choices: list[dict[str, Any]] = []
    for c in piece.get("choices") or [{"index": 0, "text": ""}]:
        finish, text = c.get("finish_reason"), c.get("text", "")
        if chat:
            delta: dict[str, Any] = {"content": text} if text else {}
            if first:
                delta["role"] = "assistant"
            choice: dict[str, Any] = {"index": c["index"], "delta": delta, "finish_reason": finish}
            choice["logprobs"] = chat_logprobs(c.get("logprobs"))
        else:
            choice = {
                "index": c["index"],
                "text": text,
                "logprobs": completion_logprobs(c.get("logprobs")),
                "finish_reason": finish,
            }
        choices.append(choice)
    chunk: dict[str, Any] = {
        "id": rid,
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": now,
        "model": model,
        "choices": choices,
    }
    if "usage" in piece:
        chunk["usage"] = usage_of(piece["usage"])
    return chunk


def sse(data: dict[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {payload}\n\n".encode()

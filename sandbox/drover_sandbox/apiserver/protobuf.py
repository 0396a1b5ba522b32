"""Local control plane, protobuf bodies: enough of Kubernetes' protobuf encoding to accept what
imperative kubectl commands send (`kubectl create namespace|configmap|secret|serviceaccount`).

Other kinds stay JSON-only and are answered 415, as the server advertises.
"""

from __future__ import annotations

import base64
from typing import Any

MAGIC = b"k8s\x00"


class Unsupported(ValueError):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise Unsupported("truncated protobuf varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs: ints for varints, bytes for length-delimited."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            out.append((number, value))
        elif wire == 2:
            size, pos = _varint(buf, pos)
            out.append((number, buf[pos : pos + size]))
            pos += size
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise Unsupported(f"unsupported protobuf wire type {wire}")
    return out


def _text(value: int | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _map(entries: list[bytes], as_bytes: bool = False) -> dict[str, str]:
    out = {}
    for entry in entries:
        kv = dict(fields(entry))
        key = _text(kv.get(1, b""))
        raw = kv.get(2, b"")
        raw = raw if isinstance(raw, bytes) else str(raw).encode()
        out[key] = base64.b64encode(raw).decode() if as_bytes else raw.decode()
    return out


def _group(buf: bytes) -> dict[int, list[int | bytes]]:
    grouped: dict[int, list[int | bytes]] = {}
    for number, value in fields(buf):
        grouped.setdefault(number, []).append(value)
    return grouped


def _bytes_list(values: list[int | bytes]) -> list[bytes]:
    return [v for v in values if isinstance(v, bytes)]


def object_meta(buf: bytes) -> dict[str, Any]:
    f = _group(buf)
    meta: dict[str, Any] = {}
    for number, key in ((1, "name"), (2, "generateName"), (3, "namespace")):
        if f.get(number):
            meta[key] = _text(f[number][-1])
    if f.get(11):
        meta["labels"] = _map(_bytes_list(f[11]))
    if f.get(12):
        meta["annotations"] = _map(_bytes_list(f[12]))
    if f.get(14):
        meta["finalizers"] = [_text(v) for v in f[14]]
    return meta


def _decode_kind(kind: str, raw: bytes) -> dict[str, Any]:
    f = _group(raw)
    obj: dict[str, Any] = {
        "metadata": object_meta(_bytes_list(f.get(1, []))[-1] if f.get(1) else b"")
    }
    if kind == "Namespace":
        return obj
    if kind == "ServiceAccount":
        return obj
    if kind == "ConfigMap":
        if f.get(2):
            obj["data"] = _map(_bytes_list(f[2]))
        if f.get(3):
            obj["binaryData"] = _map(_bytes_list(f[3]), as_bytes=True)
        if f.get(4):
            obj["immutable"] = bool(f[4][-1])
        return obj
    if kind == "Secret":
        if f.get(2):
            obj["data"] = _map(_bytes_list(f[2]), as_bytes=True)
        if f.get(3):
            obj["type"] = _text(f[3][-1])
        if f.get(4):
            obj["stringData"] = _map(_bytes_list(f[4]))
        if f.get(5):
            obj["immutable"] = bool(f[5][-1])
        return obj
    raise Unsupported(f"protobuf bodies of kind {kind!r} are not supported; send JSON")


def decode(body: bytes) -> dict[str, Any]:
    """Decode a `k8s\\0`-prefixed protobuf object into its JSON form."""
    if not body.startswith(MAGIC):
        raise Unsupported("protobuf body without the k8s magic prefix")
    envelope = _group(body[len(MAGIC) :])
    type_meta = dict(fields(_bytes_list(envelope.get(1, [b""]))[-1]))
    api_version, kind = _text(type_meta.get(1, b"")), _text(type_meta.get(2, b""))
    raw = _bytes_list(envelope.get(2, [b""]))[-1]
    obj = _decode_kind(kind, raw)
    return {"apiVersion": api_version, "kind": kind, **obj}

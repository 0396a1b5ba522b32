"""API layer: source URIs (`hf://`, `s3://`, `pvc://`, `file://`) and paths relative to them.

`SourceUri` and `RelativePath` are the spec field types (their RE2 patterns go into the CRDs, the
Python checks give the message that says how to write one); `parse_source_uri` splits a valid
URI for the builders. No `.` or `..` segment is ever accepted: a source may not climb out of the
claim, bucket or repository it names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, Field

__all__ = [
    "RELATIVE_PATH_PATTERN",
    "URI_FORMS",
    "URI_PATTERN",
    "ParsedUri",
    "RelativePath",
    "SourceUri",
    "parse_source_uri",
]


def _segment(chars: str) -> str:
    """One path segment of `chars`, but never `.` or `..`.

    A `..` segment would climb out of the claim, bucket prefix or repository the URI names (a
    worker joins the path to its mount point); RE2 has no look-ahead, so the three alternatives
    spell "not `.` and not `..`" out: no leading dot, one dot then a non-dot, or two dots then more.
    """
    first = chars.replace("]", ".]", 1)  # the class without "."
    return rf"({first}{chars}*|\.{first}{chars}*|\.\.{chars}+)"


def _segments(chars: str, least: str = "*") -> str:
    """`/segment` repeated (`least`: `*` or `+`), then an optional `/`."""
    return rf"(/{_segment(chars)}){least}/?"


# One alternative per scheme; kept RE2-compatible (the API server evaluates it in Go).
_HF = (
    r"hf://(datasets/)?[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*"
    r"(@[A-Za-z0-9][A-Za-z0-9._-]*)?" + _segments(r"[^\s/@]")
)
_S3 = r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]" + _segments(r"[^\s/]")
_PVC = r"pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?" + _segments(r"[^\s/]")
_FILE = r"file:///|file://" + _segments(r"[^\s/]", "+")
URI_PATTERN = f"^({_HF}|{_S3}|{_PVC}|{_FILE})$"
URI_FORMS = (
    "hf://org/name@revision (hf://datasets/org/name@revision/path for a dataset file), "
    "s3://bucket/prefix, pvc://claim/path or file:///absolute/path"
)
_URI_RE = re.compile(URI_PATTERN)
# A path (or glob) relative to a source URI: segments as in a URI's path, never starting with "/".
_PATH_CHARS = r"[^\s/]"
RELATIVE_PATH_PATTERN = "^" + _segment(_PATH_CHARS) + _segments(_PATH_CHARS) + "$"
_RELATIVE_PATH_RE = re.compile(RELATIVE_PATH_PATTERN)


def _check_uri(value: str) -> str:
    if _URI_RE.fullmatch(value):
        return value
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme not in ("hf", "s3", "pvc", "file"):
        raise ValueError(
            f"unsupported source URI {value!r}: use {URI_FORMS}"
            + (f" (scheme {scheme!r} is not one of hf, s3, pvc, file)" if scheme else "")
        )
    dots = sorted({s for s in value.split("://", 1)[1].split("/") if s in (".", "..")})
    if dots:
        raise ValueError(
            f"URI {value!r} has a {' and a '.join(repr(d) for d in dots)} path segment: a "
            "source may not climb out of the claim, bucket or repository it names; write the "
            "path from its root without '.' or '..'"
        )
    hints = {
        "hf": "hf://org/name@revision, optionally with datasets/ before org and /path after",
        "s3": "s3://bucket/prefix with a lower-case bucket name of 3-63 characters",
        "pvc": "pvc://claim/path with a lower-case DNS-1123 claim name",
        "file": "file:///absolute/path (three slashes) with no spaces",
    }
    raise ValueError(f"malformed {scheme}:// URI {value!r}: write it as {hints[scheme]}")


def _check_relative_path(value: str) -> str:
    if _RELATIVE_PATH_RE.fullmatch(value):
        return value
    if value.startswith("/"):
        raise ValueError(f"path {value!r} is absolute: write it relative to the source URI")
    if any(s in (".", "..") for s in value.split("/")):
        raise ValueError(
            f"path {value!r} has a '.' or '..' path segment: it may not climb out of the source "
            "URI; write it relative to the URI without '.' or '..'"
        )
    raise ValueError(
        f"invalid path {value!r}: write non-empty segments with no spaces, separated by one '/'"
    )


SourceUri = Annotated[
    str,
    AfterValidator(_check_uri),
    Field(min_length=1, max_length=2048, json_schema_extra={"pattern": URI_PATTERN}),
]
RelativePath = Annotated[
    str,
    AfterValidator(_check_relative_path),
    Field(min_length=1, max_length=1024, json_schema_extra={"pattern": RELATIVE_PATH_PATTERN}),
]


@dataclass(frozen=True)
class ParsedUri:
    """A source URI split into parts.

    `authority` is the hf repo id (org/name), the s3 bucket or the claim name; `path` is the part
    after it (no leading slash; absolute for file://). hf URIs follow huggingface_hub's HfFileSystem
    form `hf://[datasets/]org/name[@revision][/path]`.
    """

    scheme: str
    authority: str
    path: str
    revision: str | None = None
    repo_type: str | None = None


def parse_source_uri(uri: str) -> ParsedUri:
    """Split a valid source URI; an hf URI gets revision `main` when none is given."""
    _check_uri(uri)
    scheme, rest = uri.split("://", 1)
    if scheme == "hf":
        repo_type = "model"
        if rest.startswith("datasets/"):
            repo_type, rest = "dataset", rest.removeprefix("datasets/")
        org, _, name_rest = rest.partition("/")
        name_rev, _, path = name_rest.partition("/")
        name, _, revision = name_rev.partition("@")
        return ParsedUri("hf", f"{org}/{name}", path, revision or "main", repo_type)
    if scheme == "file":
        return ParsedUri("file", "", rest)
    authority, _, path = rest.partition("/")
    return ParsedUri(scheme, authority, path)

"""Serve layer: the optional API-key check of the router (`Authorization: Bearer <key>`).

Keys come from a file (a mounted Secret: one key a line, re-read when it changes) or an
environment variable (comma- or newline-separated). Keys are never logged.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
from pathlib import Path

from drover_workers.serve.config import AuthSpec
from drover_workers.serve.protocol import ApiError


def _split(text: str) -> list[bytes]:
    """The keys as SHA-256 digests: compared at one length, the time says nothing of the key."""
    return [hashlib.sha256(k.encode()).digest() for k in re.split(r"[\s,]+", text) if k]


class KeyCheck:
    """Accepts every request when auth is off; otherwise a Bearer key from the configured set."""

    def __init__(self, spec: AuthSpec | None) -> None:
        self.spec = spec
        self._mtime = -1.0
        self._keys: list[bytes] = []
        if spec is not None and spec.api_keys_env is not None:
            value = os.environ.get(spec.api_keys_env, "")
            if not value:
                raise ValueError(
                    f"auth.apiKeysEnv: environment variable {spec.api_keys_env} is empty or unset; "
                    "set it (e.g. from a Secret) or remove auth"
                )
            self._keys = _split(value)
        self._load_file()

    def _load_file(self) -> None:
        if self.spec is None or self.spec.api_keys_file is None:
            return
        path = Path(self.spec.api_keys_file)
        try:
            mtime = path.stat().st_mtime
        except OSError as exc:
            raise ValueError(f"auth.apiKeysFile: cannot read {path}: {exc.strerror}") from None
        if mtime != self._mtime:
            self._keys = _split(path.read_text(encoding="utf-8"))
            self._mtime = mtime

    def check(self, authorization: str | None) -> None:
        if self.spec is None:
            return
        with contextlib.suppress(ValueError):  # keep the last keys while a Secret rotates
            self._load_file()
        scheme, _, key = (authorization or "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise ApiError(
                401,
                "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.",
                code="invalid_api_key",
            )
        digest = hashlib.sha256(key.encode()).digest()
        # Every key is compared (no early exit), each in constant time.
        if not sum(hmac.compare_digest(digest, k) for k in self._keys):
            raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")

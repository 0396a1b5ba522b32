"""Secret material for sources: a token read from a mounted file or an env var, never logged."""

from __future__ import annotations

import os
from pathlib import Path

from drover_workers.common.config import WorkerModel


class Credentials(WorkerModel):
    """Where the source token lives: `tokenFile` (a mounted Secret key) or `env` (a var name)."""

    token_file: str | None = None
    env: str | None = None


class Secret(str):
    """A string whose repr never shows the value (so a stray log line leaks nothing)."""

    def __repr__(self) -> str:
        return "Secret(***)"


def read_token(creds: Credentials | None) -> Secret | None:
    if creds is None:
        return None
    if creds.token_file:
        path = Path(creds.token_file)
        if not path.is_file():
            raise FileNotFoundError(
                f"credentials.tokenFile {path} does not exist; mount the Secret"
            )
        value = path.read_text(encoding="utf-8").strip()
        return Secret(value) if value else None
    if creds.env:
        value = os.environ.get(creds.env, "").strip()
        if not value:
            raise KeyError(f"credentials.env: environment variable {creds.env} is not set")
        return Secret(value)
    return None

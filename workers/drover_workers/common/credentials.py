"""Secret material for sources: a token read from a mounted file or an env var, never logged."""

from __future__ import annotations

import os
from pathlib import Path

from drover_workers.common.config import WorkerModel

# Where the operator mounts each referenced Secret (drover.builders.raycluster.SECRET_MOUNT_ROOT):
# <root>/<secret>/<key>; the volume is optional, so a missing Secret or key is a missing file.
SECRET_MOUNT_ROOT = Path("/var/run/drover/secrets")


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
            raise FileNotFoundError(_missing(path))
        value = path.read_text(encoding="utf-8").strip()
        return Secret(value) if value else None
    if creds.env:
        value = os.environ.get(creds.env, "").strip()
        if not value:
            raise KeyError(f"credentials.env: environment variable {creds.env} is not set")
        return Secret(value)
    return None


def _missing(path: Path) -> str:
    if path.parent.parent == SECRET_MOUNT_ROOT:
        secret, key = path.parent.name, path.name
        return (
            f"Secret {secret} (key {key}) is not there: {path} does not exist; create the "
            f"Secret with that key in the resource's namespace, or fix credentialsSecretRef"
        )
    return f"credentials.tokenFile {path} does not exist; mount the Secret"

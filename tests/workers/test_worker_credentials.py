"""A credentials Secret the pod could not mount (the volume is optional) fails the worker with a
message naming the Secret and key, which the operator reports as the fetch's failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from drover_workers.common import credentials
from drover_workers.common.credentials import Credentials, read_token


def test_missing_mounted_secret_names_the_secret_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(credentials, "SECRET_MOUNT_ROOT", tmp_path)
    creds = Credentials(token_file=str(tmp_path / "hf-token" / "token"))
    with pytest.raises(FileNotFoundError) as caught:
        read_token(creds)
    assert "Secret hf-token (key token) is not there" in str(caught.value)
    assert "credentialsSecretRef" in str(caught.value)


def test_mounted_secret_is_read_and_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(credentials, "SECRET_MOUNT_ROOT", tmp_path)
    (tmp_path / "hf-token").mkdir()
    (tmp_path / "hf-token" / "token").write_text("sentinel-value\n")
    token = read_token(Credentials(token_file=str(tmp_path / "hf-token" / "token")))
    assert token == "sentinel-value"
    assert "sentinel" not in repr(token)

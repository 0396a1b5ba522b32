"""The router's API-key check: every key compared, each in constant time, at one length."""

from __future__ import annotations

import hmac

import pytest

from drover_workers.serve import auth
from drover_workers.serve.auth import KeyCheck
from drover_workers.serve.config import AuthSpec
from drover_workers.serve.protocol import ApiError


@pytest.fixture
def check(monkeypatch: pytest.MonkeyPatch) -> KeyCheck:
    monkeypatch.setenv("DROVER_TEST_KEYS", "sk-first,sk-second-longer\nsk-third")
    return KeyCheck(AuthSpec(api_keys_env="DROVER_TEST_KEYS"))


@pytest.mark.parametrize("key", ["sk-first", "sk-second-longer", "sk-third"])
def test_each_configured_key_is_accepted(check: KeyCheck, key: str) -> None:
    check.check(f"Bearer {key}")


@pytest.mark.parametrize("header", ["Bearer sk-firs", "Bearer sk-first-and-more", "Bearer x"])
def test_near_misses_of_any_length_are_refused_alike(check: KeyCheck, header: str) -> None:
    with pytest.raises(ApiError) as refused:
        check.check(header)
    assert refused.value.status == 401
    assert refused.value.body["error"]["message"] == "Incorrect API key provided."


def test_every_key_is_compared_at_one_length_even_after_a_match(
    check: KeyCheck, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[int, int]] = []
    original = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append((len(a), len(b)))
        return original(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    check.check("Bearer sk-first")  # the first key matches; the other two are compared anyway
    assert compared == [(32, 32)] * 3

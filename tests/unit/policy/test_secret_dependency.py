"""A missing credentials Secret (or key) is a False condition naming it and the fix."""

from __future__ import annotations

from drover.policy.dependencies import decide_secret_ready

FIELD = "spec.source.credentialsSecretRef"


def test_missing_secret_names_it_its_namespace_and_the_command_to_create_it() -> None:
    cond = decide_secret_ready("Fetched", FIELD, "team-a", "hf-token", "token", "no-secret")
    assert cond is not None
    assert (cond.type, cond.status, cond.reason) == ("Fetched", False, "SecretNotFound")
    assert "Secret hf-token does not exist" in cond.message
    assert "kubectl -n team-a create secret generic hf-token --from-literal=token=" in cond.message
    assert FIELD in cond.message


def test_missing_key_names_the_key() -> None:
    cond = decide_secret_ready("Fetched", FIELD, "team-a", "hf-token", "token", "no-key")
    assert cond is not None and cond.reason == "SecretKeyNotFound"
    assert "has no key token" in cond.message


def test_present_or_unknown_secret_reports_nothing() -> None:
    for state in ("present", "unknown"):
        assert decide_secret_ready("Fetched", FIELD, "ns", "s", "k", state) is None

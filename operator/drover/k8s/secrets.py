"""I/O layer: does a referenced Secret key exist? Only with the chart's rbac.readSecrets on.

The answer is one of `SecretState`; the Secret's values are never returned, logged or kept.
"""

from __future__ import annotations

from enum import StrEnum

from kubernetes import client
from kubernetes.client.exceptions import ApiException


class SecretState(StrEnum):
    PRESENT = "present"
    NO_SECRET = "no-secret"
    NO_KEY = "no-key"
    UNKNOWN = "unknown"  # forbidden or the API failed: say nothing rather than guess


def secret_key_state(namespace: str, name: str, key: str) -> SecretState:
    try:
        secret = client.CoreV1Api().read_namespaced_secret(name, namespace)
    except ApiException as exc:
        return SecretState.NO_SECRET if exc.status == 404 else SecretState.UNKNOWN
    keys = set(secret.data or {}) | set(secret.string_data or {})
    return SecretState.PRESENT if key in keys else SecretState.NO_KEY

"""Manifests the API accepts but that cannot work (tests/invalid/accepted/: dangling references,
unknown accelerator classes): each gets a False condition naming the cause, the operator logs no
traceback, and nothing retries in a storm.

Each file says `# expect-condition: <type> <status> <reason>` and `# expect-message: <text>`.
"""

from __future__ import annotations

import time
from pathlib import Path

import yaml
from kubernetes import client
from tests.integration.conftest import ROOT, wait_for
from tests.integration.support import create, manifest, ready_model, status_of

from drover.api.registry import kind_info

ACCEPTED = sorted((ROOT / "tests/invalid/accepted").glob("*.yaml"))


def _expectations(path: Path) -> tuple[tuple[str, str, str], str]:
    head = {}
    for line in path.read_text().splitlines():
        if line.startswith("# expect-"):
            key, _, value = line.removeprefix("# expect-").partition(":")
            head[key.strip()] = value.strip()
    cond_type, status, reason = head["condition"].split()
    return (cond_type, status, reason), head["message"]


def _condition(k8s_api, doc: dict, namespace: str, cond_type: str) -> dict:
    plural = kind_info(doc["kind"]).plural
    status = status_of(k8s_api, plural, namespace, doc["metadata"]["name"])
    return next((c for c in status.get("conditions") or [] if c["type"] == cond_type), {})


def test_accepted_but_unworkable_resources_get_a_false_condition_naming_the_cause(
    k8s_api, namespace, start_operator, dashboard
) -> None:
    operator = start_operator()
    # A Ready model, so a file can show a problem other than a missing model.
    create(k8s_api, manifest("00-base-model.yaml", namespace))
    ready_model(k8s_api, namespace, "tiny-llama", dashboard)
    docs = []
    for path in ACCEPTED:
        (doc,) = [d for d in yaml.safe_load_all(path.read_text()) if d]
        doc["metadata"]["namespace"] = namespace
        create(k8s_api, doc)
        docs.append((path, doc))
    wrong: dict[str, object] = {}
    for path, doc in docs:
        (cond_type, status, reason), message = _expectations(path)
        try:
            cond = wait_for(
                f"{path.name}: {cond_type}={status} {reason}",
                lambda d=doc, t=cond_type, r=reason: (
                    (c := _condition(k8s_api, d, namespace, t)).get("reason") == r and c
                ),
                timeout=15,
            )
        except AssertionError:
            plural = kind_info(doc["kind"]).plural
            name = doc["metadata"]["name"]
            wrong[path.name] = status_of(k8s_api, plural, namespace, name).get("conditions")
            continue
        if cond["status"] != status or message not in cond["message"]:
            wrong[path.name] = cond
    assert not wrong, "\n".join(f"{k}: {v}" for k, v in wrong.items())
    # No retry storm: a few poll rounds later, the log has grown by polls, not by tracebacks.
    time.sleep(3)
    log = operator.log()
    assert "Traceback" not in log
    events = client.CoreV1Api(k8s_api).list_namespaced_event(namespace).items
    assert max((e.count or 1) for e in events) <= 5, "an event repeats in a retry storm"

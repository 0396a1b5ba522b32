"""`kubectl drover status` text from plain objects: the tree follows owner references by uid."""

from __future__ import annotations

from typing import Any

from drover.plugin.tree import owned_by, render_status


def obj(kind: str, name: str, uid: str, owner: str | None = None, **status: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ml", "uid": uid, "generation": 1}
    if owner:
        meta["ownerReferences"] = [{"uid": owner, "kind": "X", "name": "x", "apiVersion": "v1"}]
    return {"kind": kind, "metadata": meta, "status": status}


def cond(type_: str, status: str, reason: str, message: str = "") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


SERVICE = obj(
    "InferenceService",
    "support-bot",
    "u-svc",
    phase="RollingOut",
    observedGeneration=1,
    conditions=[
        cond("ModelReady", "True", "ModelReady", "tiny-llama is sha256:0a1b"),
        cond("Reconciling", "False", "Settled"),
        cond("Ready", "True", "AllConditionsReady", "All of ModelReady, ServingReady."),
        cond("ServingReady", "True", "Serving", "Serve applications run"),
    ],
)
RAYSERVICE = obj(
    "RayService",
    "support-bot-rs",
    "u-rs",
    owner="u-svc",
    serviceStatus="Running",
    conditions=[cond("UpgradeInProgress", "False", "NoUpgrade")],
)
CLUSTER = obj("RayCluster", "support-bot-rs-abc", "u-rc", owner="u-rs", state="ready")
CLAIM = obj("PersistentVolumeClaim", "index", "u-pvc", owner="u-svc", phase="Bound")
STRANGER = obj("RayJob", "someone-else", "u-other", owner="u-nobody", jobStatus="RUNNING")


def test_children_are_found_by_owner_uid_only() -> None:
    found = owned_by(SERVICE, [RAYSERVICE, CLUSTER, CLAIM, STRANGER])
    assert [o["metadata"]["name"] for o in found] == ["index", "support-bot-rs"]


def test_status_prints_summary_conditions_first_and_the_tree() -> None:
    text = render_status(SERVICE, [STRANGER, CLUSTER, RAYSERVICE, CLAIM])
    lines = text.splitlines()
    assert lines[0] == "InferenceService/support-bot in ml: RollingOut Ready=True"
    assert lines[1].split()[:3] == ["Ready", "True", "AllConditionsReady"]
    assert [line.split()[0] for line in lines[1:4]] == ["Ready", "ModelReady", "ServingReady"]
    assert "Reconciling" not in text  # kstatus' mirror of Progressing adds nothing here
    assert "├─ PersistentVolumeClaim/index: Bound" in lines
    assert "└─ RayService/support-bot-rs: Running" in lines
    # Conditions of a child that are not True are shown under it; its own children nest deeper.
    upgrade = lines.index("└─ RayService/support-bot-rs: Running") + 1
    assert lines[upgrade].split()[:3] == ["UpgradeInProgress", "False", "NoUpgrade"]
    assert "   └─ RayCluster/support-bot-rs-abc: ready" in lines
    assert "someone-else" not in text


def test_a_status_of_an_older_generation_says_so() -> None:
    stale = {**SERVICE, "metadata": {**SERVICE["metadata"], "generation": 3}}
    assert "(status is of generation 1; the spec is at 3)" in render_status(stale, [])


def test_a_training_fine_tune_shows_a_progress_bar() -> None:
    job = obj(
        "FineTuneJob",
        "support-lora",
        "u-ft",
        phase="Running",
        progress={"step": 40, "totalSteps": 100, "percent": 40, "loss": 0.59412},
    )
    assert render_status(job, []).splitlines()[1] == (
        "  training [##########--------------]  40%  step 40/100  loss 0.5941"
    )


def test_a_fetch_shows_its_bytes_as_a_progress_bar() -> None:
    fetching = obj(
        "FoundationModel",
        "tiny-llama",
        "u-fm",
        phase="Fetching",
        conditions=[cond("Fetched", "Unknown", "Fetching", "RayJob x is running: 1.0/4.0 MB")],
    )
    assert render_status(fetching, []).splitlines()[1] == (
        "  fetching [######------------------]  25%  1.0/4.0 MB"
    )


def test_no_progress_bar_once_finished() -> None:
    done = obj("FineTuneJob", "x", "u", phase="Succeeded", progress={"step": 5, "totalSteps": 5})
    assert "training" not in render_status(done, [])

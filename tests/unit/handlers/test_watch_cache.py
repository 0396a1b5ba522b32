"""The watch cache a dependency is read from (k8s/cache.py)."""

from __future__ import annotations

from drover.k8s.cache import WatchCache


def model(phase: str) -> dict:
    return {"metadata": {"name": "tiny", "namespace": "ml"}, "status": {"phase": phase}}


def test_the_last_event_wins_and_a_deletion_forgets() -> None:
    cache = WatchCache()
    assert cache.get("FoundationModel", "ml", "tiny") is None  # never seen: the caller GETs
    cache.seen("FoundationModel", model("Pending"), None)
    cache.seen("FoundationModel", model("Ready"), "MODIFIED")
    assert cache.get("FoundationModel", "ml", "tiny")["status"]["phase"] == "Ready"
    assert cache.get("VectorIndex", "ml", "tiny") is None  # kinds apart
    cache.seen("FoundationModel", model("Ready"), "DELETED")
    assert cache.get("FoundationModel", "ml", "tiny") is None and len(cache) == 0


def test_readers_get_copies() -> None:
    cache = WatchCache()
    body = model("Ready")
    cache.seen("FoundationModel", body, "ADDED")
    body["status"]["phase"] = "Failed"  # kopf's body changes later: the cache keeps what it saw
    read = cache.get("FoundationModel", "ml", "tiny")
    read["status"]["phase"] = "Pending"
    assert cache.get("FoundationModel", "ml", "tiny")["status"]["phase"] == "Ready"


def test_kopf_bookkeeping_is_not_kept() -> None:
    cache = WatchCache()
    body = model("Ready")
    body["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    body["metadata"]["annotations"] = {
        "drover.dev/last-handled-configuration": '{"spec": "a copy of the whole spec"}',
        "drover.dev/adapter-of": "tiny",
    }
    cache.seen("FoundationModel", body, "ADDED")
    meta = cache.get("FoundationModel", "ml", "tiny")["metadata"]
    assert "managedFields" not in meta
    assert meta["annotations"] == {"drover.dev/adapter-of": "tiny"}

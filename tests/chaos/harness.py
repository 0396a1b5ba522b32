"""Chaos tests' harness: a fresh local control plane per run, KubeRay's part played by a thread,
the chain's manifests, and a run's end state reduced to what must match an undisturbed run.

Each run gets its own control plane, so its fault settings and request counts (`/_drover/requests`,
what kube's audit log would show) are its own. The harness's clients send the User-Agent
`HARNESS_AGENT`, which the faults spare: only the operator under test sees them.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import re
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from tests.integration.conftest import KUBERAY, ROOT, Dashboard, Operator, kubectl
from tests.integration.support import line, manifest, serving_status

from drover_sandbox.apiserver import launcher

HARNESS_AGENT = "drover-chaos-harness/1"
NO_PROMETHEUS = "http://127.0.0.1:9"
NAMESPACE = "chaos"
G, V = "drover.dev", "v1alpha1"
PLURALS = {
    "FoundationModel": "foundationmodels",
    "FineTuneJob": "finetunejobs",
    "VectorIndex": "vectorindexes",
    "InferenceService": "inferenceservices",
}
# The phase each kind ends in when the chain is done.
END_PHASES = {
    "FoundationModel": "Ready",
    "FineTuneJob": "Succeeded",
    "VectorIndex": "Ready",
    "InferenceService": "Ready",
}
# Status keys that hold a clock reading: they differ between any two runs.
# How long each RayJob runs before it succeeds: the chain (a fetch, the fine-tune, its output
# model's fetch) then takes a while, so kills and faults land while resources progress.
JOB_SECONDS = 4.0
CLOCK_KEYS = ("lastTransitionTime", "startTime", "endTime")
CLOCK_SUFFIXES = ("At", "Time", "Timestamp")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def digest_of(name: str) -> str:
    """A model's content digest, the same in every run."""
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


# --- the resources -------------------------------------------------------------------------------


def chain(namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """examples/pipeline as it is: two models, a fine-tune (which makes a third model), an index
    and a service with retrieval."""
    names = ("00-base-model.yaml", "01-embedder.yaml", "02-finetune.yaml", "03-index.yaml")
    docs = [manifest(n, namespace) for n in names]
    return [*docs, manifest("04-service.yaml", namespace)]


def served_models(count: int, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """`count` FoundationModels, each served by its own InferenceService (no retrieval)."""
    docs: list[dict[str, Any]] = []
    for i in range(count):
        model = manifest("00-base-model.yaml", namespace)
        model["metadata"]["name"] = f"model-{i:03d}"
        svc = manifest("04-service.yaml", namespace)
        del svc["spec"]["retrieval"]
        svc["metadata"]["name"] = f"svc-{i:03d}"
        svc["spec"]["model"] = {"name": f"model-{i:03d}"}
        docs += [model, svc]
    return docs


def expected_names(docs: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(kind, name) of every Drover resource the run ends with, produced models included."""
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for d in docs:
        if d["kind"] == "FineTuneJob":
            names.add(("FoundationModel", d["spec"]["output"]["modelName"]))
    return names


# --- the local control plane --------------------------------------------------------------------


class ControlPlane:
    """A local control plane of its own, with Drover's, kopf's peering and KubeRay's CRDs."""

    def __init__(self, data_dir: Path, namespace: str = NAMESPACE) -> None:
        self.namespace = namespace
        self.proc, self.url = launcher.start(data_dir)
        self.kubeconfig = data_dir / "kubeconfig"
        kubectl(
            self.kubeconfig,
            "apply",
            "-f",
            str(ROOT / "crds"),
            "-f",
            str(ROOT / "charts/drover/crds/kopf.dev_kopfpeerings.yaml"),
        )
        for name in ("ray.io_rayjobs.yaml", "ray.io_rayservices.yaml"):
            kubectl(self.kubeconfig, "apply", "--server-side", "-f", str(KUBERAY / name))
        self.api = config.new_client_from_config(config_file=str(self.kubeconfig))
        self.api.user_agent = HARNESS_AGENT
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        self.admin("/_drover/faults", {"exempt_user_agents": [HARNESS_AGENT]})

    def admin(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method="POST" if data else "GET",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return dict(json.loads(resp.read()))

    def create(self, doc: dict[str, Any]) -> None:
        self.custom.create_namespaced_custom_object(
            G, V, self.namespace, PLURALS[doc["kind"]], copy.deepcopy(doc)
        )

    def drover(self, kind: str) -> list[dict[str, Any]]:
        out = self.custom.list_namespaced_custom_object(G, V, self.namespace, PLURALS[kind])
        return list(out["items"])

    def ray(self, plural: str) -> list[dict[str, Any]]:
        out = self.custom.list_namespaced_custom_object("ray.io", "v1", self.namespace, plural)
        return list(out["items"])

    def claims(self) -> list[dict[str, Any]]:
        raw = self.core.list_namespaced_persistent_volume_claim(self.namespace)
        return list(self.api.sanitize_for_serialization(raw)["items"])

    def creates(self, exclude_agent: str = HARNESS_AGENT) -> Counter[str]:
        """Successful creates by resource from every client but the harness (the operators)."""
        out: Counter[str] = Counter()
        for item in self.admin("/_drover/requests")["items"]:
            if (
                item["verb"] == "create"
                and item["code"] == 201
                and not item["userAgent"].startswith(exclude_agent)
            ):
                out[item["resource"]] += item["count"]
        return out

    def start_operator(self, log: Path, **kwargs: Any) -> Operator:
        # The same unreachable Prometheus in every run (port 9, discard: nothing listens), as
        # the autoscaler's conditions name it.
        kwargs.setdefault("prometheus_url", NO_PROMETHEUS)
        return Operator(self.kubeconfig, self.namespace, log, **kwargs)

    def close(self) -> None:
        self.api.close()
        launcher.stop(self.proc)


@contextlib.contextmanager
def control_plane(data_dir: Path) -> Iterator[ControlPlane]:
    cp = ControlPlane(data_dir)
    try:
        yield cp
    finally:
        cp.close()


# --- KubeRay's part ------------------------------------------------------------------------------


def worker_result(job: dict[str, Any]) -> dict[str, Any]:
    """What the worker of this RayJob reports, the same in every run."""
    labels = job["metadata"].get("labels") or {}
    if "drover.dev/finetunejob" in labels:
        return {
            "passed": True,
            "digest": digest_of(job["metadata"]["name"]),
            "datasetDigest": digest_of("dataset"),
            "evaluation": {"loss": 1.9, "perplexity": 6.7},
        }
    if "drover.dev/vectorindex" in labels:
        return {
            "documents": 3,
            "chunks": 12,
            "dimensions": 384,
            "embedderDigest": digest_of("minilm"),
        }
    model = labels.get("drover.dev/foundationmodel", job["metadata"]["name"])
    digest = digest_of(model)
    return {"digest": digest, "path": f"{model}/{digest[7:19]}", "sizeBytes": 4_000_000}


class KubeRay:
    """A thread playing KubeRay v1.7.0: each RayJob it sees runs for `job_seconds`, then succeeds
    (its worker's report served by the dashboard stand-in); each RayService runs the applications
    its Serve config names."""

    def __init__(
        self,
        cp: ControlPlane,
        dashboard: Dashboard,
        interval: float = 0.3,
        job_seconds: float = JOB_SECONDS,
    ) -> None:
        self.cp, self.dashboard, self.interval = cp, dashboard, interval
        self.job_seconds = job_seconds
        self._seen: dict[str, float] = {}  # RayJob uid -> when it started running
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.errors: list[str] = []

    def __enter__(self) -> KubeRay:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.step()
            except (ApiException, OSError) as exc:  # keep playing; the next round retries
                self.errors.append(repr(exc))

    def step(self) -> None:
        ns = self.cp.namespace
        for job in self.cp.ray("rayjobs"):
            if (job.get("status") or {}).get("jobDeploymentStatus") == "Complete":
                continue
            name = job["metadata"]["name"]
            started = self._seen.setdefault(job["metadata"]["uid"], time.monotonic())
            running = time.monotonic() - started < self.job_seconds
            if running and (job.get("status") or {}).get("jobDeploymentStatus") == "Running":
                continue
            # No progress lines while it runs: what a run's end state holds must not depend on
            # whether the operator happened to look while the job ran.
            report = "" if running else line("result", worker_result(job))
            self.dashboard.logs[f"{ns}-{name}"] = report
            body = {
                "status": {
                    "jobDeploymentStatus": "Running" if running else "Complete",
                    "jobStatus": "RUNNING" if running else "SUCCEEDED",
                    "jobId": f"{ns}-{name}",
                    "dashboardURL": self.dashboard.address,
                    "rayClusterName": f"{name}-raycluster",
                    "startTime": "2026-11-22T12:00:00Z",
                }
            }
            self.cp.custom.patch_namespaced_custom_object_status(
                "ray.io", "v1", ns, "rayjobs", name, body
            )
        for rs in self.cp.ray("rayservices"):
            name = rs["metadata"]["name"]
            apps = [a["name"] for a in yaml.safe_load(rs["spec"]["serveConfigV2"])["applications"]]
            status = rs.get("status") or {}
            running = set((status.get("activeServiceStatus") or {}).get("applicationStatuses", {}))
            if running == set(apps) and status.get("observedGeneration") == rs["metadata"].get(
                "generation", 1
            ):
                continue
            versions = [a.removeprefix(f"{name}-") for a in apps if a != name]
            serving_status(self.cp.api, ns, name, versions)


# --- the end state -------------------------------------------------------------------------------


def _without_clock(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _without_clock(v)
            for k, v in value.items()
            if k not in CLOCK_KEYS and not k.endswith(CLOCK_SUFFIXES)
        }
    if isinstance(value, list):
        return [_without_clock(v) for v in value]
    if isinstance(value, str):  # a message may quote a time ("holding ... since <time>")
        return TIMESTAMP.sub("<time>", value)
    return value


@dataclass
class EndState:
    statuses: dict[str, Any]  # "Kind/name" -> status without clock readings
    children: dict[str, list[str]]  # "Kind/name" of each parent -> "Kind/name" of its children
    orphans: list[str] = field(default_factory=list)  # children whose owner does not exist
    counts: dict[str, int] = field(default_factory=dict)  # objects by resource


def end_state(cp: ControlPlane) -> EndState:
    """Drover resources' statuses and their children, grouped by the label naming the parent
    (`drover.dev/<kind>: <name>`), so a duplicate child shows as an extra entry."""
    statuses: dict[str, Any] = {}
    uids: set[str] = set()
    for kind in PLURALS:
        for obj in cp.drover(kind):
            statuses[f"{kind}/{obj['metadata']['name']}"] = _without_clock(obj.get("status") or {})
            uids.add(obj["metadata"]["uid"])
    children: dict[str, list[str]] = {}
    orphans: list[str] = []
    kids = [("RayJob", o) for o in cp.ray("rayjobs")]
    kids += [("RayService", o) for o in cp.ray("rayservices")]
    kids += [("PersistentVolumeClaim", o) for o in cp.claims()]
    kids += [
        ("FoundationModel", o)
        for o in cp.drover("FoundationModel")
        if o["metadata"].get("ownerReferences")
    ]
    for kind, obj in kids:
        meta = obj["metadata"]
        me = f"{kind}/{meta['name']}"
        for key, value in sorted((meta.get("labels") or {}).items()):
            parent = key.removeprefix("drover.dev/")
            if key.startswith("drover.dev/") and parent in {k.lower() for k in PLURALS}:
                children.setdefault(f"{parent}/{value}", []).append(me)
        owners = [r["uid"] for r in meta.get("ownerReferences") or []]
        if not owners or not set(owners) <= uids:
            orphans.append(me)
    # A fine-tune's output model reads its weights from a path holding the FineTuneJob's uid
    # (builders.finetunejob.output_relpath), new in every run; its source key (a hash of the
    # source) and the fetch job named after it differ too, so they are masked.
    masks = [
        (obj.get("status") or {}).get("sourceKey")
        for obj in cp.drover("FoundationModel")
        if (obj["spec"].get("lineage") or {}).get("fineTuneJob")
    ]
    text = json.dumps([statuses, children])
    for mask in filter(None, masks):
        text = text.replace(mask, "<from-finetunejob-uid>")
    statuses, children = json.loads(text)
    counts = {
        "rayjobs": len([k for k in kids if k[0] == "RayJob"]),
        "rayservices": len([k for k in kids if k[0] == "RayService"]),
        "persistentvolumeclaims": len([k for k in kids if k[0] == "PersistentVolumeClaim"]),
        "foundationmodels": len(cp.drover("FoundationModel")),
    }
    return EndState(statuses, {k: sorted(v) for k, v in children.items()}, sorted(orphans), counts)


def done(cp: ControlPlane, expected: set[tuple[str, str]]) -> bool:
    """Every expected resource is in its end phase, and nothing else exists."""
    seen = set()
    for kind in PLURALS:
        for obj in cp.drover(kind):
            seen.add((kind, obj["metadata"]["name"]))
            if (obj.get("status") or {}).get("phase") != END_PHASES[kind]:
                return False
    return seen == expected


def ended(cp: ControlPlane) -> int:
    """How many Drover resources are in their end phase."""
    return sum(
        (obj.get("status") or {}).get("phase") == END_PHASES[kind]
        for kind in PLURALS
        for obj in cp.drover(kind)
    )


def settle(
    cp: ControlPlane,
    expected: set[tuple[str, str]],
    timeout: float,
    quiet: float = 4.0,
    on_wait: Callable[[], None] | None = None,
) -> EndState:
    """Wait (up to `timeout` s, generous: a deadline, not a timing claim) until every resource is
    done and the end state stays the same for `quiet` s; the last state is returned either way,
    so a test's assertion shows what differed."""
    deadline = time.monotonic() + timeout
    last: EndState | None = None
    since = time.monotonic()
    while time.monotonic() < deadline:
        if on_wait is not None:
            on_wait()
        try:
            finished = done(cp, expected)
            state = end_state(cp)
        except (ApiException, OSError):
            time.sleep(0.5)
            continue
        if not finished or last is None or state != last:
            last, since = state, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return state
        time.sleep(0.5)
    assert last is not None, "the control plane never answered"
    return last


def differences(got: Any, want: Any, path: str = "") -> list[str]:
    """Where `got` differs from `want`, as `path: got != want` lines (empty when equal)."""
    if isinstance(got, dict) and isinstance(want, dict):
        out: list[str] = []
        for key in sorted(set(got) | set(want)):
            out += differences(got.get(key), want.get(key), f"{path}.{key}" if path else key)
        return out
    if isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
        return [
            d
            for i, (g, w) in enumerate(zip(got, want, strict=True))
            for d in differences(g, w, f"{path}[{i}]")
        ]
    return [] if got == want else [f"{path}: {got!r} != {want!r}"]

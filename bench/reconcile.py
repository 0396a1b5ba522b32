"""Benchmark of the operator under load: N InferenceServices and their N FoundationModels created at
once on the local control plane, until every one is Ready; then an idle window.

Reports, for Drover and for a bare kopf operator that makes the same children in the same run
(`bench/_bare_kopf.py`, the floor): wall time to converge, API requests per resource (counted by
the control plane, `/_drover/requests`, as kube's audit log would), writes per resource during
the idle window (status churn), events per resource, peak RSS and CPU seconds of the operator
process. KubeRay's part is played by a thread (every RayJob succeeds, every RayService runs);
its requests and the benchmark's own are not counted.

Run: `.venv/bin/python bench/reconcile.py [--resources 1000] [--idle 60] [--json]`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))
sys.path.insert(0, str(ROOT / "sandbox"))

import yaml  # noqa: E402
from aiohttp import web  # noqa: E402
from kubernetes import client, config  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402

from drover.compat import KUBERAY_SCHEMAS_DIR  # noqa: E402
from drover_sandbox.apiserver import launcher  # noqa: E402

AGENT = "drover-bench/1"  # the benchmark's and KubeRay stand-in's requests: not counted
G, V = "drover.dev", "v1alpha1"
KUBERAY = ROOT.parent / "shared" / "vendor-schemas" / KUBERAY_SCHEMAS_DIR
PIPELINE = ROOT / "examples" / "pipeline"
WRITES = ("create", "update", "patch", "delete", "deletecollection")
GOALS = {"wall_ratio": 1.3, "rss_mb": 300.0, "idle_writes_per_resource": 2.0}
DIGEST = "sha256:" + "ab" * 32


def free_port() -> int:
    return launcher.free_port()


# --- KubeRay's part and its dashboard --------------------------------------------------------


class Dashboard(threading.Thread):
    """Ray's dashboard `GET /api/jobs/{id}/logs`: every fetch job reports a cached model."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.port = free_port()
        self.ready = threading.Event()

    def run(self) -> None:
        import asyncio

        async def logs(request: web.Request) -> web.Response:
            job = request.match_info["job"]
            result = {"digest": DIGEST, "path": f"{job}/{DIGEST[7:19]}", "sizeBytes": 4000000}
            return web.json_response({"logs": f"::drover::result {json.dumps(result)}\n"})

        async def main() -> None:
            app = web.Application()
            app.router.add_get("/api/jobs/{job}/logs", logs)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            self.ready.set()
            while True:
                await asyncio.sleep(3600)

        asyncio.run(main())


class KubeRay(threading.Thread):
    """Every RayJob succeeds, every RayService runs its Serve config's applications."""

    def __init__(self, api: client.ApiClient, dashboard: str) -> None:
        super().__init__(daemon=True)
        self.custom = client.CustomObjectsApi(api)
        self.dashboard = dashboard
        self.namespace = ""
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            if self.namespace:
                with contextlib.suppress(ApiException, OSError):  # the next round retries
                    self.step(self.namespace)

    def step(self, ns: str) -> None:
        for job in self.custom.list_namespaced_custom_object("ray.io", "v1", ns, "rayjobs")[
            "items"
        ]:
            if (job.get("status") or {}).get("jobDeploymentStatus") == "Complete":
                continue
            name = job["metadata"]["name"]
            status = {
                "jobDeploymentStatus": "Complete",
                "jobStatus": "SUCCEEDED",
                "jobId": f"{ns}-{name}",
                "dashboardURL": self.dashboard,
                "rayClusterName": f"{name}-raycluster",
                "startTime": "2026-11-22T12:00:00Z",
            }
            self.custom.patch_namespaced_custom_object_status(
                "ray.io", "v1", ns, "rayjobs", name, {"status": status}
            )
        services = self.custom.list_namespaced_custom_object("ray.io", "v1", ns, "rayservices")
        for rs in services["items"]:
            status = rs.get("status") or {}
            if status.get("observedGeneration") == rs["metadata"].get("generation", 1):
                continue
            apps = yaml.safe_load(rs["spec"]["serveConfigV2"])["applications"]
            body = {
                "serviceStatus": "Running",
                "observedGeneration": rs["metadata"].get("generation", 1),
                "numServeEndpoints": 1,
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "NonZeroServeEndpoints",
                        "message": "",
                        "lastTransitionTime": "2026-11-22T12:00:00Z",
                    }
                ],
                "activeServiceStatus": {
                    "rayClusterName": f"{rs['metadata']['name']}-raycluster",
                    "applicationStatuses": {
                        a["name"]: {
                            "status": "RUNNING",
                            "serveDeploymentStatuses": {
                                d["name"]: {"status": "HEALTHY"}
                                for d in a.get("deployments") or [{"name": "router"}]
                            },
                        }
                        for a in apps
                    },
                },
            }
            self.custom.patch_namespaced_custom_object_status(
                "ray.io", "v1", ns, "rayservices", rs["metadata"]["name"], {"status": body}
            )


# --- one operator's run ------------------------------------------------------------------------


def resources(n: int, ns: str) -> list[dict[str, Any]]:
    model = yaml.safe_load((PIPELINE / "00-base-model.yaml").read_text())
    service = yaml.safe_load((PIPELINE / "04-service.yaml").read_text())
    del service["spec"]["retrieval"]
    docs = []
    for i in range(n):
        m = json.loads(json.dumps(model))
        m["metadata"] = {"name": f"m{i:04d}", "namespace": ns}
        s = json.loads(json.dumps(service))
        s["metadata"] = {"name": f"s{i:04d}", "namespace": ns}
        s["spec"]["model"] = {"name": f"m{i:04d}"}
        docs += [m, s]
    return docs


def requests(url: str) -> Counter[tuple[str, str]]:
    """(verb, resource) -> count of every request but the benchmark's own."""
    with urllib.request.urlopen(f"{url}/_drover/requests", timeout=30) as resp:
        items = json.loads(resp.read())["items"]
    out: Counter[tuple[str, str]] = Counter()
    for i in items:
        if not i["userAgent"].startswith(AGENT):
            out[(i["verb"], i["resource"])] += i["count"]
    return out


class Process:
    """Peak RSS (sampled) and CPU seconds of a process, from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_rss = pid, 0
        self.stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self.stop.wait(0.25):
            try:
                for row in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                    if row.startswith("VmRSS:"):
                        self.peak_rss = max(self.peak_rss, int(row.split()[1]) * 1024)
            except OSError:
                return

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_one(
    which: str,
    n: int,
    url: str,
    kubeconfig: Path,
    api: client.ApiClient,
    kuberay: KubeRay,
    idle: float,
    deadline: float,
    logdir: Path,
    round_: int = 0,
) -> dict[str, Any]:
    ns = f"bench-{which}-{round_}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": ns}})
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "DROVER_NAMESPACES": ns,
        "BARE_NAMESPACE": ns,
        "DROVER_HEALTH_PORT": str(free_port()),
        "DROVER_METRICS_PORT": str(free_port()),
        "DROVER_PROMETHEUS_URL": f"http://127.0.0.1:{free_port()}",  # none: metrics unavailable
        "PYTHONPATH": os.pathsep.join([str(ROOT / "operator"), os.environ.get("PYTHONPATH", "")]),
    }
    args = (
        [sys.executable, "-m", "drover", "run", "--standalone"]
        if which == "drover"
        else [sys.executable, str(ROOT / "bench" / "_bare_kopf.py")]
    )
    log = open(logdir / f"{which}-{round_}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    sampler = Process(proc.pid)
    custom = client.CustomObjectsApi(api)
    try:
        time.sleep(3)  # the operator is up and watching (both pay the same)
        before = requests(url)
        cpu0 = sampler.cpu_seconds()
        kuberay.namespace = ns
        docs = resources(n, ns)
        started = time.monotonic()
        plural = {"FoundationModel": "foundationmodels", "InferenceService": "inferenceservices"}
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda d: custom.create_namespaced_custom_object(
                        G, V, ns, plural[d["kind"]], d
                    ),
                    docs,
                )
            )
        ready = 0
        while time.monotonic() - started < deadline:
            ready = sum(
                (o.get("status") or {}).get("phase") == "Ready"
                for p in plural.values()
                for o in custom.list_namespaced_custom_object(G, V, ns, p)["items"]
            )
            if ready == 2 * n:
                break
            time.sleep(1)
        wall = time.monotonic() - started
        cpu_converge = sampler.cpu_seconds() - cpu0
        converged = requests(url)
        time.sleep(idle)
        after = requests(url)
        events = len(client.CoreV1Api(api).list_namespaced_event(ns).items)
        cpu_total = sampler.cpu_seconds() - cpu0
    finally:
        kuberay.namespace = ""
        sampler.stop.set()
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
    during = converged - before
    quiet = after - converged
    resources_n = 2 * n
    return {
        "converged": ready == 2 * n,
        "ready": ready,
        "wall_s": round(wall, 1),
        "requests_per_resource": round(sum(during.values()) / resources_n, 2),
        # Where they go: (verb resource) → requests per resource, converging.
        "requests_by_kind": {
            f"{verb} {res}": round(count / resources_n, 2)
            for (verb, res), count in during.most_common()
        },
        "writes_per_resource": round(
            sum(c for (v, _), c in during.items() if v in WRITES) / resources_n, 2
        ),
        "idle_writes_per_resource": round(
            sum(c for (v, r), c in quiet.items() if v in WRITES and r != "events") / resources_n,
            3,
        ),
        "idle_requests_per_resource": round(sum(quiet.values()) / resources_n, 2),
        "events_per_resource": round(events / resources_n, 2),
        "rss_mb_peak": round(sampler.peak_rss / 2**20, 1),
        "cpu_s_converge": round(cpu_converge, 1),
        "cpu_s_total": round(cpu_total, 1),
    }


def _sockets(_dir: str, names: list[str]) -> list[str]:
    return [n for n in names if n.endswith(".sock")]


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One operator's runs as one row: wall time summed, the rest averaged (peak RSS: the max)."""
    if len(runs) == 1:
        return runs[0]
    out = dict(runs[0])
    for key, value in runs[0].items():
        if key == "wall_s":
            out[key] = round(sum(r[key] for r in runs), 1)
        elif key == "rss_mb_peak":
            out[key] = max(r[key] for r in runs)
        elif isinstance(value, bool):
            out[key] = all(r[key] for r in runs)
        elif isinstance(value, int | float):
            out[key] = round(sum(r[key] for r in runs) / len(runs), 3)
    out["wall_s_each"] = [r["wall_s"] for r in runs]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--resources", type=int, default=1000, help="InferenceServices (and models)"
    )
    parser.add_argument("--idle", type=float, default=60.0, help="idle window after converging, s")
    parser.add_argument(
        "--deadline", type=float, default=1800.0, help="give up converging after, s"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="runs per operator, alternating who goes first"
    )
    parser.add_argument("--keep", type=Path, help="copy the operators' logs to this directory")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not KUBERAY.exists():
        raise SystemExit(f"KubeRay CRDs not found at {KUBERAY}")
    with tempfile.TemporaryDirectory(prefix="drover-bench-") as tmp:
        data = Path(tmp)
        proc, url = launcher.start(data / "apiserver")
        try:
            kubeconfig = data / "apiserver" / "kubeconfig"
            env = {**os.environ, "KUBECACHEDIR": str(data / "kubecache")}
            kubectl = ["kubectl", f"--kubeconfig={kubeconfig}", "apply"]
            subprocess.run(
                [*kubectl, "-f", str(ROOT / "crds")], check=True, env=env, capture_output=True
            )
            for name in ("ray.io_rayjobs.yaml", "ray.io_rayservices.yaml"):
                subprocess.run(
                    [*kubectl, "--server-side", "-f", str(KUBERAY / name)],
                    check=True,
                    env=env,
                    capture_output=True,
                )
            api = config.new_client_from_config(config_file=str(kubeconfig))
            api.user_agent = AGENT
            dashboard = Dashboard()
            dashboard.start()
            dashboard.ready.wait(10)
            kuberay = KubeRay(api, f"127.0.0.1:{dashboard.port}")
            kuberay.start()
            # ABBA: drover, bare, then bare, drover: a machine getting busier or quieter over
            # the run weighs on both alike.
            pairs = [("drover", "bare"), ("bare", "drover")]
            runs: dict[str, list[dict[str, Any]]] = {"drover": [], "bare": []}
            for round_, pair in enumerate(pairs[i % 2] for i in range(args.rounds)):
                for which in pair:
                    runs[which].append(
                        run_one(
                            which,
                            args.resources,
                            url,
                            kubeconfig,
                            api,
                            kuberay,
                            args.idle,
                            args.deadline,
                            data,
                            round_,
                        )
                    )
        finally:
            launcher.stop(proc)
            if args.keep:
                shutil.copytree(data, args.keep, dirs_exist_ok=True, ignore=_sockets)
    d, b = combine(runs["drover"]), combine(runs["bare"])
    summary = {
        "resources": 2 * args.resources,
        "idle_window_s": args.idle,
        "drover": d,
        "bare_kopf": b,
        "wall_ratio": round(d["wall_s"] / b["wall_s"], 2) if b["wall_s"] else None,
        "goals": {
            "wall_ratio <= 1.3": d["wall_s"] <= GOALS["wall_ratio"] * b["wall_s"],
            "rss <= 300 MB": d["rss_mb_peak"] <= GOALS["rss_mb"],
            "idle writes/resource <= 2": d["idle_writes_per_resource"]
            <= GOALS["idle_writes_per_resource"],
            "converged": d["converged"] and b["converged"],
        },
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(
        f"{args.resources} InferenceServices + {args.resources} FoundationModels at once; "
        f"idle window {args.idle:.0f} s"
    )
    print(f"{'':32}{'drover':>12}{'bare kopf':>12}")
    for key in d:
        print(f"{key:32}{d[key]!s:>12}{b[key]!s:>12}")
    print(f"{'wall ratio (goal <= 1.3)':32}{summary['wall_ratio']!s:>12}")
    for goal, met in summary["goals"].items():
        print(f"goal {goal:27}{'met' if met else 'NOT met':>12}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

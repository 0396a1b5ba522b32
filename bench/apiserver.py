"""Benchmark of the local control plane (`drover local apiserver`): sequential creates/s, and
list and watch latency at 10k objects.

Shows that a request's cost does not grow with history: creates/s of the 10th thousand against
the 1st (ratio ~1.0), and GET latency after 10k writes against an empty server.
Run: `.venv/bin/python bench/apiserver.py [--objects 10000] [--json]`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from drover_sandbox.apiserver import launcher

NS = "bench"


class Client:
    """One keep-alive HTTP connection: what a sequential client pays per request."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        self.conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        return resp.status, resp.read()


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def create_batch(cl: Client, start: int, count: int) -> float:
    t0 = time.perf_counter()
    for i in range(start, start + count):
        code, body = cl.call(
            "POST",
            f"/api/v1/namespaces/{NS}/configmaps",
            {
                "metadata": {"name": f"cm-{i:06d}", "labels": {"i": str(i % 10)}},
                "data": {"k": "v" * 32},
            },
        )
        if code != 201:
            raise SystemExit(f"create failed: {code} {body[:200]!r}")
    return count / (time.perf_counter() - t0)


def get_latency(cl: Client, n: int = 200) -> float:
    samples = [
        timed(cl.call, "GET", f"/api/v1/namespaces/{NS}/configmaps/cm-000000") for _ in range(n)
    ]
    return statistics.median(samples) * 1000


def watch_latency(port: int, cl: Client, n: int = 50) -> float:
    """Median ms from a create returning to its ADDED event arriving on an open watch."""
    _, body = cl.call("GET", f"/api/v1/namespaces/{NS}/configmaps?limit=1")
    rv = json.loads(body)["metadata"]["resourceVersion"]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request(
        "GET",
        f"/api/v1/namespaces/{NS}/configmaps?watch=true&resourceVersion={rv}"
        f"&labelSelector=w%3Dyes&timeoutSeconds=120",
    )
    resp = conn.getresponse()
    arrived: dict[str, float] = {}
    done = threading.Event()

    def reader() -> None:
        while len(arrived) < n:
            line = resp.readline()
            if not line:
                break
            ev = json.loads(line)
            arrived[ev["object"]["metadata"]["name"]] = time.perf_counter()
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    sent: dict[str, float] = {}
    for i in range(n):
        name = f"w-{i:04d}"
        cl.call(
            "POST",
            f"/api/v1/namespaces/{NS}/configmaps",
            {"metadata": {"name": name, "labels": {"w": "yes"}}},
        )
        sent[name] = time.perf_counter()
        deadline = time.monotonic() + 10
        while name not in arrived and time.monotonic() < deadline:
            time.sleep(0.0005)
    done.wait(10)
    conn.close()
    return statistics.median(max(arrived[k] - sent[k], 0) for k in sent if k in arrived) * 1000


def run(objects: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = launcher.start(Path(tmp))
        try:
            port = int(url.rsplit(":", 1)[1])
            cl = Client(port)
            cl.call("POST", "/api/v1/namespaces", {"metadata": {"name": NS}})
            cl.call(
                "POST", f"/api/v1/namespaces/{NS}/configmaps", {"metadata": {"name": "cm-000000"}}
            )
            get_empty = get_latency(cl)
            batch = 1000
            rates = [create_batch(cl, 1 + k * batch, batch) for k in range(objects // batch)]
            get_full = get_latency(cl)
            list_all = statistics.median(
                timed(cl.call, "GET", f"/api/v1/namespaces/{NS}/configmaps") for _ in range(5)
            )
            list_page = statistics.median(
                timed(cl.call, "GET", f"/api/v1/namespaces/{NS}/configmaps?limit=500")
                for _ in range(5)
            )
            list_sel = statistics.median(
                timed(cl.call, "GET", f"/api/v1/namespaces/{NS}/configmaps?labelSelector=i%3D3")
                for _ in range(5)
            )
            watch_ms = watch_latency(port, cl)
        finally:
            launcher.stop(proc)
    return {
        "objects": objects,
        "creates_per_s_first_1k": round(rates[0], 1),
        "creates_per_s_last_1k": round(rates[-1], 1),
        "creates_per_s_overall": round(statistics.mean(rates), 1),
        "creates_ratio_last_vs_first": round(rates[-1] / rates[0], 3),
        # the machine is shared: medians of three batches are steadier than single batches
        "creates_ratio_median_last3_vs_first3": round(
            statistics.median(rates[-3:]) / statistics.median(rates[:3]), 3
        ),
        "creates_per_s_by_1k": [round(r) for r in rates],
        "get_ms_empty": round(get_empty, 3),
        "get_ms_at_n": round(get_full, 3),
        "get_ratio_at_n_vs_empty": round(get_full / get_empty, 3),
        "list_all_ms_at_n": round(list_all * 1000, 1),
        "list_page500_ms_at_n": round(list_page * 1000, 1),
        "list_label_selector_ms_at_n": round(list_sel * 1000, 1),
        "watch_event_latency_ms_at_n": round(watch_ms, 3),
        "goal_creates_per_s": 500,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=10_000, help="objects to create (x1000)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.objects < 1000:
        parser.error("--objects must be at least 1000")
    result = run(args.objects)
    if args.json:
        print(json.dumps(result))
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

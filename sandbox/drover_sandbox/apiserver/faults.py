"""Local control plane, fault injection for tests: a fraction of resource requests answered
500/429 (409 to writes only, as kube-apiserver), added latency on a fraction of requests, watch
streams cut after N events, and re-watches from an old resourceVersion answered 410 Gone.

Set at start (CLI flags) or at runtime with `POST /_drover/faults` (JSON of `Faults` fields).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import ApiError, bad_request, conflict, gone, internal, too_many_requests

SUPPORTED_CODES = (409, 429, 500)
WRITES = ("POST", "PUT", "PATCH", "DELETE")


@dataclass
class Faults:
    error_rate: float = 0.0  # fraction of resource requests answered with an error
    codes: list[int] = field(default_factory=lambda: [500])  # drawn uniformly
    retry_after_s: int = 1  # the Retry-After of an injected 429
    latency_ms: float = 0.0  # added to a `latency_rate` fraction of resource requests
    latency_rate: float = 1.0
    watch_cut_after: int = 0  # close each watch stream after this many events (0: never)
    # Fraction of watches resuming from a resourceVersion (a re-watch) answered with an ERROR
    # event 410 "too old resource version", as if the watch cache had evicted that version.
    rewatch_gone_rate: float = 0.0
    methods: list[str] = field(default_factory=list)  # only these HTTP methods (empty: all)
    # Requests whose User-Agent starts with one of these are never faulted (a test's own
    # stand-ins, e.g. the harness playing KubeRay, so only the client under test sees faults).
    exempt_user_agents: list[str] = field(default_factory=list)
    seed: int | None = None
    _rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)
    # What was injected so far, by kind ("500", "429", "409", "latency", "410-rewatch"): a test
    # reads it (GET /_drover/faults, "injected") to know its faults really happened.
    injected: Counter[str] = field(default_factory=Counter, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_rng")
        data.pop("injected")
        return data

    def update(self, data: Any) -> None:
        """Validate and apply a partial update; unknown fields or bad values are a 400."""
        if not isinstance(data, dict):
            raise bad_request("faults must be a JSON object")
        allowed = set(self.to_dict())
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise bad_request(f"unknown fault field(s) {unknown}; allowed: {sorted(allowed)}")
        rates = {
            key: float(data.get(key, getattr(self, key)))
            for key in ("error_rate", "latency_rate", "rewatch_gone_rate")
        }
        for key, rate in rates.items():
            if not 0.0 <= rate <= 1.0:
                raise bad_request(f"{key} must be between 0 and 1")
        codes = [int(c) for c in data.get("codes", self.codes)]
        bad = [c for c in codes if c not in SUPPORTED_CODES]
        if bad or not codes:
            raise bad_request(f"codes must be a non-empty subset of {list(SUPPORTED_CODES)}")
        latency = float(data.get("latency_ms", self.latency_ms))
        cut = int(data.get("watch_cut_after", self.watch_cut_after))
        retry_after = int(data.get("retry_after_s", self.retry_after_s))
        if latency < 0 or cut < 0 or retry_after < 0:
            raise bad_request("latency_ms, watch_cut_after and retry_after_s must be >= 0")
        self.error_rate, self.latency_rate, self.rewatch_gone_rate = (
            rates["error_rate"],
            rates["latency_rate"],
            rates["rewatch_gone_rate"],
        )
        self.codes, self.latency_ms, self.watch_cut_after, self.retry_after_s = (
            codes,
            latency,
            cut,
            retry_after,
        )
        self.methods = [str(m).upper() for m in data.get("methods", self.methods)]
        self.exempt_user_agents = [
            str(a) for a in data.get("exempt_user_agents", self.exempt_user_agents)
        ]
        if "seed" in data:
            self.seed = data["seed"]
            self._rng = random.Random(self.seed)

    def exempt(self, user_agent: str) -> bool:
        return any(user_agent.startswith(prefix) for prefix in self.exempt_user_agents)

    def pick_latency(self, user_agent: str) -> float:
        """Seconds to hold this request (0: none)."""
        if self.latency_ms <= 0 or self.exempt(user_agent):
            return 0.0
        if self.latency_rate < 1.0 and self._rng.random() >= self.latency_rate:
            return 0.0
        self.injected["latency"] += 1
        return self.latency_ms / 1000

    def pick_error(
        self, method: str, resource: str, name: str, user_agent: str = ""
    ) -> ApiError | None:
        if self.error_rate <= 0 or (self.methods and method not in self.methods):
            return None
        if self.exempt(user_agent) or self._rng.random() >= self.error_rate:
            return None
        code = self._rng.choice(self.codes)
        if code == 409 and method not in WRITES:
            return None  # kube-apiserver answers conflicts to writes only, never to a read
        self.injected[str(code)] += 1
        if code == 429:
            return too_many_requests(self.retry_after_s)
        if code == 409:
            return conflict("", resource, name or "", "injected fault (drover faults)")
        return internal("injected fault (drover faults)")

    def pick_rewatch_gone(self, since: int, current: int, user_agent: str = "") -> ApiError | None:
        """410 for a watch resuming from resourceVersion `since`, as kube-apiserver's watch cache
        answers a version older than its window (watchCache.getAllEventsSinceLocked in
        staging/src/k8s.io/apiserver/pkg/storage/cacher/watch_cache.go: NewResourceExpired
        "too old resource version: %d (%d)", sent by the cacher as a watch ERROR event). The
        window is taken to start past `since` (as after the cache re-listed at a newer version),
        so any resuming watch may draw it, even one that has missed nothing."""
        if self.rewatch_gone_rate <= 0 or since <= 0:
            return None
        if self.exempt(user_agent) or self._rng.random() >= self.rewatch_gone_rate:
            return None
        self.injected["410-rewatch"] += 1
        return gone(f"too old resource version: {since} ({max(current, since + 1)})")

"""Local control plane, fault injection for tests: a fraction of resource requests answered
500/429/409, added latency, and watch streams cut after N events.

Set at start (CLI flags) or at runtime with `POST /_drover/faults` (JSON of `Faults` fields).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import ApiError, bad_request, conflict, internal, too_many_requests

SUPPORTED_CODES = (409, 429, 500)


@dataclass
class Faults:
    error_rate: float = 0.0  # fraction of resource requests answered with an error
    codes: list[int] = field(default_factory=lambda: [500])  # drawn uniformly
    latency_ms: float = 0.0  # added to every resource request
    watch_cut_after: int = 0  # close each watch stream after this many events (0: never)
    methods: list[str] = field(default_factory=list)  # only these HTTP methods (empty: all)
    seed: int | None = None
    _rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_rng")
        return data

    def update(self, data: Any) -> None:
        """Validate and apply a partial update; unknown fields or bad values are a 400."""
        if not isinstance(data, dict):
            raise bad_request("faults must be a JSON object")
        allowed = set(self.to_dict())
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise bad_request(f"unknown fault field(s) {unknown}; allowed: {sorted(allowed)}")
        rate = float(data.get("error_rate", self.error_rate))
        if not 0.0 <= rate <= 1.0:
            raise bad_request("error_rate must be between 0 and 1")
        codes = [int(c) for c in data.get("codes", self.codes)]
        bad = [c for c in codes if c not in SUPPORTED_CODES]
        if bad or not codes:
            raise bad_request(f"codes must be a non-empty subset of {list(SUPPORTED_CODES)}")
        latency = float(data.get("latency_ms", self.latency_ms))
        cut = int(data.get("watch_cut_after", self.watch_cut_after))
        if latency < 0 or cut < 0:
            raise bad_request("latency_ms and watch_cut_after must be >= 0")
        self.error_rate, self.codes, self.latency_ms, self.watch_cut_after = (
            rate,
            codes,
            latency,
            cut,
        )
        self.methods = [str(m).upper() for m in data.get("methods", self.methods)]
        if "seed" in data:
            self.seed = data["seed"]
            self._rng = random.Random(self.seed)

    def pick_error(self, method: str, resource: str, name: str) -> ApiError | None:
        if self.error_rate <= 0 or (self.methods and method not in self.methods):
            return None
        if self._rng.random() >= self.error_rate:
            return None
        code = self._rng.choice(self.codes)
        if code == 429:
            return too_many_requests(1)
        if code == 409:
            return conflict("", resource, name or "", "injected fault (drover faults)")
        return internal("injected fault (drover faults)")

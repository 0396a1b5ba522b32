"""Test support: deterministic series of Drover's serving router, as OpenMetrics text.

`Series` writes samples every `step` seconds from `before` seconds ago to `after` seconds ahead
(so instant queries at the current time find data for the whole test), for `promtool tsdb
create-blocks-from openmetrics`. Values are functions of the offset from "now" (seconds, may be
negative), so a test can change the load at a known moment. Each value is split over two
router replicas (label `ReplicaId`, as Ray adds) so the operator's sums over them are exercised.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from drover.api.versions import version_id
from drover.k8s import metrics

Value = float | Callable[[float], float]
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
ITL_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.1)
ROUTERS = ("router-a", "router-b")


def _at(value: Value, offset: float) -> float:
    return float(value(offset) if callable(value) else value)


class Series:
    def __init__(self, *, step: int = 2, before: int = 600, after: int = 1200) -> None:
        self.now = int(time.time())
        self.offsets = list(range(-before, after, step))
        self.step = step
        self.lines: list[str] = []

    def _labels(self, labels: dict[str, str]) -> str:
        return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"

    def _write(self, name: str, labels: dict[str, str], values: list[float]) -> None:
        tag = self._labels(labels)
        for offset, value in zip(self.offsets, values, strict=True):
            self.lines.append(f"{name}{tag} {value:g} {self.now + offset}")

    def gauge(self, name: str, labels: dict[str, str], value: Value) -> None:
        """A gauge whose total over the router replicas is `value`."""
        for router in ROUTERS:
            each = [_at(value, o) / len(ROUTERS) for o in self.offsets]
            self._write(name, {**labels, "ReplicaId": router}, each)

    def counter(self, name: str, labels: dict[str, str], rate: Value) -> None:
        """A counter whose total over the router replicas grows by `rate` per second."""
        for router in ROUTERS:
            total, values = 0.0, []
            for o in self.offsets:
                values.append(total)
                total += _at(rate, o) * self.step / len(ROUTERS)
            self._write(name, {**labels, "ReplicaId": router}, values)

    def requests(
        self,
        service: str,
        namespace: str,
        digest: str,
        *,
        rate: float,
        error_rate: float = 0.0,
        latency: float = 0.2,
        itl: float | None = None,
    ) -> str:
        """Traffic of one version: requests (a share failing with 500) and their latency, all
        requests taking `latency` seconds. Returns the version label."""
        version = version_id(digest)
        labels = {"service": service, "namespace": namespace, "version": version}
        self.counter(metrics.REQUESTS, {**labels, "code": "200"}, rate * (1 - error_rate))
        if error_rate:
            self.counter(metrics.REQUESTS, {**labels, "code": "500"}, rate * error_rate)
        for le in BUCKETS:
            self.counter(
                f"{metrics.LATENCY}_bucket", {**labels, "le": f"{le:g}"}, rate * (latency <= le)
            )
        self.counter(f"{metrics.LATENCY}_bucket", {**labels, "le": "+Inf"}, rate)
        self.counter(f"{metrics.LATENCY}_count", labels, rate)
        self.counter(f"{metrics.LATENCY}_sum", labels, rate * latency)
        if itl is not None:  # every request streamed, `itl` seconds between its tokens
            for le in ITL_BUCKETS:
                self.counter(
                    f"{metrics.ITL}_bucket", {**labels, "le": f"{le:g}"}, rate * (itl <= le)
                )
            self.counter(f"{metrics.ITL}_bucket", {**labels, "le": "+Inf"}, rate)
            self.counter(f"{metrics.ITL}_count", labels, rate)
            self.counter(f"{metrics.ITL}_sum", labels, rate * itl)
        return version

    def in_flight(self, service: str, namespace: str, digest: str, value: Value) -> str:
        return self.signal("inFlightRequests", service, namespace, digest, value)

    def signal(self, signal: str, service: str, namespace: str, digest: str, value: Value) -> str:
        """The series an autoscaling signal reads, with a service-wide total of `value`: a gauge
        for inFlightRequests, queueDepth and the vLLM engine's kvCacheUtilization and
        waitingRequests, a counter growing by `value`/s for tokensPerSecond."""
        version = version_id(digest)
        labels = {"service": service, "namespace": namespace, "version": version}
        if signal == "tokensPerSecond":
            self.counter(metrics.GENERATED_TOKENS, labels, value)
        else:
            gauge = {
                "inFlightRequests": metrics.IN_FLIGHT,
                "queueDepth": metrics.QUEUE_DEPTH,
                "kvCacheUtilization": metrics.KV_CACHE_USAGE,
                "waitingRequests": metrics.ENGINE_WAITING,
            }
            self.gauge(gauge[signal], labels, value)
        return version

    def text(self) -> str:
        return "\n".join(self.lines) + "\n# EOF\n"

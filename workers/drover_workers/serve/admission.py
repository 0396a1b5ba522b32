"""Serve layer: the router's admission of requests per version — the in-flight bound (429), the
503 with Retry-After when nothing can answer, and the deadline on a version that lost every
replica (a node failure) while a request waited on it.

A base of `Router` (serve.router); it reads the router's `args`, `in_flight`, `metrics` and
`ready_versions`.
"""

from __future__ import annotations

from typing import Any

from drover_workers.serve.http import unavailable
from drover_workers.serve.protocol import ApiError
from drover_workers.serve.routing import ReplicasLost, unless_replicas_lost

# A request waiting on a version with no running replica for this long is answered 503.
REPLICAS_LOST_GRACE_SECONDS = 3.0


class Admission:
    args: Any
    in_flight: dict[str, int]
    metrics: Any

    async def ready_versions(self) -> set[str]:
        raise NotImplementedError

    def _retry_after(self) -> int:
        return self.args.runtime.retry_after_seconds

    def _unavailable(self, message: str, code: str) -> ApiError:
        return unavailable(message, code, self._retry_after())

    async def _bounded(self, version: str, answer: Any, response: Any) -> Any:
        """Await `answer` (of the engine `response`) unless the version loses every replica
        meanwhile (a node failure): then cancel it and answer 503 with Retry-After, instead of
        holding the client until Serve has replaced the replica."""

        async def ready() -> bool:
            return version in await self.ready_versions()

        try:
            return await unless_replicas_lost(answer, ready, REPLICAS_LOST_GRACE_SECONDS)
        except ReplicasLost as exc:
            response.cancel()
            raise self._unavailable(f"version {version}: {exc}", "replica_unavailable") from None

    def _admit(self, version: str) -> None:
        if self.in_flight.get(version, 0) >= self.args.runtime.max_queued_requests:
            raise ApiError(
                429,
                f"version {version} has {self.in_flight[version]} requests in flight; retry later",
                type_="rate_limit_error",
                code="overloaded",
                retry_after=self._retry_after(),
            )
        self.in_flight[version] = self.in_flight.get(version, 0) + 1
        self.metrics.set_in_flight(version, self.in_flight[version])

    def _release(self, version: str) -> None:
        # A version removed while its requests ran keeps its count until they end.
        self.in_flight[version] = self.in_flight.get(version, 1) - 1
        self.metrics.set_in_flight(version, self.in_flight[version])

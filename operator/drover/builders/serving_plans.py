"""Builders layer: what an InferenceService serves, as plain values: the live versions
(`VersionPlan`), the engines they share (`EnginePlan`, one per set of base weights), the index
(`IndexPlan`), and the storage claims each of them reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from drover.api.versions import version_app, version_id
from drover.builders.meta import model_mount_path


@dataclass(frozen=True)
class VersionPlan:
    """One live version: its weights, its share of traffic and its replica count."""

    model: str
    digest: str
    claim: str
    path: str
    adapter_claim: str = ""
    adapter_path: str = ""
    adapter_digest: str = ""
    weight: int = 100
    replicas: int = 1
    # Deliberate faults (tests and benchmarks only), from the model's `drover.dev/faults`.
    faults: Mapping[str, float] | None = None

    @property
    def full_digest(self) -> str:
        """The digest that identifies this version: `base+adapter` when it has an adapter."""
        return f"{self.digest}+{self.adapter_digest}" if self.adapter_digest else self.digest

    @property
    def id(self) -> str:
        """Stable version id from the weights (and adapter): the same weights, the same id."""
        return version_id(self.full_digest)

    @property
    def engine_id(self) -> str:
        """The id of the engine that serves this version: its base weights' version id (its own
        id unless it is a LoRA version)."""
        return version_id(self.digest)

    @property
    def base_model(self) -> str:
        return self.model.partition("+")[0]

    def app(self, service: str) -> str:
        """The Serve application that serves this version (its engine's)."""
        return version_app(service, self.engine_id)


@dataclass(frozen=True)
class EnginePlan:
    """One version application: an engine for one set of base weights and the live versions it
    serves (the base itself and/or LoRA versions on it)."""

    versions: tuple[VersionPlan, ...]

    @property
    def base(self) -> VersionPlan:
        return self.versions[0]

    @property
    def id(self) -> str:
        return self.base.engine_id

    @property
    def replicas(self) -> int:
        """Every version it serves needs its replicas; they share them."""
        return max(v.replicas for v in self.versions)

    @property
    def adapters(self) -> tuple[VersionPlan, ...]:
        return tuple(v for v in self.versions if v.adapter_path)

    @property
    def own(self) -> VersionPlan | None:
        """The base version itself, when it is live (not only its LoRA versions)."""
        return next((v for v in self.versions if not v.adapter_path), None)


def plan_engines(versions: Sequence[VersionPlan]) -> list[EnginePlan]:
    """Group the live versions by base weights, in the order they first appear."""
    groups: dict[str, list[VersionPlan]] = {}
    for v in versions:
        groups.setdefault(v.engine_id, []).append(v)
    return [EnginePlan(tuple(group)) for group in groups.values()]


def adapter_path_of(v: VersionPlan) -> str:
    return f"{model_mount_path(v.adapter_claim)}/{v.adapter_path}"


@dataclass(frozen=True)
class IndexPlan:
    claim: str
    path: str
    embedder_claim: str
    embedder_path: str


def needed_claims(versions: Sequence[VersionPlan], index: IndexPlan | None) -> set[str]:
    """The claims the live versions and the index read: weights, adapters, index, embedder."""
    claims = {v.claim for v in versions} | {v.adapter_claim for v in versions if v.adapter_claim}
    if index is not None:
        claims |= {index.claim, index.embedder_claim}
    return claims


def engine_claims(engine: EnginePlan) -> set[str]:
    """The claims an engine reads: its base weights and its LoRA versions' adapters."""
    return {engine.base.claim} | {v.adapter_claim for v in engine.versions if v.adapter_claim}

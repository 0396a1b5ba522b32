"""Serve layer: which replica of one version answers a request. Pure: loads and prefixes in, a
replica and its reason out; no Ray, no clock.

vLLM keeps the KV cache of prompts it has seen (prefix caching), so a request whose prompt starts
like an earlier one (the same system prompt, retrieved context or earlier turns of a chat) is
prefilled faster on the replica that saw it. `prefix_blocks` cuts the prompt into blocks of
characters chained by hash (as vLLM chains its KV blocks); `PrefixIndex` remembers which blocks
this router sent to which replica; `decide_replica` prefers the session's replica, else the
replica holding the longest prefix, unless that replica is busier than the least loaded one by
more than `RoutingPolicy.max_imbalance` or its engine is saturated: a hot prefix then spreads
to a second replica, which caches it too.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SESSION_HIT = "session_hit"  # the client's session went back to its replica
PREFIX_HIT = "prefix_hit"  # the replica holding the longest prefix took it
PREFERRED_BUSY = "preferred_busy"  # a replica was preferred but too busy: the least loaded took it
NO_MATCH = "no_match"  # no replica held any of its prefix: the least loaded took it
OUTCOMES = (SESSION_HIT, PREFIX_HIT, PREFERRED_BUSY, NO_MATCH)


@dataclass(frozen=True)
class RoutingPolicy:
    """The knobs of `decide_replica` (request_router_kwargs of the model deployment)."""

    block_chars: int = 128  # characters per prefix block (~32 tokens of English)
    max_imbalance: int = 4  # the preferred replica may hold this many more requests than the least
    kv_cache_high: float = 0.9  # an engine this full is saturated: not preferred
    min_match_blocks: int = 1  # a shorter common prefix is no preference
    max_blocks_per_replica: int = 65536  # blocks remembered per replica (least recently used go)
    max_sessions: int = 65536  # sessions remembered (least recently used go)

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> RoutingPolicy:
        """From camelCase or snake_case keys; unknown keys are ignored (labels travel there too)."""
        names = {f: f for f in cls.__dataclass_fields__}
        names.update({_camel(f): f for f in cls.__dataclass_fields__})
        values = {names[k]: v for k, v in kwargs.items() if k in names}
        return cls(**values)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@dataclass(frozen=True)
class ReplicaLoad:
    """What the router knows of one replica's load."""

    replica: str
    ongoing: int  # requests sent there and not answered yet (running plus queued)
    waiting: int = 0  # requests vLLM's scheduler holds back (engine's own metric)
    kv_cache_usage: float = 0.0  # share of the KV cache in use, 0..1 (engine's own metric)
    cached_blocks: int = 0  # prefix blocks this router remembers there

    def saturated(self, policy: RoutingPolicy) -> bool:
        return self.kv_cache_usage >= policy.kv_cache_high


@dataclass(frozen=True)
class ReplicaChoice:
    replica: str
    outcome: str  # one of OUTCOMES
    reason: str
    preferred: str | None = None  # the replica the session or prefix pointed at


def prompt_text(request: Mapping[str, Any]) -> str:
    """The text that leads the rendered prompt: the completion prompt, or the chat's messages in
    order with their roles (a chat template renders them in this order, so two chats that share
    their first messages share the rendered prompt's first tokens)."""
    messages = request.get("messages")
    if messages:
        return "".join(f"<|{m.get('role', '')}|>{m.get('content', '')}\n" for m in messages)
    prompt = request.get("prompt")
    return prompt if isinstance(prompt, str) else ""


def prefix_blocks(text: str, block_chars: int, salt: str = "") -> list[bytes]:
    """Hashes of the prompt's whole leading blocks, each chained to the ones before it (as vLLM
    chains KV blocks), so equal hashes mean equal prefixes. `salt` separates caches that cannot
    share blocks (a LoRA adapter's KV differs from its base's)."""
    hashes, previous = [], salt.encode()
    for start in range(0, len(text) - block_chars + 1, block_chars):
        block = text[start : start + block_chars].encode()
        previous = hashlib.blake2b(previous + block, digest_size=8).digest()
        hashes.append(previous)
    return hashes


@dataclass
class PrefixIndex:
    """The prefix blocks this router sent to each replica, least recently used first: an
    approximation of what each engine's prefix cache holds."""

    max_blocks: int = 65536
    blocks: dict[str, OrderedDict[bytes, None]] = field(default_factory=dict)

    def matched(self, hashes: Sequence[bytes], replicas: Sequence[str]) -> dict[str, int]:
        """Leading blocks of `hashes` each replica holds."""
        out = {}
        for replica in replicas:
            held, n = self.blocks.get(replica, {}), 0
            while n < len(hashes) and hashes[n] in held:
                n += 1
            out[replica] = n
        return out

    def record(self, replica: str, hashes: Sequence[bytes]) -> None:
        held = self.blocks.setdefault(replica, OrderedDict())
        for h in hashes:
            held[h] = None
            held.move_to_end(h)
        while len(held) > self.max_blocks:
            held.popitem(last=False)

    def forget(self, keep: set[str]) -> None:
        """Drop replicas that are gone (their caches went with them)."""
        for replica in set(self.blocks) - keep:
            del self.blocks[replica]

    def size(self, replica: str) -> int:
        return len(self.blocks.get(replica, ()))


@dataclass
class SessionIndex:
    """The replica that last answered each session, least recently used first."""

    max_sessions: int = 65536
    replicas: OrderedDict[str, str] = field(default_factory=OrderedDict)

    def get(self, session: str) -> str | None:
        return self.replicas.get(session) if session else None

    def record(self, session: str, replica: str) -> None:
        if not session:
            return
        self.replicas[session] = replica
        self.replicas.move_to_end(session)
        while len(self.replicas) > self.max_sessions:
            self.replicas.popitem(last=False)


def _least_loaded(loads: Sequence[ReplicaLoad], policy: RoutingPolicy) -> ReplicaLoad:
    """Unsaturated first, then fewest requests, fewest waiting, emptiest KV cache, and fewest
    remembered blocks (a new prefix goes where it evicts least); ties keep the given order."""
    return min(
        loads,
        key=lambda r: (
            r.saturated(policy),
            r.ongoing,
            r.waiting,
            r.kv_cache_usage,
            r.cached_blocks,
        ),
    )


def _acceptable(load: ReplicaLoad, least: ReplicaLoad, policy: RoutingPolicy) -> bool:
    """The preferred replica may take the request: not saturated (unless all are), and not
    busier than the least loaded replica by more than max_imbalance."""
    if load.saturated(policy) and not least.saturated(policy):
        return False
    return load.ongoing - least.ongoing <= policy.max_imbalance


def decide_replica(
    loads: Sequence[ReplicaLoad],
    matched: Mapping[str, int],
    *,
    session_replica: str | None = None,
    policy: RoutingPolicy = RoutingPolicy(),
) -> ReplicaChoice:
    """The replica for one request, and why.

    `loads` are the candidate replicas (in tie-break order), `matched` the leading prefix blocks
    each holds (PrefixIndex.matched), `session_replica` the replica of the request's session.
    Order of preference: the session's replica, else the replica with the longest prefix (the
    least loaded among equals), each only if `_acceptable`; else the least loaded replica.
    """
    if not loads:
        raise ValueError("decide_replica needs at least one candidate replica")
    least = _least_loaded(loads, policy)
    by_id = {r.replica: r for r in loads}
    session = by_id.get(session_replica or "")
    if session is not None and _acceptable(session, least, policy):
        return ReplicaChoice(session.replica, SESSION_HIT, "session's replica", session.replica)
    best = max((matched.get(r.replica, 0) for r in loads), default=0)
    if best < policy.min_match_blocks:
        if session is not None:
            return _busy(least, session, "session's replica")
        return ReplicaChoice(least.replica, NO_MATCH, _load_reason(least, "no cached prefix"))
    holders = [r for r in loads if matched.get(r.replica, 0) == best]
    preferred = _least_loaded(holders, policy)
    if _acceptable(preferred, least, policy):
        reason = f"holds {best} prefix blocks, {preferred.ongoing} in flight"
        return ReplicaChoice(preferred.replica, PREFIX_HIT, reason, preferred.replica)
    return _busy(least, preferred, f"holder of {best} prefix blocks")


def _busy(least: ReplicaLoad, preferred: ReplicaLoad, what: str) -> ReplicaChoice:
    why = (
        f"{what} {preferred.replica} is busy ({preferred.ongoing} in flight, KV cache "
        f"{preferred.kv_cache_usage:.0%})"
    )
    return ReplicaChoice(least.replica, PREFERRED_BUSY, _load_reason(least, why), preferred.replica)


def _load_reason(least: ReplicaLoad, why: str) -> str:
    return f"{why}: least loaded ({least.ongoing} in flight, {least.waiting} waiting)"

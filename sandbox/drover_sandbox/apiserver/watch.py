"""Local control plane, watch fan-out: a bounded event ring per resource for resume, and queues.

Each storage key (group, resource) keeps its last `capacity` events; a watch resuming from a
resourceVersion older than the oldest evicted event gets 410 Gone, as kube-apiserver's cache does.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

Event = tuple[int, str, dict[str, Any]]  # (resourceVersion, type, object)


class TooOld(Exception):
    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


@dataclass(eq=False)
class Subscriber:
    namespace: str | None
    queue: asyncio.Queue[Event | None] = field(default_factory=lambda: asyncio.Queue(100_000))
    overflowed: bool = False


class Channel:
    """Events of one storage key."""

    def __init__(self, capacity: int, floor_rv: int) -> None:
        self.ring: deque[Event] = deque(maxlen=capacity)
        self.evicted_rv = floor_rv  # events at or below this rv are no longer known
        self.subscribers: set[Subscriber] = set()

    def publish(self, event: Event) -> None:
        if len(self.ring) == self.ring.maxlen:
            self.evicted_rv = self.ring[0][0]
        self.ring.append(event)
        ns = (event[2].get("metadata") or {}).get("namespace")
        for sub in list(self.subscribers):
            if sub.namespace is not None and sub.namespace != ns:
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                # A watcher that cannot keep up is closed, as kube-apiserver does.
                sub.overflowed = True
                self.subscribers.discard(sub)
                sub.queue.get_nowait()
                sub.queue.put_nowait(None)

    def since(self, rv: int) -> list[Event]:
        if rv < self.evicted_rv:
            raise TooOld(rv, self.evicted_rv + 1)
        return [e for e in self.ring if e[0] > rv] if self.ring and self.ring[-1][0] > rv else []


class WatchHub:
    def __init__(self, capacity: int = 20_000, floor_rv: int = 0) -> None:
        self.capacity = capacity
        self.floor_rv = floor_rv
        self.channels: dict[tuple[str, str], Channel] = {}

    def channel(self, key: tuple[str, str]) -> Channel:
        ch = self.channels.get(key)
        if ch is None:
            ch = self.channels[key] = Channel(self.capacity, self.floor_rv)
        return ch

    def publish(self, key: tuple[str, str], event: Event) -> None:
        self.channel(key).publish(event)

    def subscribe(self, key: tuple[str, str], namespace: str | None) -> Subscriber:
        sub = Subscriber(namespace)
        self.channel(key).subscribers.add(sub)
        return sub

    def unsubscribe(self, key: tuple[str, str], sub: Subscriber) -> None:
        self.channel(key).subscribers.discard(sub)

    def close_all(self) -> None:
        for ch in self.channels.values():
            for sub in list(ch.subscribers):
                sub.queue.put_nowait(None)
            ch.subscribers.clear()

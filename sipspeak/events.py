"""The in-process event bus: calls, agents and trunks publish; the dialer and web subscribe.

Publishing never blocks and never fails because of a subscriber: each subscriber has a
bounded queue, and a subscriber that falls behind loses its oldest events (it is told how
many through ``dropped``) rather than slowing the call path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    """``topic`` like ``"call.answered"``, ``"agent.state"``, ``"trunk.state"``."""

    topic: str
    data: dict[str, Any] = field(default_factory=dict)


class Subscription:
    def __init__(self, bus: EventBus, prefixes: tuple[str, ...], maxsize: int) -> None:
        self._bus = bus
        self.prefixes = prefixes
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.dropped = 0

    def wants(self, topic: str) -> bool:
        return not self.prefixes or topic.startswith(self.prefixes)

    def offer(self, event: Event) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    async def get(self) -> Event:
        return await self.queue.get()

    def close(self) -> None:
        self._bus._subscribers.discard(self)

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            yield await self.queue.get()


class EventBus:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()

    def subscribe(self, *prefixes: str, maxsize: int = 1000) -> Subscription:
        sub = Subscription(self, prefixes, maxsize)
        self._subscribers.add(sub)
        return sub

    def publish(self, topic: str, **data: Any) -> Event:
        event = Event(topic, data)
        for sub in list(self._subscribers):
            if sub.wants(topic):
                sub.offer(event)
        return event

"""Every event a test's bus published, with a wait for the one a test expects."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from sipspeak.events import Event, EventBus

__all__ = ["BusLog"]


class BusLog:
    """Subscribes to everything on ``bus`` from construction on (a large queue: a whole
    end-to-end test's events fit)."""

    def __init__(self, bus: EventBus) -> None:
        self.sub = bus.subscribe(maxsize=100_000)
        self.events: list[Event] = []

    def _pull(self) -> None:
        while not self.sub.queue.empty():
            self.events.append(self.sub.queue.get_nowait())

    async def wait(self, topic: str, timeout: float = 15.0, **match: Any) -> Event:
        """The first event on ``topic`` whose data has the ``match`` values (seen before the
        call or arriving within ``timeout`` seconds); AssertionError naming what came."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = 0
        while True:
            self._pull()
            for event in self.events[seen:]:
                if event.topic == topic and all(event.data.get(k) == v for k, v in match.items()):
                    return event
            seen = len(self.events)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no {topic} {match}; got {[e.topic for e in self.events]}")
            with contextlib.suppress(TimeoutError):
                self.events.append(await asyncio.wait_for(self.sub.get(), remaining))

    def all(self, topic: str) -> list[Event]:
        """Every event on ``topic`` so far."""
        self._pull()
        return [e for e in self.events if e.topic == topic]

    def topics(self) -> list[str]:
        """The topics so far, in order."""
        self._pull()
        return [e.topic for e in self.events]

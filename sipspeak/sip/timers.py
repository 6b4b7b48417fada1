"""Timer values and one deadline queue for the whole SIP core (RFC 3261 §17, Table 4).

Timers are data: a deadline (float seconds on the owner's clock) per RFC timer.
``TimerQueue`` keeps every owner's deadlines in one heap so the asyncio shell
needs a single ``call_at``: ``get_timer()`` is the earliest deadline and
``handle_timer(now)`` fires every owner whose deadline has come.  Entries are
invalidated lazily: cancelling a timer costs nothing, ``get_timer`` skips
entries whose owner no longer has that deadline, and an owner asked to
``handle_timer`` with nothing due does nothing.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class TimerValues:
    """T1, T2, T4 of RFC 3261 §17.1.1.1 / Table 4 (seconds)."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @property
    def timeout(self) -> float:
        """64*T1: Timers B, F, H, J, L, M."""
        return 64 * self.t1


class TimerOwner(Protocol):
    def get_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...


class TimerQueue:
    """A heap of (deadline, owner) shared by transactions, dialogs and the user agent."""

    __slots__ = ("_counter", "_heap")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TimerOwner]] = []
        self._counter = itertools.count()

    def schedule(self, deadline: float, owner: TimerOwner) -> None:
        heapq.heappush(self._heap, (deadline, next(self._counter), owner))

    def get_timer(self) -> float | None:
        """Earliest live deadline, or None.

        An entry is stale when its owner's earliest pending deadline is later
        (the timer was cancelled, e.g. a 2xx retransmission stopped by the
        ACK): dropping it here saves the shell a useless wake-up."""
        heap = self._heap
        while heap:
            deadline, _, owner = heap[0]
            pending = owner.get_timer()
            if pending is not None and pending <= deadline:
                return deadline
            heapq.heappop(heap)
        return None

    def pop_due(self, now: float) -> list[TimerOwner]:
        """Owners with a deadline at or before ``now``, each once, earliest first."""
        due: list[TimerOwner] = []
        seen: set[int] = set()
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, owner = heapq.heappop(heap)
            if id(owner) not in seen:
                seen.add(id(owner))
                due.append(owner)
        return due

    def __len__(self) -> int:
        return len(self._heap)

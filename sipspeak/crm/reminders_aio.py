"""The asyncio shell of the task reminders (:mod:`.reminders`): one owned task that sends what
is due, then waits for :meth:`TaskReminders.get_timer` (or a :meth:`ReminderService.wake`).

Started after storage opens, so the reminders whose time passed while the service was down go
out at once.  A failed round is logged and tried again at the next recheck.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sipspeak.crm.reminders import RECHECK_MS, TaskReminders
from sipspeak.events import EventBus
from sipspeak.storage import Database, StorageError, now_ms

__all__ = ["ReminderService"]

log = logging.getLogger(__name__)


class ReminderService:
    def __init__(self, db: Database, bus: EventBus, *,
                 clock: Callable[[], int] = now_ms) -> None:
        self.core = TaskReminders(db, bus.publish)
        self._clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="task-reminders")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def wake(self) -> None:
        """Look now (a task was added or moved, the clock was moved on)."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                sent = await self.core.handle_timer(self._clock())
                if sent:
                    log.info("task reminders sent: %d", len(sent))
                wait_ms = await self.core.get_timer(self._clock()) - self._clock()
            except StorageError as exc:
                log.error("task reminders: %s", exc)
                wait_ms = RECHECK_MS
            except Exception:  # one bad round must not end the reminders
                log.exception("task reminders failed; trying again later")
                wait_ms = RECHECK_MS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0, wait_ms) / 1000)
            self._wake.clear()

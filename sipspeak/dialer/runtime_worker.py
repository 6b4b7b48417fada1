"""The campaign runtime's storage worker: one owned task that runs its jobs one by one, in order.

Dialler decisions are made at once, in the callbacks of the call layer; what they write (contact
outcomes, operator intervals) and what pacing reads (due contacts, claims) is queued here as jobs.
One task, one job at a time: writes keep their order, and no two pacing picks overlap, so a
contact cannot be claimed by two picks of this process at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

__all__ = ["Job", "StorageWorker"]

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class StorageWorker:
    def __init__(self, name: str) -> None:
        self._name = name
        self._jobs: asyncio.Queue[tuple[Job, asyncio.Future[None] | None]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._work(), name=self._name)

    def enqueue(self, job: Job) -> None:
        """Run ``job`` after the ones already queued; its failure is logged."""
        self._jobs.put_nowait((job, None))

    async def submit(self, job: Job) -> None:
        """Run ``job`` after the ones already queued and wait for it (its error is raised)."""
        if not self.running:
            raise RuntimeError(f"{self._name} is not running")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._jobs.put_nowait((job, future))
        await future

    async def join(self) -> None:
        """Wait until every job queued so far is done."""
        await self._jobs.join()

    async def aclose(self, *, timeout: float = 10.0) -> None:
        """Finish the queued jobs (at most ``timeout`` seconds), then stop the task."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._jobs.join(), timeout)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def _work(self) -> None:
        while True:
            job, future = await self._jobs.get()
            try:
                await job()
            except asyncio.CancelledError:
                if future is not None and not future.done():
                    future.cancel()
                raise
            except Exception as exc:
                log.exception("%s: job failed", self._name)
                if future is not None and not future.done():
                    future.set_exception(exc)
            else:
                if future is not None and not future.done():
                    future.set_result(None)
            finally:
                self._jobs.task_done()

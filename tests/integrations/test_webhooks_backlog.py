"""The webhooks outbox under a backlog: its queries seek in their indexes (no scan of the
outbox, no sort of every pending row), a receiver's backlog of thousands of deliveries drains
with one read per batch — in order, one request per receiver, oldest first across receivers
when the slots are short — and the clean-up deletes in short transactions."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from sipspeak.events import EventBus
from sipspeak.integrations.webhook_outbox import DUE_BATCH, WebhookOutbox
from sipspeak.integrations.webhooks import SIGNATURE_HEADER, envelope, verify
from sipspeak.storage import Database
from sipspeak.storage.repositories.webhooks import PRUNE_BATCH

SECRET = "backlog-secret-0123456789"
T0 = 1_780_000_000_000


class Receiver:
    """Endpoints on 127.0.0.1 that take every signed event; the order the events arrived in
    (path, the event's ``n``) and how many requests each path held at once."""

    def __init__(self) -> None:
        self.got: list[tuple[str, int]] = []
        self.unsigned = 0
        self.in_flight: dict[str, int] = {}
        self.most_in_flight: dict[str, int] = {}
        self.most_in_flight_total = 0
        self.server: TestServer | None = None

    def url(self, path: str) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}{path}"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not verify(SECRET, body, request.headers.get(SIGNATURE_HEADER)):
            self.unsigned += 1
            return web.Response(status=401)
        path = request.path
        self.got.append((path, int(json.loads(body)["data"]["n"])))
        self.in_flight[path] = self.in_flight.get(path, 0) + 1
        self.most_in_flight[path] = max(self.most_in_flight.get(path, 0), self.in_flight[path])
        self.most_in_flight_total = max(self.most_in_flight_total,
                                        sum(self.in_flight.values()))
        try:
            await asyncio.sleep(0)  # held over a turn of the loop: a second request shows
        finally:
            self.in_flight[path] -= 1
        return web.Response(status=200, text="ok")

    def numbers(self, path: str) -> list[int]:
        return [n for p, n in self.got if p == path]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    stand_in = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", stand_in.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    stand_in.server = server
    yield stand_in
    await server.close()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "outbox.db")
    yield database
    await database.close()


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


async def endpoint(db: Database, name: str, url: str) -> int:
    return await db.webhooks.create(name=name, url=url, events=["call.ended"], secret=SECRET)


async def backlog(db: Database, hook: int, numbers: range, *, at: int, step: int = 1,
                  chunk: int = 50) -> None:
    """Deliveries numbered ``numbers`` for ``hook``, each ``chunk`` due ``step`` ms after
    the one before (from ``at``), stored as the collector stores them."""
    values = list(numbers)
    for start in range(0, len(values), chunk):
        rows = [(hook, f"e{hook}-{n}", "call.ended",
                 envelope(event_id=f"e{hook}-{n}", event_type="call.ended", at_ms=at,
                          data={"n": n})) for n in values[start:start + chunk]]
        await db.webhook_deliveries.add_many(rows, now=at + (start // chunk) * step)


def counted(db: Database, monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """Count the calls of ``db.webhook_deliveries.<name>`` (one element per call)."""
    calls: list[int] = []
    real = getattr(db.webhook_deliveries, name)

    async def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return await real(*args, **kwargs)

    monkeypatch.setattr(db.webhook_deliveries, name, counting)
    return calls


async def settled(what: Callable[[], Awaitable[Any]], *, timeout: float = 120.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await what()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"not settled: {value!r}")
        await asyncio.sleep(0.05)


async def sql_of(db: Database, monkeypatch: pytest.MonkeyPatch,
                 call: Callable[[], Awaitable[Any]]) -> list[tuple[str, tuple[Any, ...]]]:
    """The statements ``call`` ran, with their parameters."""
    seen: list[tuple[str, tuple[Any, ...]]] = []
    fetchall, execute = db.fetchall, db.execute

    async def recording_fetchall(sql: str, params: Any = ()) -> Any:
        seen.append((sql, tuple(params)))
        return await fetchall(sql, params)

    async def recording_execute(sql: str, params: Any = ()) -> Any:
        seen.append((sql, tuple(params)))
        return await execute(sql, params)

    monkeypatch.setattr(db, "fetchall", recording_fetchall)
    monkeypatch.setattr(db, "execute", recording_execute)
    try:
        await call()
    finally:
        monkeypatch.undo()
    return seen


async def plan(db: Database, sql: str, params: tuple[Any, ...]) -> str:
    rows = await db.fetchall(f"EXPLAIN QUERY PLAN {sql}", params)
    return "\n".join(str(dict(row)["detail"]) for row in rows)


async def test_the_outbox_queries_seek_in_their_indexes(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = [await endpoint(db, name, f"http://127.0.0.1:9/{name}") for name in ("a", "b")]
    for hook in hooks:
        await backlog(db, hook, range(300), at=T0)
    ended = await db.webhook_deliveries.due(webhook_id=hooks[0], now=T0, limit=20)
    for delivery in ended:
        await db.webhook_deliveries.sent(delivery.id, status=200, at=T0)

    # The next due deliveries of an endpoint: a seek in the pending index, read in the order
    # they are sent and stopped at the limit — no temporary sort of every due row.
    [(due_sql, due_params)] = await sql_of(db, monkeypatch, lambda: db.webhook_deliveries.due(
        webhook_id=hooks[0], now=T0 + 10, limit=DUE_BATCH))
    due_plan = await plan(db, due_sql, due_params)
    assert "SEARCH webhook_deliveries USING INDEX webhook_deliveries_pending" in due_plan, due_plan
    assert "TEMP B-TREE" not in due_plan and "SCAN" not in due_plan, due_plan
    # What the sender looks at on every pass: one seek per endpoint, in the index alone
    # (no body read); the settings page's counts likewise.
    for name in ("first_due", "pending_counts"):
        [(sql, params)] = await sql_of(db, monkeypatch,
                                       getattr(db.webhook_deliveries, name))
        found = await plan(db, sql, params)
        assert "USING COVERING INDEX webhook_deliveries_pending" in found, (name, found)
        assert "TEMP B-TREE" not in found and "SCAN d" not in found, (name, found)
        assert "SCAN webhook_deliveries" not in found, (name, found)
    # The clean-up finds what ended long ago by a seek, not a scan of the whole outbox.
    statements = await sql_of(db, monkeypatch,
                              lambda: db.webhook_deliveries.prune(before=T0 + 1))
    [(prune_sql, prune_params)] = statements
    prune_plan = await plan(db, prune_sql, prune_params)
    assert "USING INDEX webhook_deliveries_ended (created_at<?)" in prune_plan, prune_plan
    assert "SCAN" not in prune_plan, prune_plan

    # And they return what they say.
    assert await db.webhook_deliveries.first_due() == {hooks[0]: T0, hooks[1]: T0}
    assert await db.webhook_deliveries.pending_counts() == {hooks[0]: 280, hooks[1]: 300}
    batch = await db.webhook_deliveries.due(webhook_id=hooks[0], now=T0 + 1, limit=40)
    assert [json.loads(d.body)["data"]["n"] for d in batch] == list(range(20, 60))
    assert all(d.webhook_id == hooks[0] and d.state == "pending" for d in batch)


async def test_a_backlog_of_thousands_drains_with_one_read_per_batch(
        db: Database, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """A receiver down for a while left thousands of due deliveries (another receiver a
    few): they go out in order, one request per receiver at a time, and the outbox reads
    them a batch at a time instead of once per delivery."""
    crm = await endpoint(db, "crm", receiver.url("/crm"))
    erp = await endpoint(db, "erp", receiver.url("/erp"))
    await backlog(db, crm, range(3000), at=T0)
    await backlog(db, erp, range(150), at=T0 + 7)
    await backlog(db, crm, range(3000, 3050), at=T0 + 3_600_000)  # not due yet
    due_calls = counted(db, monkeypatch, "due")
    passes = counted(db, monkeypatch, "first_due")
    clock = Clock(T0 + 3_000_000)
    outbox = WebhookOutbox(db, EventBus(), clock=clock, concurrency=2)
    await outbox.start()
    try:
        await settled(lambda: _pending_is(db, {crm: 50}))
        assert receiver.numbers("/crm") == list(range(3000))  # each in its order
        assert receiver.numbers("/erp") == list(range(150))
        batches = math.ceil(3000 / DUE_BATCH) + math.ceil(150 / DUE_BATCH)
        assert len(due_calls) <= batches + 2, len(due_calls)
        assert len(passes) <= len(due_calls) + 3, len(passes)
        # The later ones go when they are due.
        clock.now = T0 + 3_600_000
        outbox.wake()
        await settled(lambda: _pending_is(db, {}))
        assert receiver.numbers("/crm") == list(range(3050))
    finally:
        await outbox.aclose()
    assert receiver.unsigned == 0
    assert receiver.most_in_flight == {"/crm": 1, "/erp": 1}
    assert receiver.most_in_flight_total <= 2
    sent = await db.webhook_deliveries.list(state="sent", limit=500)
    assert all(d.attempts == 1 and d.last_status == 200 for d in sent)


async def _pending_is(db: Database, expected: dict[int, int]) -> bool:
    return await db.webhook_deliveries.pending_counts() == expected


async def test_with_the_slots_short_the_oldest_delivery_goes_first(
        db: Database, receiver: Receiver) -> None:
    """One slot, two receivers: a batch of one receiver's backlog stops for the other's
    delivery that is due earlier, so the deliveries go out oldest first across receivers."""
    slow = await endpoint(db, "slow", receiver.url("/slow"))
    quick = await endpoint(db, "quick", receiver.url("/quick"))
    await backlog(db, slow, range(150), at=T0, step=10, chunk=1)  # due T0 … T0+1490
    await backlog(db, quick, range(1000, 1003), at=T0 + 205, step=500, chunk=1)
    outbox = WebhookOutbox(db, EventBus(), clock=Clock(T0 + 10_000), concurrency=1)
    await outbox.start()
    try:
        await settled(lambda: _pending_is(db, {}))
    finally:
        await outbox.aclose()
    due_at = {("/slow", n): T0 + 10 * n for n in range(150)}
    due_at |= {("/quick", 1000 + k): T0 + 205 + 500 * k for k in range(3)}
    assert receiver.got == sorted(due_at, key=due_at.__getitem__)
    assert receiver.most_in_flight_total == 1


async def test_old_deliveries_are_forgotten_in_short_transactions(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = await endpoint(db, "crm", "http://127.0.0.1:9/crm")
    old = 2 * PRUNE_BATCH + 300
    await backlog(db, hook, range(old), at=T0, step=0, chunk=500)
    await backlog(db, hook, range(old, old + 40), at=T0 + 5_000)  # ended, but recently
    await backlog(db, hook, range(old + 40, old + 50), at=T0)      # old, still pending
    async with db.transaction():  # the old ones were sent, the recent ones failed
        for delivery in await db.webhook_deliveries.due(webhook_id=hook, now=T0 + 5_000,
                                                        limit=old + 50):
            n = json.loads(delivery.body)["data"]["n"]
            if n < old:
                await db.webhook_deliveries.sent(delivery.id, status=200, at=T0)
            elif n < old + 40:
                await db.webhook_deliveries.failed(delivery.id, status=500, error="HTTP 500")

    statements = await sql_of(db, monkeypatch,
                              lambda: db.webhook_deliveries.prune(before=T0 + 1))
    deletes = [s for s, _ in statements if s.startswith("DELETE")]
    # Each DELETE is its own transaction (db.execute outside one), at most a batch each.
    assert len(deletes) == math.ceil(old / PRUNE_BATCH), statements
    left = await db.webhook_deliveries.list(webhook_id=hook, limit=1000)
    assert sorted((d.state, json.loads(d.body)["data"]["n"]) for d in left) == sorted(
        [("failed", n) for n in range(old, old + 40)]
        + [("pending", n) for n in range(old + 40, old + 50)])
    assert await db.webhook_deliveries.prune(before=T0 + 1) == 0


async def test_the_clean_up_says_how_many_it_forgot(db: Database) -> None:
    hook = await endpoint(db, "crm", "http://127.0.0.1:9/crm")
    await backlog(db, hook, range(25), at=T0)
    for delivery in await db.webhook_deliveries.due(webhook_id=hook, now=T0, limit=25):
        await db.webhook_deliveries.sent(delivery.id, status=200, at=T0)
    assert await db.webhook_deliveries.prune(before=T0 + 1, batch=10) == 25
    assert await db.webhook_deliveries.list(webhook_id=hook) == []

"""Outgoing webhooks: the body, signature and retry schedule (sans-IO); the bus's call events
as webhook events; and the outbox delivering real calls' events (outbound calls through a sipp
provider) to a receiver on 127.0.0.1 that checks every signature — retried after failures,
kept across a restart, bounded in how many requests it makes at once, and telling the
administrators once when a delivery fails for good."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).parents[1] / "calls"))

import callworld
from callworld import World, free_port, start_provider

from sipspeak.dialer.ports import DialContact, ProjectDialSettings
from sipspeak.events import EventBus
from sipspeak.integrations.webhook_events import CallTracker, event_data
from sipspeak.integrations.webhook_outbox import WebhookOutbox
from sipspeak.integrations.webhooks import (
    EVENT_HEADER,
    ID_HEADER,
    RETRY_DELAYS_MS,
    SIGNATURE_HEADER,
    envelope,
    iso_time,
    retry_delay_ms,
    sign,
    verify,
)
from sipspeak.storage import Database
from sipspeak.storage.models import NewContact

SECRET = "0123456789abcdef-secret"
world, spawn = callworld.world, callworld.spawn  # the call tests' fixtures


# -- a receiver --------------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signed: bool

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


class Receiver:
    """A webhook receiver on 127.0.0.1.  Each path is one endpoint with its secret; every
    request's signature is checked (401 when it does not match), then it is answered from the
    path's ``replies`` in turn (the last repeats; 200 by default), after its ``gate`` opens if
    it has one.  Counts the requests it holds at once."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.replies: dict[str, list[int]] = {}
        self.gates: dict[str, asyncio.Event] = {}
        self.got: list[Received] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.server: TestServer | None = None
        self._arrived = asyncio.Event()

    def url(self, path: str) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}{path}"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        secret = self.secrets.get(request.path, SECRET)
        signed = verify(secret, body, request.headers.get(SIGNATURE_HEADER))
        self.got.append(Received(request.path, dict(request.headers), body, signed))
        self._arrived.set()
        if not signed:
            return web.Response(status=401, text="bad signature")
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            gate = self.gates.get(request.path)
            if gate is not None:
                await gate.wait()
            replies = self.replies.get(request.path, [200])
            status = replies.pop(0) if len(replies) > 1 else replies[0]
        finally:
            self.in_flight -= 1
        return web.Response(status=status, text="принято" if status < 300 else "сломано")

    def at(self, path: str) -> list[Received]:
        return [r for r in self.got if r.path == path]

    async def wait(self, count: int, path: str, *, timeout: float = 20.0) -> list[Received]:
        """The first ``count`` requests to ``path`` (waiting for them to arrive)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.at(path)) < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"{path}: {len(self.at(path))} of {count} requests came")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                pass
        return self.at(path)[:count]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    stand_in = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", stand_in.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    stand_in.server = server
    yield stand_in
    for gate in stand_in.gates.values():
        gate.set()
    await server.close()


class Clock:
    """The outbox's clock, moved on by the tests (retries are minutes apart)."""

    def __init__(self) -> None:
        self.now = 1_780_000_000_000

    def __call__(self) -> int:
        return self.now


async def settled(what: Any, *, timeout: float = 20.0) -> Any:
    """Wait until ``await what()`` is truthy; that value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await what()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"not settled: {value!r}")
        await asyncio.sleep(0.05)


# -- sans-IO -------------------------------------------------------------------------------------


def test_the_body_is_signed_with_hmac_sha256_of_its_bytes() -> None:
    body = envelope(event_id="e1", event_type="call.ended", at_ms=1_772_442_904_120,
                    data={"project_name": "Продажи", "outcome": "answered"})
    assert json.loads(body) == {"id": "e1", "type": "call.ended",
                                "timestamp": "2026-03-02T09:15:04.120Z",
                                "occurred_at": 1_772_442_904_120,
                                "data": {"project_name": "Продажи", "outcome": "answered"}}
    assert "Продажи" in body  # UTF-8 as is, not \u escapes
    raw = body.encode()
    # The value a receiver computes with the standard library (RFC 2104 HMAC, SHA-256).
    import hashlib
    import hmac
    expected = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert sign(SECRET, raw) == f"sha256={expected}"
    assert verify(SECRET, raw, f"sha256={expected}")
    assert not verify(SECRET, raw + b" ", f"sha256={expected}")
    assert not verify("another-secret-16", raw, f"sha256={expected}")
    assert not verify(SECRET, raw, None)
    assert iso_time(0) == "1970-01-01T00:00:00.000Z"


def test_retries_back_off_then_stop() -> None:
    delays = [retry_delay_ms(n) for n in range(1, len(RETRY_DELAYS_MS) + 2)]
    assert delays[:-1] == list(RETRY_DELAYS_MS) and delays[-1] is None
    assert all(a < b for a, b in itertools.pairwise(RETRY_DELAYS_MS))
    assert retry_delay_ms(0) is None


def _bus(topic: str, **data: Any) -> tuple[str, dict[str, Any]]:
    base = {"call_id": "c1", "cdr_id": 7, "project_id": 3, "operator_id": None,
            "contact_id": 11, "phone": "79031234567", "direction": "inbound",
            "kind": "inbound"}
    base.update(data)
    return topic, base


def test_a_calls_bus_events_become_webhook_events_with_its_facts() -> None:
    tracker = CallTracker()
    seen = []
    for topic, data in (
            _bus("call.answered", at=1_000),
            _bus("call.inbound", at=1_001, trunk_id=2),
            ("call.offered", {"call_id": "c1", "ring_id": "c1-r1", "user_id": 5,
                              "contact_id": 11, "at": 1_500}),
            ("call.offered", {"call_id": "c1", "ring_id": "c1-listen-9", "user_id": 9,
                              "at": 1_600}),
            _bus("call.bridged", at=2_000, operator_id=5),
            _bus("call.ended", at=9_000, operator_id=5, outcome="answered", sip_code=None,
                 recording="/data/rec.wav")):
        seen += tracker.take(topic, data, now=0, started_at=400 if not seen else None)
    assert [o.type for o in seen] == ["call.started", "call.answered", "call.inbound",
                                      "call.offered", "call.bridged", "call.ended"]
    started, offered, ended = seen[0], seen[3], seen[-1]
    assert started.at == 400 and started.data["started_at"] == 400  # the record's start
    # The offer names only the operator rung; the rest is the call's, known from before.
    assert (offered.operator_id, offered.project_id, offered.phone) == (5, 3, "79031234567")
    assert offered.data["ring_id"] == "c1-r1"
    assert ended.data | {"recorded": True} == ended.data
    assert (ended.data["duration_ms"], ended.data["talk_ms"]) == (8_600, 7_000)
    assert (ended.data["started_at"], ended.data["answered_at"], ended.data["bridged_at"],
            ended.data["ended_at"]) == (400, 1_000, 2_000, 9_000)
    assert "recording" not in ended.data  # a path on this server says nothing to a receiver
    assert not tracker.known("c1")  # forgotten at its end
    # A call whose first event is its end (a busy number) started when its record says.
    busy = tracker.take(*_bus("call.ended", call_id="c2", at=5_000, outcome="busy",
                              sip_code=486), now=0, started_at=4_200)
    assert [(o.type, o.at) for o in busy] == [("call.started", 4_200), ("call.ended", 5_000)]
    assert busy[1].data["duration_ms"] == 800 and busy[1].data["talk_ms"] == 0
    # Not a call's event, or no call id: nothing.
    assert tracker.take("agent.state", {"user_id": 1}, now=0) == []
    assert tracker.take("call.ended", {"outcome": "busy"}, now=0) == []


async def test_the_number_is_masked_where_the_project_hides_numbers(tmp_path: Path) -> None:
    [occurrence] = CallTracker().take(*_bus("call.started", at=1), now=0)
    db = await Database.open(tmp_path / "m.db")
    try:
        hidden = await db.projects.get(await db.projects.create("Скрытые", show_numbers=False))
        shown = await db.projects.get(await db.projects.create("Открытые"))
    finally:
        await db.close()
    masked = event_data(occurrence, project=hidden, operator_name="", full_numbers=False)
    assert (masked["phone"], masked["phone_masked"]) == ("7903*****67", True)
    whole = event_data(occurrence, project=hidden, operator_name="", full_numbers=True)
    assert (whole["phone"], whole["phone_masked"]) == ("79031234567", False)
    open_project = event_data(occurrence, project=shown, operator_name="", full_numbers=False)
    assert open_project["phone"] == "79031234567"
    # A project that is gone hides the number; a call without a project has none to hide.
    gone = event_data(occurrence, project=None, operator_name="", full_numbers=False)
    assert gone["phone"] == "7903*****67"
    bare = replace(occurrence, project_id=None)
    assert event_data(bare, project=None, operator_name="", full_numbers=False)[
        "phone"] == "79031234567"


# -- the outbox with real calls ------------------------------------------------------------------


async def _busy_provider(world: World, spawn: Any) -> tuple[int, int]:
    """A provider whose callee is busy (sipp), its registered trunk and a project with a
    contact; (trunk id, project id)."""
    _, port = await start_provider(spawn, "busy.xml")
    trunk_id = await world.add_trunk(port, host=f"sip:117049@127.0.0.1:{port}")
    await world.log.wait("trunk.state", trunk_id=trunk_id, state="registered")
    project_id = await world.add_project(trunk_id)
    await world.db.contacts.insert_many(project_id=project_id, upload_id=None, contacts=[
        NewContact(phone="79030001122")])
    return trunk_id, project_id


async def busy_call(world: World, trunk_id: int, project_id: int) -> str:
    """Dial the contact through the trunk; the call id once it ended (busy)."""
    contact = (await world.db.contacts.list(project_id=project_id))[0]
    call_id = world.runtime.calls.originate(
        DialContact(contact_id=contact.id, phone=contact.phone),
        ProjectDialSettings(project_id=project_id, trunk_id=trunk_id, caller_id="74950001122",
                            dial_timeout_ms=20_000, amd_enabled=False))
    await world.log.wait("call.ended", call_id=call_id)
    return call_id


async def _endpoint(db: Database, receiver: Receiver, path: str, **settings: Any) -> int:
    receiver.secrets[path] = settings.pop("secret", SECRET)
    values: dict[str, Any] = {"events": ["call.started", "call.ended"]}
    values.update(settings)
    return await db.webhooks.create(name=path.strip("/"), url=receiver.url(path),
                                    secret=receiver.secrets[path], **values)


async def test_a_failed_delivery_is_tried_again_until_the_receiver_takes_it(
        world: World, spawn: Any, receiver: Receiver) -> None:
    trunk_id, project_id = await _busy_provider(world, spawn)
    hook = await _endpoint(world.db, receiver, "/crm")
    receiver.replies["/crm"] = [500, 200]
    clock = Clock()
    outbox = WebhookOutbox(world.db, world.bus, clock=clock)
    await outbox.start()
    try:
        call_id = await busy_call(world, trunk_id, project_id)
        first = await receiver.wait(2, "/crm")
        assert [r.event["type"] for r in first] == ["call.started", "call.ended"]
        assert all(r.signed for r in first)
        assert first[1].headers[EVENT_HEADER] == "call.ended"
        assert first[1].headers[ID_HEADER] == first[1].event["id"]
        ended = first[1].event["data"]
        assert (ended["call_id"], ended["outcome"], ended["sip_code"]) == (call_id, "busy", 486)
        assert ended["project_id"] == project_id and ended["project_name"] == "Тест"
        assert ended["phone"] == "79030001122" and not ended["phone_masked"]
        assert ended["duration_ms"] == ended["ended_at"] - ended["started_at"]
        assert first[0].event["occurred_at"] == ended["started_at"]
        # The first answer was 500: tried again after the first delay, not before.
        pending = await settled(lambda: _retrying(world.db, 1))
        assert [(d.attempts, d.last_status, d.error) for d in pending] == [
            (1, 500, "HTTP 500: сломано")]
        await settled(lambda: _sent(world.db, 1))
        assert pending[0].next_attempt_at == clock.now + RETRY_DELAYS_MS[0]
        outbox.wake()
        await asyncio.sleep(0.2)
        assert len(receiver.at("/crm")) == 2
        clock.now += RETRY_DELAYS_MS[0]
        outbox.wake()
        again = (await receiver.wait(3, "/crm"))[2]
        failed_one = next(r for r in first if r.event["id"] == again.event["id"])
        assert again.body == failed_one.body and again.signed  # the same event, same bytes
        await settled(lambda: _sent(world.db, 2))
        rows = await world.db.webhook_deliveries.list(webhook_id=hook)
        assert sorted((d.state, d.attempts) for d in rows) == [("sent", 1), ("sent", 2)]
        await settled(lambda: _no_error(world.db, hook))
    finally:
        await outbox.aclose()


async def _none_pending(db: Database) -> bool:
    return not await db.webhook_deliveries.list(state="pending")


async def _no_error(db: Database, hook: int) -> bool:
    endpoint = await db.webhooks.get(hook)
    return endpoint.failing_since is None and endpoint.last_error == ""


async def test_an_event_being_sent_when_the_service_stops_is_sent_after_the_restart(
        world: World, spawn: Any, receiver: Receiver, tmp_path: Path) -> None:
    trunk_id, project_id = await _busy_provider(world, spawn)
    await _endpoint(world.db, receiver, "/slow", events=["call.ended"])
    receiver.gates["/slow"] = asyncio.Event()  # holds the request: no answer before the stop
    first = WebhookOutbox(world.db, world.bus)
    await first.start()
    await busy_call(world, trunk_id, project_id)
    [held] = await receiver.wait(1, "/slow")
    await first.aclose()  # stops in the middle of the request
    [row] = await world.db.webhook_deliveries.list()
    assert (row.state, row.attempts) == ("pending", 0)
    # The next process: its own connection to the database file, the receiver answers now.
    db = await Database.open(tmp_path / "calls.db")
    receiver.gates["/slow"].set()
    second = WebhookOutbox(db, EventBus())
    await second.start()
    try:
        resent = (await receiver.wait(2, "/slow"))[1]
        assert resent.body == held.body and resent.signed
        assert resent.headers[ID_HEADER] == held.event["id"]
        [row] = await settled(lambda: db.webhook_deliveries.list(state="sent"))
        assert row.attempts == 1 and row.last_status == 200
    finally:
        await second.aclose()
        await db.close()


async def test_requests_are_bounded_and_one_per_receiver_and_never_hold_up_a_call(
        world: World, spawn: Any, receiver: Receiver) -> None:
    trunk_id, project_id = await _busy_provider(world, spawn)
    for path in ("/a", "/b", "/c"):
        await _endpoint(world.db, receiver, path)
        receiver.gates[path] = asyncio.Event()
    outbox = WebhookOutbox(world.db, world.bus, concurrency=2)
    await outbox.start()
    try:
        call_id = await busy_call(world, trunk_id, project_id)
        # Two receivers hold their first request; nothing more is sent meanwhile: not the
        # third receiver's (no slot), not their own second event (one at a time each).
        await settled(lambda: _count(receiver, 2))
        await asyncio.sleep(0.3)
        assert len(receiver.got) == 2 and receiver.in_flight == 2
        # The call itself went on: it ended and its record was completed.
        for _ in range(200):
            if call_id in world.runtime.calls.finished:
                break
            await asyncio.sleep(0.05)
        row = await world.db.calls.get(world.runtime.calls.finished[call_id])
        assert row.result == "busy"
        for gate in receiver.gates.values():
            gate.set()
        for path in ("/a", "/b", "/c"):
            got = await receiver.wait(2, path)
            assert [r.event["type"] for r in got] == ["call.started", "call.ended"]
        assert receiver.most_in_flight == 2
        await settled(lambda: _none_pending(world.db))
    finally:
        await outbox.aclose()


async def _count(receiver: Receiver, n: int) -> bool:
    return len(receiver.got) >= n


async def test_the_last_failure_tells_the_administrators_once_per_outage(
        world: World, spawn: Any, receiver: Receiver) -> None:
    trunk_id, project_id = await _busy_provider(world, spawn)
    admin = await world.db.users.create(role="admin", full_name="А", email="a@x.test",
                                        password_hash="x", language="en")
    other = await world.db.users.create(role="admin", full_name="Б", email="b@x.test",
                                        password_hash="x")
    operator = await world.db.users.create(role="operator", full_name="О", email="o@x.test",
                                           password_hash="x")
    hook = await _endpoint(world.db, receiver, "/down")
    receiver.replies["/down"] = [503]
    clock = Clock()
    outbox = WebhookOutbox(world.db, world.bus, clock=clock, timeout_s=2)
    await outbox.start()
    try:
        await busy_call(world, trunk_id, project_id)
        await receiver.wait(2, "/down")
        for attempt, delay in enumerate(RETRY_DELAYS_MS, start=1):
            await settled(lambda n=attempt: _attempted(world.db, n))
            clock.now += delay
            outbox.wake()
        rows = await settled(lambda: _all_failed(world.db, 2))
        assert all(d.attempts == len(RETRY_DELAYS_MS) + 1 for d in rows)
        assert len(receiver.at("/down")) == 2 * (len(RETRY_DELAYS_MS) + 1)
        # Two events failed for good; each administrator is told once, in his language.
        [to_admin] = await world.db.notifications.unread(admin)
        assert to_admin.text.startswith(f"Webhook «down» ({receiver.url('/down')}) did not "
                                        "deliver an event after every attempt: HTTP 503")
        [to_other] = await world.db.notifications.unread(other)
        assert to_other.text.startswith("Вебхук «down»")
        assert await world.db.notifications.unread(operator) == []
        endpoint = await world.db.webhooks.get(hook)
        assert endpoint.failing_since is not None and endpoint.last_error == "HTTP 503: сломано"
        # The receiver is back: the next call's events get through, the outage is over.
        receiver.replies["/down"] = [200]
        await busy_call(world, trunk_id, project_id)
        await settled(lambda: _sent(world.db, 2))
        await settled(lambda: _no_error(world.db, hook))
        assert len(await world.db.notifications.unread(admin)) == 1
    finally:
        await outbox.aclose()


async def _attempted(db: Database, attempts: int) -> bool:
    rows = await db.webhook_deliveries.list()
    return len(rows) == 2 and all(d.attempts >= attempts for d in rows)


async def _all_failed(db: Database, count: int) -> list[Any]:
    rows = await db.webhook_deliveries.list(state="failed")
    return rows if len(rows) == count else []


async def _sent(db: Database, count: int) -> bool:
    return len(await db.webhook_deliveries.list(state="sent")) == count


async def test_a_receiver_that_does_not_answer_in_time_is_tried_again(
        world: World, spawn: Any, receiver: Receiver) -> None:
    trunk_id, project_id = await _busy_provider(world, spawn)
    await _endpoint(world.db, receiver, "/hangs", events=["call.ended"])
    nobody = f"http://127.0.0.1:{free_port()}/gone"
    await world.db.webhooks.create(name="gone", url=nobody, events=["call.ended"],
                                   secret=SECRET)
    receiver.gates["/hangs"] = asyncio.Event()  # never opened before the timeout
    outbox = WebhookOutbox(world.db, world.bus, timeout_s=1)
    await outbox.start()
    try:
        await busy_call(world, trunk_id, project_id)
        rows = await settled(lambda: _retrying(world.db, 2))
        errors = sorted(d.error for d in rows)
        assert errors[1] == "timeout"
        assert errors[0].startswith("Cannot connect to host 127.0.0.1")
        assert all(d.last_status is None and d.attempts == 1 for d in rows)
    finally:
        await outbox.aclose()


async def _retrying(db: Database, count: int) -> list[Any]:
    rows = [d for d in await db.webhook_deliveries.list(state="pending") if d.attempts >= 1]
    return rows if len(rows) == count else []


async def test_the_events_of_calls_that_end_at_the_stop_are_stored_before_it(
        world: World, spawn: Any, receiver: Receiver) -> None:
    trunk_id, project_id = await _busy_provider(world, spawn)
    await _endpoint(world.db, receiver, "/later")
    outbox = WebhookOutbox(world.db, world.bus)  # follows the bus from here on
    call_id = await busy_call(world, trunk_id, project_id)
    # Stopped as soon as started: the call's events were waiting for it on the bus.
    await outbox.start()
    await outbox.aclose()
    rows = await world.db.webhook_deliveries.list()
    assert sorted((d.event_type, d.state) for d in rows) == [
        ("call.ended", "pending"), ("call.started", "pending")]
    assert all(json.loads(d.body)["data"]["call_id"] == call_id for d in rows)
    assert receiver.got == []


async def test_an_endpoint_switched_off_gets_nothing_more(
        world: World, spawn: Any, receiver: Receiver) -> None:
    trunk_id, project_id = await _busy_provider(world, spawn)
    admin = await world.db.users.create(role="admin", full_name="А", email="a@x.test",
                                        password_hash="x")
    hook = await _endpoint(world.db, receiver, "/paused")
    receiver.replies["/paused"] = [503]
    clock = Clock()
    outbox = WebhookOutbox(world.db, world.bus, clock=clock)
    await outbox.start()
    try:
        await busy_call(world, trunk_id, project_id)
        await settled(lambda: _retrying(world.db, 2))
        await world.db.webhooks.update(hook, active=False)
        clock.now += RETRY_DELAYS_MS[0]
        outbox.wake()
        rows = await settled(lambda: _all_failed(world.db, 2))
        assert {d.error for d in rows} == {"вебхук выключен"}
        await busy_call(world, trunk_id, project_id)  # not even stored for it
        await asyncio.sleep(0.3)
        assert len(await world.db.webhook_deliveries.list()) == 2
        assert len(receiver.at("/paused")) == 2
        assert await world.db.notifications.unread(admin) == []  # switched off, not failing
    finally:
        await outbox.aclose()

"""A launched project dials its base end to end on 127.0.0.1.

Real parts: SQLite storage, the call layer (SIP endpoint, registrar, trunk, media), the campaign
runtime wired to it as ``serve`` wires it, sipp as the trunk provider (callees answer, are busy
or do not answer by number, see scenarios/trunk.xml) and two baresip operator phones that
register with digest auth and auto-answer. The operators' status comes over the bus as the
workspace publishes it (``agent.state``).

* 20 contacts: 6 answer and are bridged to an operator, 6 are busy, 6 do not answer, 2 are
  blacklisted and must never reach the trunk (sipp's message log is read at the end);
* busy / no-answer contacts get ``next_attempt_at = end + the first interval`` of their list;
* a second project on the same trunk is stopped after its first call: that call finishes and is
  recorded, none of its other contacts is dialled.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from buslog import BusLog
from childproc import Spawn, baresip_phone, free_port, free_port_range

from sipspeak.app import Services, start_campaigns, stop_campaigns
from sipspeak.calls.runtime import CallRuntime
from sipspeak.config import Config, load_config
from sipspeak.dialer.runtime import CampaignRuntime
from sipspeak.events import EventBus
from sipspeak.storage import Database
from sipspeak.storage.models import NewContact

pytestmark = pytest.mark.timeout(150)

SCENARIOS = Path(__file__).parent / "scenarios"
MINUTE = 60_000
ANSWER = [f"791100000{i:02d}" for i in range(1, 7)]
BUSY = [f"792200000{i:02d}" for i in range(1, 7)]
NO_ANSWER = [f"793300000{i:02d}" for i in range(1, 7)]
BLACKLISTED = ["79440000001", "79440000002"]
STOPPED = [f"793300001{i:02d}" for i in range(1, 6)]


@dataclass
class World:
    db: Database
    bus: EventBus
    calls: CallRuntime
    log: BusLog
    config: Config
    campaigns: CampaignRuntime | None = None


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    db = await Database.open(tmp_path / "dialer.db")
    bus = EventBus()
    log = BusLog(bus)
    first = free_port_range(400)
    config = load_config(environ={}).with_overrides({
        ("sip", "listen"): ["udp:127.0.0.1:0"],
        ("rtp", "port_min"): first, ("rtp", "port_max"): first + 400,
        ("rtp", "inactivity_timeout"): 20,
    })
    calls = await CallRuntime.start(config, db, bus, recordings_dir=tmp_path / "recordings",
                                    trunk_reconcile_interval=0.5)
    w = World(db, bus, calls, log, config)
    try:
        yield w
    finally:
        if w.campaigns is not None:
            w.campaigns.stop_dialling()
        await calls.aclose()
        if w.campaigns is not None:
            await w.campaigns.aclose()
        await db.close()


async def until(check: Callable[[], Any], what: str, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def start_trunk(spawn: Spawn) -> tuple[Any, int]:
    port = free_port()
    peer = await spawn(["sipp", "-sf", str(SCENARIOS / "trunk.xml"), "-i", "127.0.0.1",
                        "-p", str(port), "-mp", str(free_port()), "-key", "rtpport", "9",
                        "-nostdin", "-trace_msg", "-trace_err", "-timeout", "140s"])
    await asyncio.sleep(0.3)  # sipp binds its socket
    return peer, port


async def add_operator(w: World, spawn: Spawn, tmp_path: Path, extension: str,
                       group: int) -> int:
    password = f"pw-{extension}"
    user_id = await w.db.users.create(role="operator", full_name=f"Оператор {extension}",
                                      email=f"op{extension}@x.test", password_hash="x",
                                      extension=extension, sip_password=password)
    await w.db.groups.add_members(group, [user_id])
    directory = baresip_phone(tmp_path / f"phone{extension}", extension=extension,
                              password=password, registrar_port=w.calls.addresses[0].port,
                              seconds=120)
    phone = await spawn(["baresip", "-f", str(directory), "-t", "140"])
    try:
        await w.log.wait("phone.online", timeout=20, extension=extension)
    except AssertionError:
        raise AssertionError(await phone.stop()) from None
    return user_id


async def add_project(w: World, trunk: int, name: str, phones: list[str],
                      **settings: Any) -> tuple[int, dict[str, int]]:
    values: dict[str, Any] = {
        "trunk_id": trunk, "caller_id": "74950001122", "dial_timeout_s": 2,
        "client_time_from": "00:00", "client_time_to": "00:00",
        "retry_busy_intervals": "1;3", "retry_busy_attempts": 3,
        "retry_no_answer_intervals": "2;4", "retry_no_answer_attempts": 3,
        "max_attempts": 5, "queue_timeout_s": 20, "operator_timeout_s": 10,
        "strategy": "round_robin", "operator_auto_answer": True, "music_on_hold": True,
    }
    values.update(settings)
    project_id = await w.db.projects.create(name, **values)
    await w.db.contacts.insert_many(project_id=project_id, upload_id=None,
                                    contacts=[NewContact(phone=p) for p in phones])
    rows = await w.db.contacts.list(project_id=project_id, limit=1000)
    return project_id, {row.phone: row.id for row in rows}


def invited_numbers(tmp_path: Path) -> list[str]:
    """Every number sipp received an INVITE for (retransmissions counted once)."""
    numbers: set[tuple[str, str]] = set()
    for log in tmp_path.glob("trunk_*_messages.log"):
        text = log.read_text(errors="replace")
        for block in text.split("\n\n"):
            invite = re.search(r"^INVITE sip:(\d+)@", block, re.MULTILINE)
            call_id = re.search(r"^Call-ID:\s*(\S+)", block, re.MULTILINE | re.IGNORECASE)
            if invite and call_id:
                numbers.add((invite.group(1), call_id.group(1)))
    return sorted(number for number, _ in numbers)


async def test_a_launched_project_dials_its_base_through_the_trunk(
        world: World, spawn: Spawn, tmp_path: Path) -> None:
    w = world
    _, port = await start_trunk(spawn)
    trunk = await w.db.trunks.create(name="provider", host=f"sip:127.0.0.1:{port}",
                                     username="117049", password="s3cret",
                                     price_per_minute_kopecks=150, billing_increment_s=1)
    await w.calls.reload_trunks()
    await w.log.wait("trunk.state", trunk_id=trunk, state="registered")

    # Upload order interleaves the kinds so that every kind is met early.
    base = [p for group in zip(ANSWER, BUSY, NO_ANSWER) for p in group]
    base[3:3] = BLACKLISTED[:1]
    base[10:10] = BLACKLISTED[1:]
    main, main_ids = await add_project(w, trunk, "База", base, dial_mode="progressive",
                                       launched=True)
    stopped, _ = await add_project(w, trunk, "Остановленный", STOPPED,
                                   dial_mode="unlimited", max_concurrent_calls=1, launched=True)
    await w.db.blacklist.add(BLACKLISTED)
    group = await w.db.groups.create("Операторы")
    await w.db.projects.set_groups(main, [group])
    operators = [await add_operator(w, spawn, tmp_path, ext, group) for ext in ("201", "202")]

    campaigns = CampaignRuntime(db=w.db, bus=w.bus, calls=w.calls.calls, ringer=w.calls.calls,
                                wrap_up_limit_ms=300, tick_ms=200)
    w.calls.calls.attach_dialer(campaigns.on_call_event, campaigns.on_operator_event)
    w.campaigns = campaigns
    await campaigns.start()
    for operator in operators:  # the workspace's «Доступен»
        w.bus.publish("agent.state", user_id=operator, state="available", at=0)

    # The second project is stopped as soon as its first call is placed.
    async def first_stopped_call() -> bool:
        rows = await w.db.contacts.list(project_id=stopped, dial_states=["dialing"])
        return bool(rows)

    await until(first_stopped_call, "the second project's first call", timeout=20)
    await w.db.projects.update(stopped, launched=False)
    campaigns.stop_project(stopped)  # what the web layer does when the switch goes off
    await campaigns.reload()

    async def main_done() -> bool:
        rows = await w.db.contacts.list(project_id=main, limit=100)
        return all(r.dial_state not in ("new", "dialing") for r in rows
                   if r.phone not in BLACKLISTED)

    await until(main_done, "every contact of the base dialled once", timeout=100)

    async def stopped_call_over() -> bool:
        rows = await w.db.contacts.list(project_id=stopped, dial_states=["dialing"])
        return not rows

    await until(stopped_call_over, "the stopped project's last call", timeout=20)
    await campaigns.settle()

    contacts = {c.phone: c for c in await w.db.contacts.list(project_id=main, limit=100)}
    cdrs = {c.contact_id: c for c in await w.db.calls.list(project_id=main, limit=1000)}
    for phone in ANSWER:
        contact = contacts[phone]
        assert (contact.dial_state, contact.attempts, contact.next_attempt_at) == (
            "done", 1, None), phone
        cdr = cdrs[main_ids[phone]]
        assert cdr.result == "answered" and cdr.operator_id in operators, (phone, cdr)
        assert cdr.bridged_at is not None
    for phone, state, interval in [(p, "busy", 1) for p in BUSY] + [
            (p, "no_answer", 2) for p in NO_ANSWER]:
        contact = contacts[phone]
        assert contact.dial_state == state and contact.attempts == 1, (phone, contact)
        assert contact.last_call_at is not None and contact.next_attempt_at is not None
        assert contact.next_attempt_at == contact.last_call_at + interval * MINUTE, phone
        cdr = cdrs[main_ids[phone]]
        assert cdr.result == state and cdr.ended_at is not None
        assert cdr.ended_at <= contact.last_call_at
    for phone in BLACKLISTED:
        assert (contacts[phone].dial_state, contacts[phone].attempts) == ("new", 0)
    # Both operators took calls (round robin), and their intervals were logged.
    assert {cdrs[main_ids[p]].operator_id for p in ANSWER} == set(operators)
    for operator in operators:
        rows = await w.db.intervals.between(start=0, end=2**62, user_id=operator)
        assert {"ringing", "talking", "wrap_up"} <= {r.state for r in rows}

    # The stopped project: its one call finished and was recorded, nothing else was dialled.
    after_stop = {c.phone: c for c in await w.db.contacts.list(project_id=stopped)}
    dialled = [p for p in STOPPED if after_stop[p].dial_state != "new"]
    assert len(dialled) == 1
    assert after_stop[dialled[0]].dial_state == "no_answer"

    # The trunk saw every number once, except the blacklisted ones and the stopped project's
    # others.
    campaigns.stop_dialling()
    seen = invited_numbers(tmp_path)
    assert sorted(seen) == sorted(ANSWER + BUSY + NO_ANSWER + dialled)
    assert not set(seen) & set(BLACKLISTED)


async def test_an_inbound_call_waits_in_the_project_queue_for_an_operator(
        world: World, spawn: Spawn, tmp_path: Path) -> None:
    """With the runtime attached, the call layer leaves inbound calls to its ACD: the call of
    a project that is not launched still reaches one of its operators."""
    w = world
    provider_port = free_port()
    trunk = await w.db.trunks.create(name="inbound", host=f"sip:127.0.0.1:{provider_port}",
                                     username="117049", password="s3cret")
    project, _ = await add_project(w, trunk, "Входящие", [], dial_mode="progressive",
                                   launched=False)
    await w.db.trunks.update(trunk, inbound_project_id=project)
    await w.calls.reload_trunks()
    group = await w.db.groups.create("Входящая линия")
    await w.db.projects.set_groups(project, [group])
    operator = await add_operator(w, spawn, tmp_path, "203", group)
    # Wired as serve wires it.
    services = Services(config=w.config, db=w.db, bus=w.bus, call_runtime=w.calls)
    await start_campaigns(services)
    campaigns = services.campaigns
    assert campaigns is not None and w.calls.calls.acd_attached
    w.campaigns = campaigns
    await services.reload_campaigns()
    w.bus.publish("agent.state", user_id=operator, state="available", at=0)

    caller = await spawn(["sipp", f"127.0.0.1:{w.calls.addresses[0].port}",
                          "-sf", str(SCENARIOS / "inbound.xml"), "-i", "127.0.0.1",
                          "-p", str(provider_port), "-mp", str(free_port()), "-s", "117049",
                          "-m", "1", "-d", "3000", "-key", "rtpport", "9", "-nostdin",
                          "-timeout", "40s", "-timeout_error"])
    inbound = await w.log.wait("call.inbound", timeout=20)
    assert inbound.data["project_id"] == project
    call_id = inbound.data["call_id"]
    bridged = await w.log.wait("call.bridged", call_id=call_id, timeout=20)
    assert bridged.data["operator_id"] == operator
    ended = await w.log.wait("call.ended", call_id=call_id, timeout=20)
    assert ended.data["outcome"] == "answered"
    out, _ = await asyncio.wait_for(caller.proc.communicate(), 20)
    assert caller.proc.returncode == 0, out.decode(errors="replace")[-2000:]

    async def in_wrap_up() -> bool:
        return campaigns.roster.state(operator).value == "wrap_up"

    await until(in_wrap_up, "the operator in wrap-up", timeout=10)
    await asyncio.sleep(0.05)  # the card takes a moment (zero-length intervals are not logged)
    w.bus.publish("agent.state", user_id=operator, state="card_saved", at=0)  # «Сохранить»

    async def back_available() -> bool:
        return campaigns.roster.state(operator).value == "available"

    await until(back_available, "the operator back from wrap-up", timeout=10)
    await stop_campaigns(services)
    await campaigns.settle()
    rows = await w.db.intervals.between(start=0, end=2**62, user_id=operator)
    assert [r.state for r in rows][:4] == ["available", "ringing", "talking", "wrap_up"]


async def test_a_predictive_project_withdraws_a_ringing_dial_nobody_would_take(
        world: World, spawn: Spawn, tmp_path: Path) -> None:
    """The operator steps away while the dials placed for him ring: once they have rung the
    project's minimum ring time they are CANCELled, long before the 30 s dial timeout."""
    w = world
    _, port = await start_trunk(spawn)
    trunk = await w.db.trunks.create(name="provider", host=f"sip:127.0.0.1:{port}",
                                     username="117049", password="s3cret")
    await w.calls.reload_trunks()
    await w.log.wait("trunk.state", trunk_id=trunk, state="registered")
    # The API holds the minimum ring time at 15 s or more; the runtime honours what is stored.
    ringing = [f"793300002{i:02d}" for i in range(1, 4)]
    project, ids = await add_project(w, trunk, "Предиктивный", ringing, dial_mode="predictive",
                                     dial_timeout_s=30, withdraw_after_s=2,
                                     max_concurrent_calls=3, launched=True)
    group = await w.db.groups.create("Операторы")
    await w.db.projects.set_groups(project, [group])
    operator = await w.db.users.create(role="operator", full_name="Оператор", password_hash="x",
                                       email="op@x.test")
    await w.db.groups.add_members(group, [operator])
    campaigns = CampaignRuntime(db=w.db, bus=w.bus, calls=w.calls.calls, ringer=w.calls.calls,
                                tick_ms=200)
    w.calls.calls.attach_dialer(campaigns.on_call_event, campaigns.on_operator_event)
    w.campaigns = campaigns
    await campaigns.start()
    w.bus.publish("agent.state", user_id=operator, state="available", at=0)
    await w.log.wait("call.ringing", timeout=20)
    w.bus.publish("agent.state", user_id=operator, state="pause", at=0)

    async def nothing_dialling() -> bool:
        rows = await w.db.contacts.list(project_id=project, limit=100)
        return any(r.dial_state != "new" for r in rows) and not any(
            r.dial_state == "dialing" for r in rows)

    await until(nothing_dialling, "the ringing dials withdrawn", timeout=20)
    campaigns.stop_dialling()
    await campaigns.settle()
    cdrs = await w.db.calls.list(project_id=project, limit=100)
    assert cdrs
    for cdr in cdrs:
        assert cdr.result == "no_answer" and cdr.contact_id in ids.values()
        assert cdr.ended_at is not None and cdr.ended_at - cdr.started_at < 15_000, cdr
    # Each dial was announced on the bus as it went out, with its record and project.
    started = {e.data["cdr_id"] for e in w.log.all("call.started")
               if e.data["project_id"] == project}
    assert started == {cdr.id for cdr in cdrs}
    cancels = sum(log.read_text(errors="replace").count("CANCEL sip:")
                  for log in tmp_path.glob("trunk_*_messages.log"))
    assert cancels >= len(cdrs)
    for contact in await w.db.contacts.list(project_id=project, limit=100):
        if contact.dial_state != "new":
            assert (contact.dial_state, contact.attempts) == ("no_answer", 1)
            assert contact.next_attempt_at is not None

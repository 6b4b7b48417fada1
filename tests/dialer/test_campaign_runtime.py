"""The campaign runtime's wiring: a fake call layer (originate / bridge / hang up recorded,
events fed by the test) over a real SQLite file. The real call layer is covered by
test_dialer_e2e.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fake_calls import FakeCallLayer, until

from sipspeak.dialer.ports import (
    AmdResult,
    AmdVerdict,
    CallAnswered,
    CallEnded,
    CallOutcome,
    CallRinging,
    OperatorAnswered,
    OperatorDeclined,
)
from sipspeak.dialer.predictive import PredictivePacer
from sipspeak.dialer.runtime import CampaignRuntime
from sipspeak.events import EventBus
from sipspeak.storage import Database
from sipspeak.storage.models import NewContact

MINUTE = 60_000


class Rig:
    def __init__(self, db: Database, bus: EventBus, calls: FakeCallLayer) -> None:
        self.db = db
        self.bus = bus
        self.calls = calls
        self.runtime: CampaignRuntime | None = None
        self.operators = 0

    async def start(self, **options: Any) -> CampaignRuntime:
        self.runtime = CampaignRuntime(db=self.db, bus=self.bus, calls=self.calls,
                                       ringer=self.calls, tick_ms=20, **options)
        await self.runtime.start()
        return self.runtime

    async def project(self, phones: list[str], **settings: Any) -> tuple[int, list[int]]:
        trunk = await self.db.trunks.create(name=f"t{len(phones)}-{id(settings)}",
                                            host="sip:127.0.0.1:5999", username="u",
                                            password="p")
        values: dict[str, Any] = {
            "trunk_id": trunk, "caller_id": "74950001122", "dial_mode": "unlimited",
            "max_concurrent_calls": 3, "dial_timeout_s": 5, "client_time_from": "00:00",
            "client_time_to": "00:00", "retry_busy_intervals": "1;5",
            "retry_busy_attempts": 3, "retry_no_answer_intervals": "2;7",
            "retry_no_answer_attempts": 3, "retry_machine_intervals": "3",
            "retry_lost_intervals": "4", "max_attempts": 5, "queue_timeout_s": 30,
            "strategy": "linear", "launched": True,
        }
        values.update(settings)
        project_id = await self.db.projects.create(f"P{trunk}", **values)
        await self.db.contacts.insert_many(project_id=project_id, upload_id=None,
                                           contacts=[NewContact(phone=p) for p in phones])
        rows = await self.db.contacts.list(project_id=project_id)
        return project_id, [row.id for row in rows]

    async def operator(self, project_id: int) -> int:
        self.operators += 1
        user_id = await self.db.users.create(role="operator", full_name="Оператор",
                                             email=f"op{self.operators}@x.test",
                                             password_hash="x")
        group = await self.db.groups.create(f"g{user_id}")
        await self.db.groups.add_members(group, [user_id])
        await self.db.projects.set_groups(project_id, [group])
        return user_id


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    db = await Database.open(tmp_path / "dialer.db")
    r = Rig(db, EventBus(), FakeCallLayer())
    try:
        yield r
    finally:
        if r.runtime is not None:
            await r.runtime.aclose()
        await db.close()


async def test_outcomes_are_written_with_the_next_attempt_from_the_interval_lists(rig: Rig) -> None:
    pid, ids = await rig.project(["79000000001", "79000000002", "79000000003", "79000000004"])
    await rig.db.blacklist.add(["79000000004"])
    runtime = await rig.start()
    await until(lambda: len(rig.calls.originated) == 3, "three dials")
    assert sorted(rig.calls.phones()) == ["79000000001", "79000000002", "79000000003"]
    settings = rig.calls.originated[0][2]
    assert (settings.project_id, settings.dial_timeout_ms, settings.caller_id) == (
        pid, 5000, "74950001122")
    contact = await rig.db.contacts.get(ids[0])
    assert contact.dial_state == "dialing"

    ended_at = runtime.now_ms()
    runtime.on_call_event(CallEnded(rig.calls.call_of("79000000001"), ended_at,
                                    CallOutcome.BUSY))
    runtime.on_call_event(CallEnded(rig.calls.call_of("79000000002"), ended_at + 5,
                                    CallOutcome.NO_ANSWER))
    runtime.on_call_event(CallEnded(rig.calls.call_of("79000000003"), ended_at + 7,
                                    CallOutcome.FAILED, sip_code=404))
    await runtime.settle()
    busy, no_answer, gone, black = [await rig.db.contacts.get(i) for i in ids]
    assert (busy.dial_state, busy.attempts, busy.last_call_at, busy.next_attempt_at) == (
        "busy", 1, ended_at, ended_at + 1 * MINUTE)
    assert (no_answer.dial_state, no_answer.attempts, no_answer.next_attempt_at) == (
        "no_answer", 1, ended_at + 5 + 2 * MINUTE)
    assert (gone.dial_state, gone.attempts, gone.next_attempt_at) == ("error", 1, None)
    assert (black.dial_state, black.attempts) == ("new", 0)
    # Nothing else is due: a few ticks later there is still no new dial, and never the
    # blacklisted number.
    await asyncio.sleep(0.2)
    assert len(rig.calls.originated) == 3
    assert "79000000004" not in rig.calls.phones()


async def test_the_second_busy_uses_the_second_interval(rig: Rig) -> None:
    pid, ids = await rig.project(["79000000011"])
    # One busy call already in the CDRs, and the retry is due now.
    cdr = await rig.db.calls.open(direction="outbound", started_at=1000, contact_id=ids[0],
                                  project_id=pid)
    await rig.db.calls.update(cdr, ended_at=2000, result="busy")
    await rig.db.contacts.update(ids[0], dial_state="busy", attempts=1, next_attempt_at=2000)
    runtime = await rig.start()
    await until(lambda: len(rig.calls.originated) == 1, "the retry")
    ended_at = runtime.now_ms()
    runtime.on_call_event(CallEnded(rig.calls.originated[0][0], ended_at, CallOutcome.BUSY))
    await runtime.settle()
    contact = await rig.db.contacts.get(ids[0])
    assert (contact.dial_state, contact.attempts, contact.next_attempt_at) == (
        "busy", 2, ended_at + 5 * MINUTE)


async def test_answered_call_reaches_an_operator_and_intervals_are_logged(rig: Rig) -> None:
    pid, ids = await rig.project(["79000000021"], dial_mode="progressive")
    operator = await rig.operator(pid)
    runtime = await rig.start(wrap_up_limit_ms=50)
    await asyncio.sleep(0.1)
    assert rig.calls.originated == []  # progressive: no available operator, no call
    rig.bus.publish("agent.state", user_id=operator, state="available", at=0)
    await until(lambda: len(rig.calls.originated) == 1, "a dial for the available operator")
    call_id = rig.calls.originated[0][0]
    runtime.on_call_event(CallAnswered(call_id, runtime.now_ms()))
    await until(lambda: len(rig.calls.rings) == 1, "the operator rung")
    ring_id, rung, rung_call = rig.calls.rings[0]
    assert (rung, rung_call) == (operator, call_id)
    await asyncio.sleep(0.02)  # the ringing interval lasts (zero-length ones are not logged)
    runtime.on_operator_event(OperatorAnswered(ring_id, operator, runtime.now_ms()))
    assert rig.calls.bridged == [(call_id, operator)]
    await asyncio.sleep(0.03)
    runtime.on_call_event(CallEnded(call_id, runtime.now_ms(), CallOutcome.ANSWERED))
    await until(lambda: runtime.roster.state(operator).value == "available", "wrap-up over")
    await runtime.settle()
    contact = await rig.db.contacts.get(ids[0])
    assert (contact.dial_state, contact.attempts, contact.next_attempt_at) == ("done", 1, None)
    rows = await rig.db.intervals.between(start=0, end=2**62, user_id=operator)
    states = [row.state for row in rows if row.ended_at is not None]
    assert states[:4] == ["available", "ringing", "talking", "wrap_up"]
    assert all(row.ended_at is not None and row.ended_at >= row.started_at for row in rows)


async def test_machine_is_hung_up_and_rescheduled(rig: Rig) -> None:
    _, ids = await rig.project(["79000000031"], amd_enabled=True)
    runtime = await rig.start()
    await until(lambda: len(rig.calls.originated) == 1, "a dial")
    call_id = rig.calls.originated[0][0]
    assert rig.calls.originated[0][2].amd_enabled
    runtime.on_call_event(CallAnswered(call_id, runtime.now_ms()))
    runtime.on_call_event(AmdResult(call_id, runtime.now_ms(), AmdVerdict.MACHINE))
    assert rig.calls.hung_up == [call_id] and rig.calls.abandoned == []
    ended_at = runtime.now_ms()
    runtime.on_call_event(CallEnded(call_id, ended_at, CallOutcome.ANSWERING_MACHINE))
    await runtime.settle()
    contact = await rig.db.contacts.get(ids[0])
    assert (contact.dial_state, contact.next_attempt_at) == ("machine", ended_at + 3 * MINUTE)


async def test_waiting_customer_abandoned_after_queue_timeout_counts_as_lost(rig: Rig) -> None:
    _, ids = await rig.project(["79000000041"], queue_timeout_s=1)
    runtime = await rig.start()
    await until(lambda: len(rig.calls.originated) == 1, "a dial")
    call_id = rig.calls.originated[0][0]
    runtime.on_call_event(CallAnswered(call_id, runtime.now_ms()))
    assert rig.calls.hold_music == [call_id]
    await until(lambda: rig.calls.hung_up == [call_id], "the queue timeout", timeout=5)
    # Released as a person no operator took (the project's message first, if it has one);
    # the machine above was a plain hang-up.
    assert rig.calls.abandoned == [call_id]
    ended_at = runtime.now_ms()
    # Hung up after the answer, not bridged: the call layer reports it as lost.
    runtime.on_call_event(CallEnded(call_id, ended_at, CallOutcome.LOST))
    await runtime.settle()
    contact = await rig.db.contacts.get(ids[0])
    assert (contact.dial_state, contact.next_attempt_at) == ("lost", ended_at + 4 * MINUTE)


async def test_stopping_a_project_stops_new_calls_and_lets_calls_finish(rig: Rig) -> None:
    phones = [f"7900000005{i}" for i in range(6)]
    pid, ids = await rig.project(phones, max_concurrent_calls=2)
    runtime = await rig.start()
    await until(lambda: len(rig.calls.originated) == 2, "two dials")
    await rig.db.projects.update(pid, launched=False)
    rig.bus.publish("projects.changed", project_id=pid, launched=False)
    await until(lambda: not runtime.campaigns[pid].switch.running, "the stop")
    first = [cid for cid, _, _ in rig.calls.originated]
    for call_id in first:
        runtime.on_call_event(CallEnded(call_id, runtime.now_ms(), CallOutcome.NO_ANSWER))
    await runtime.settle()
    await asyncio.sleep(0.2)  # ticks pass: no line is refilled
    assert len(rig.calls.originated) == 2
    states = [(await rig.db.contacts.get(i)).dial_state for i in ids]
    assert sorted(states) == ["new"] * 4 + ["no_answer"] * 2
    assert pid not in runtime.campaigns  # idle and stopped: dropped
    # Launched again: it dials the rest.
    await rig.db.projects.update(pid, launched=True)
    await runtime.reload()
    await until(lambda: len(rig.calls.originated) == 4, "dials after the relaunch")
    assert not set(rig.calls.phones()[2:]) & {c.phone for _, c, _ in rig.calls.originated[:2]}


async def test_a_contact_is_claimed_once(rig: Rig) -> None:
    pid, ids = await rig.project(["79000000061", "79000000062"])
    now = 10**13
    first = await rig.db.contacts.claim_for_dialling(ids, now=now)
    second = await rig.db.contacts.claim_for_dialling(ids, now=now)
    assert (first, second) == (ids, [])
    assert await rig.db.contacts.due_for_dialling(project_id=pid, now=now, limit=10) == []
    assert await rig.db.contacts.release_stale_claims(now=now) == 2
    due = await rig.db.contacts.due_for_dialling(project_id=pid, now=now, limit=10)
    assert [c.id for c in due] == ids


async def test_inbound_call_waits_in_the_queue_of_its_project(rig: Rig) -> None:
    pid, _ = await rig.project([], launched=False)
    operator = await rig.operator(pid)
    runtime = await rig.start()
    runtime.set_agent_status(operator, "available")
    # The call layer answered an inbound call for the project and says so on the bus.
    rig.bus.publish("call.inbound", call_id="in-1", project_id=pid, kind="inbound")
    await until(lambda: len(rig.calls.rings) == 1, "the operator rung for the inbound call")
    ring_id, rung, call_id = rig.calls.rings[0]
    assert (rung, call_id) == (operator, "in-1")
    runtime.on_operator_event(OperatorAnswered(ring_id, operator, runtime.now_ms()))
    assert rig.calls.bridged == [("in-1", operator)]
    assert rig.calls.originated == []  # the project is not launched: it only takes calls
    runtime.on_call_event(CallEnded("in-1", runtime.now_ms(), CallOutcome.ANSWERED))
    assert runtime.roster.state(operator).value == "wrap_up"
    runtime.set_agent_status(operator, "card_saved")  # «Сохранить» on the card
    assert runtime.roster.state(operator).value == "available"


async def test_an_operator_on_his_own_call_gets_no_queue_call(rig: Rig) -> None:
    pid, _ = await rig.project(["79000000071"], launched=True)
    operator = await rig.operator(pid)
    runtime = await rig.start(wrap_up_limit_ms=None)
    runtime.set_agent_status(operator, "available")
    rig.bus.publish("call.ringing", call_id="m-1", kind="manual", operator_id=operator)
    await until(lambda: runtime.roster.state(operator).value == "ringback", "ringback")
    await until(lambda: len(rig.calls.originated) == 1, "a dial")
    runtime.on_call_event(CallAnswered(rig.calls.originated[0][0], runtime.now_ms()))
    assert rig.calls.rings == []  # he is on his own call
    rig.bus.publish("call.answered", call_id="m-1", kind="manual", operator_id=operator)
    await until(lambda: runtime.roster.state(operator).value == "talking", "talking")
    # A status change during the call applies once the call and the card are done.
    runtime.set_agent_status(operator, "pause")
    rig.bus.publish("call.ended", call_id="m-1", kind="manual", operator_id=operator)
    await until(lambda: runtime.roster.state(operator).value == "wrap_up", "wrap-up")
    assert rig.calls.rings == []
    runtime.set_agent_status(operator, "card_saved")
    assert runtime.roster.state(operator).value == "paused"
    assert rig.calls.rings == []


def _zone_at_local_hour(hours: tuple[int, ...]) -> str:
    """An Etc/GMT zone whose local hour is now one of ``hours``."""
    utc_hour = datetime.now(UTC).hour
    for offset in range(-12, 13):
        if (utc_hour + offset) % 24 in hours:
            return f"Etc/GMT{-offset:+d}"
    raise AssertionError(f"no zone has its hour in {hours}")


async def test_clients_at_night_do_not_hide_clients_in_the_day(rig: Rig) -> None:
    night, day = _zone_at_local_hour((2, 3)), _zone_at_local_hour((14, 15))
    pid, _ = await rig.project([], client_time_from="09:00", client_time_to="21:00",
                                 max_concurrent_calls=1, timezone=day)
    await rig.db.contacts.insert_many(
        project_id=pid, upload_id=None,
        contacts=[NewContact(phone=f"790000010{i:02d}", timezone=night) for i in range(30)]
        + [NewContact(phone="79000002000", timezone=day)])
    runtime = await rig.start()
    await until(lambda: len(rig.calls.originated) == 1, "a dial")
    assert rig.calls.phones() == ["79000002000"]
    runtime.on_call_event(CallEnded(rig.calls.originated[0][0], runtime.now_ms(),
                                    CallOutcome.BUSY))
    await runtime.settle()
    await asyncio.sleep(0.2)
    assert rig.calls.phones() == ["79000002000"]  # the night is not called


async def test_contacts_of_an_upload_still_importing_are_not_due(rig: Rig) -> None:
    pid, _ = await rig.project(["79000000081"])
    upload = await rig.db.uploads.create(project_id=pid, filename="base.xlsx", importing=True)
    await rig.db.contacts.insert_many(project_id=pid, upload_id=upload,
                                      contacts=[NewContact(phone="79000000082")])
    now = 10**13
    due = await rig.db.contacts.due_for_dialling(project_id=pid, now=now, limit=10)
    assert [c.phone for c in due] == ["79000000081"]
    await rig.db.uploads.set_counts(upload, total=1, accepted=1, rejected=0)
    due = await rig.db.contacts.due_for_dialling(project_id=pid, now=now, limit=10)
    assert [c.phone for c in due] == ["79000000081", "79000000082"]


async def test_an_operator_refusing_at_once_is_not_rung_again_in_a_loop(rig: Rig) -> None:
    pid, _ = await rig.project(["79000000091"])
    operator = await rig.operator(pid)
    runtime = await rig.start()
    rig.calls.clock = runtime.now_ms
    runtime.set_agent_status(operator, "available")
    await until(lambda: len(rig.calls.originated) == 1, "a dial")
    call_id = rig.calls.originated[0][0]
    runtime.on_call_event(CallAnswered(call_id, runtime.now_ms()))
    await until(lambda: len(rig.calls.rings) == 1, "the operator rung")
    # His phone is not registered: the call layer declines at once.
    runtime.on_operator_event(OperatorDeclined(rig.calls.rings[0][0], operator, runtime.now_ms()))
    if runtime.now_ms() < rig.calls.rung_at[0] + 500:
        # Held back: he still counts as being offered the call, nobody rings him again yet.
        assert runtime.roster.state(operator).value == "ringing"
        assert len(rig.calls.rings) == 1
    await until(lambda: len(rig.calls.rings) == 2, "the call offered again")
    assert rig.calls.rings[1][1:] == (operator, call_id)
    runtime.on_operator_event(OperatorAnswered(rig.calls.rings[1][0], operator, runtime.now_ms()))
    assert rig.calls.bridged == [(call_id, operator)]


async def test_closing_logs_every_operator_s_current_state(rig: Rig) -> None:
    pid, _ = await rig.project([], launched=False)
    operator = await rig.operator(pid)
    runtime = await rig.start()
    runtime.set_agent_status(operator, "pause")
    await asyncio.sleep(0.02)
    await runtime.aclose()
    rig.runtime = None
    rows = await rig.db.intervals.between(start=0, end=2**62, user_id=operator)
    assert [row.state for row in rows][-1] == "paused"
    assert all(row.ended_at is not None for row in rows)
    with pytest.raises(RuntimeError):
        await runtime.reload()


@pytest.mark.parametrize("mode", ["progressive", "predictive"])
async def test_operator_modes_dial_for_available_operators_within_the_line_limit(
        rig: Rig, mode: str) -> None:
    pid, _ = await rig.project([f"790000003{i:02d}" for i in range(10)], dial_mode=mode,
                               max_concurrent_calls=2)
    operators = [await rig.operator(pid) for _ in range(3)]
    group = await rig.db.groups.create("все")
    await rig.db.groups.add_members(group, operators)
    await rig.db.projects.set_groups(pid, [group])
    runtime = await rig.start()
    for operator in operators:
        runtime.set_agent_status(operator, "available")
    await until(lambda: len(rig.calls.originated) == 2, "dials")
    await asyncio.sleep(0.2)  # ticks pass: three operators, but two lines
    assert len(rig.calls.originated) == 2
    runtime.on_call_event(CallEnded(rig.calls.originated[0][0], runtime.now_ms(),
                                    CallOutcome.BUSY))
    await until(lambda: len(rig.calls.originated) == 3, "a line refilled")


async def test_a_customer_hanging_up_while_waiting_is_abandoned(rig: Rig) -> None:
    _, ids = await rig.project(["79000000401"])
    runtime = await rig.start()
    await until(lambda: len(rig.calls.originated) == 1, "a dial")
    call_id = rig.calls.originated[0][0]
    runtime.on_call_event(CallAnswered(call_id, runtime.now_ms()))
    assert runtime.campaigns[next(iter(runtime.campaigns))].queue.is_waiting(call_id)
    ended_at = runtime.now_ms()
    # The call layer reports the customer's BYE before any operator took him.
    runtime.on_call_event(CallEnded(call_id, ended_at, CallOutcome.ANSWERED))
    await runtime.settle()
    contact = await rig.db.contacts.get(ids[0])
    assert (contact.dial_state, contact.next_attempt_at) == ("lost", ended_at + 4 * MINUTE)


async def test_operators_start_in_the_status_the_workspace_stored(rig: Rig) -> None:
    pid, _ = await rig.project(["79000000501"], dial_mode="progressive")
    operator = await rig.operator(pid)
    # The workspace stored «Доступен» before this process started (as set_agent_state does).
    await rig.db.intervals.start(user_id=operator, state="available", at=1000)
    runtime = await rig.start()
    assert runtime.roster.state(operator).value == "available"
    await until(lambda: len(rig.calls.originated) == 1, "a dial for the stored operator")


async def _team(rig: Rig, pid: int, size: int) -> list[int]:
    operators = [await rig.operator(pid) for _ in range(size)]
    group = await rig.db.groups.create(f"команда {pid}")
    await rig.db.groups.add_members(group, operators)
    await rig.db.projects.set_groups(pid, [group])
    return operators


async def test_a_due_task_is_dialled_first_and_answered_by_its_operator(rig: Rig) -> None:
    pid, ids = await rig.project(["79000000601", "79000000602", "79000000603"],
                                 dial_mode="progressive", max_concurrent_calls=5)
    first, second = await _team(rig, pid, 2)
    # The contact was reached before; its operator promised to call back, and it is time.
    await rig.db.contacts.update(ids[2], dial_state="done", attempts=1, last_call_at=1000)
    task = await rig.db.tasks.add(contact_id=ids[2], operator_id=second, text="перезвонить",
                                  due_at=2000, auto_call=True)
    runtime = await rig.start()
    for operator in (first, second):
        runtime.set_agent_status(operator, "available")
    await until(lambda: len(rig.calls.originated) == 2, "the task and one base dial")
    assert rig.calls.phones() == ["79000000603", "79000000601"]  # the task before the base
    task_call = rig.calls.call_of("79000000603")
    # He is held for his contact («Слушает гудки»); the base dial is for the other operator.
    assert runtime.roster.state(second).value == "ringback"
    await asyncio.sleep(0.1)
    assert len(rig.calls.originated) == 2
    runtime.on_call_event(CallAnswered(task_call, runtime.now_ms()))
    assert [(op, call) for _, op, call in rig.calls.rings] == [(second, task_call)]
    runtime.on_operator_event(OperatorAnswered(rig.calls.rings[0][0], second, runtime.now_ms()))
    assert rig.calls.bridged == [(task_call, second)]
    await runtime.settle()
    done = (await rig.db.tasks.list(contact_id=ids[2]))[0]
    assert done.id == task and done.done_at is not None
    runtime.on_call_event(CallEnded(task_call, runtime.now_ms(), CallOutcome.ANSWERED))
    await runtime.settle()
    contact = await rig.db.contacts.get(ids[2])
    assert (contact.dial_state, contact.attempts) == ("done", 2)


async def test_a_task_waits_for_its_operator_and_is_not_dialled_for_another(rig: Rig) -> None:
    pid, ids = await rig.project(["79000000611", "79000000612"], dial_mode="progressive",
                                 max_concurrent_calls=5)
    first, second = await _team(rig, pid, 2)
    await rig.db.tasks.add(contact_id=ids[1], operator_id=second, text="", due_at=2000,
                           auto_call=True)
    runtime = await rig.start()
    runtime.set_agent_status(first, "available")
    runtime.set_agent_status(second, "pause")
    await until(lambda: len(rig.calls.originated) == 1, "a base dial for the free operator")
    runtime.on_call_event(CallEnded(rig.calls.originated[0][0], runtime.now_ms(),
                                    CallOutcome.BUSY))
    await asyncio.sleep(0.2)  # ticks pass: the task's contact is not dialled as base either
    assert rig.calls.phones() == ["79000000611"]
    runtime.set_agent_status(second, "available")
    await until(lambda: len(rig.calls.originated) == 2, "the task dialled for its operator")
    assert rig.calls.phones()[1] == "79000000612"
    assert runtime.roster.state(second).value == "ringback"
    assert runtime.roster.state(first).value == "available"


async def test_a_failed_task_attempt_gives_the_operator_back_and_retries_by_the_rules(
        rig: Rig) -> None:
    pid, ids = await rig.project(["79000000621"], dial_mode="progressive",
                                 amd_enabled=True)
    (operator,) = await _team(rig, pid, 1)
    await rig.db.tasks.add(contact_id=ids[0], operator_id=operator, text="", due_at=2000,
                           auto_call=True)
    runtime = await rig.start()
    runtime.set_agent_status(operator, "available")
    await until(lambda: len(rig.calls.originated) == 1, "the task dialled")
    call_id = rig.calls.originated[0][0]
    runtime.on_call_event(CallAnswered(call_id, runtime.now_ms()))
    assert runtime.roster.state(operator).value == "ringback"  # AMD still listening
    runtime.on_call_event(AmdResult(call_id, runtime.now_ms(), AmdVerdict.MACHINE))
    assert runtime.roster.state(operator).value == "available"  # free again at once
    assert rig.calls.rings == []
    ended_at = runtime.now_ms()
    runtime.on_call_event(CallEnded(call_id, ended_at, CallOutcome.ANSWERING_MACHINE))
    await runtime.settle()
    contact = await rig.db.contacts.get(ids[0])
    assert (contact.dial_state, contact.next_attempt_at) == ("machine", ended_at + 3 * MINUTE)
    (task,) = await rig.db.tasks.list(contact_id=ids[0])
    assert task.done_at is None
    await asyncio.sleep(0.2)  # he is free and the task is open, but the retry is not due
    assert len(rig.calls.originated) == 1
    await rig.db.contacts.update(ids[0], next_attempt_at=ended_at)  # three minutes later
    await until(lambda: len(rig.calls.originated) == 2, "the task dialled again")
    assert rig.calls.phones() == ["79000000621"] * 2


async def test_a_task_of_nobody_is_a_callback_dialled_before_the_base(rig: Rig) -> None:
    pid, ids = await rig.project(["79000000631", "79000000632"], dial_mode="progressive")
    (operator,) = await _team(rig, pid, 1)
    await rig.db.contacts.update(ids[1], dial_state="done", attempts=1, last_call_at=1000)
    task = await rig.db.tasks.add(contact_id=ids[1], operator_id=None, text="", due_at=2000,
                                  auto_call=True)
    runtime = await rig.start()
    runtime.set_agent_status(operator, "available")
    await until(lambda: len(rig.calls.originated) == 1, "a dial")
    assert rig.calls.phones() == ["79000000632"]
    call_id = rig.calls.originated[0][0]
    assert runtime.roster.state(operator).value == "available"  # not held: the queue decides
    runtime.on_call_event(CallAnswered(call_id, runtime.now_ms()))
    await until(lambda: len(rig.calls.rings) == 1, "the operator rung")
    runtime.on_operator_event(OperatorAnswered(rig.calls.rings[0][0], operator,
                                               runtime.now_ms()))
    await runtime.settle()
    (done,) = await rig.db.tasks.list(contact_id=ids[1])
    assert done.id == task and done.done_at is not None


async def test_a_task_is_due_from_its_time_then_by_the_contact_s_retry_rules(rig: Rig) -> None:
    pid, (cid, other) = await rig.project(["79000000641", "79000000642"])
    operator = await rig.operator(pid)
    tasks = rig.db.tasks
    task = await tasks.add(contact_id=cid, operator_id=operator, text="", due_at=2000,
                           auto_call=True)
    await tasks.add(contact_id=other, operator_id=operator, text="", due_at=2000)  # by hand

    async def due(now: int, operators: list[int] | None = None) -> list[int]:
        found = await tasks.due_auto_calls(project_id=pid, now=now,
                                           operator_ids=[operator] if operators is None
                                           else operators)
        return [t.id for t in found]

    assert (await due(1999), await due(2000)) == ([], [task])
    assert await due(2000, [operator + 1]) == []
    assert await tasks.due_auto_calls(project_id=pid, now=2000, operator_ids=None) == []
    assert await tasks.open_auto_call_contacts([cid, other]) == {cid}
    # Called after it fell due and failed: the retry time rules; none left, no more calls.
    await rig.db.contacts.update(cid, dial_state="busy", last_call_at=2500,
                                 next_attempt_at=4000)
    assert (await due(3999), await due(4000)) == ([], [task])
    await rig.db.contacts.update(cid, dial_state="error", next_attempt_at=None)
    assert await due(10_000) == []
    # A call before it fell due does not count against it; a contact being dialled waits.
    await rig.db.contacts.update(cid, last_call_at=1500)
    assert await due(10_000) == [task]
    assert await rig.db.contacts.claim_for_task(cid, now=10_000)
    assert not await rig.db.contacts.claim_for_task(cid, now=10_000)
    assert await due(10_000) == []
    await rig.db.contacts.update(cid, dial_state="done")
    await rig.db.blacklist.add(["79000000641"])
    assert await due(10_000) == []
    await rig.db.blacklist.remove(["79000000641"])
    await tasks.complete(task)
    assert await due(10_000) == []
    assert await tasks.open_auto_call_contacts([cid]) == set()


async def test_the_board_shows_each_queue_and_its_operators_as_they_are(rig: Rig) -> None:
    pid, _ = await rig.project(["79000000091"], dial_mode="progressive",
                               strategy="round_robin")
    first, second = [await rig.db.users.create(role="operator", full_name=name,
                                               email=f"{name}@x.test", password_hash="x")
                     for name in ("first", "second")]  # the second never signs in
    group = await rig.db.groups.create("Смена")
    await rig.db.groups.add_members(group, [first, second])
    await rig.db.projects.set_groups(pid, [group])
    runtime = await rig.start()
    board = runtime.board()
    [queue] = board.queues
    assert (queue.project_id, queue.strategy.value, queue.running) == (pid, "round_robin", True)
    assert (queue.waiting, queue.oldest_waiting_since_ms) == (0, None)
    assert [(o.operator_id, o.state.value, o.since_ms) for o in queue.operators] == [
        (first, "offline", None), (second, "offline", None)]

    rig.bus.publish("agent.state", user_id=first, state="available", at=0)
    await until(lambda: len(rig.calls.originated) == 1, "a dial for the available operator")
    call_id = rig.calls.originated[0][0]
    answered_at = runtime.now_ms()
    runtime.on_call_event(CallAnswered(call_id, answered_at))
    await until(lambda: len(rig.calls.rings) == 1, "the operator rung")
    [queue] = runtime.board().queues
    # The customer waits while the operator's phone rings.
    assert queue.waiting == 1 and answered_at <= queue.oldest_waiting_since_ms <= runtime.now_ms()
    line = queue.operators[0]
    assert line.state.value == "ringing" and line.since_ms >= answered_at
    runtime.on_operator_event(OperatorAnswered(rig.calls.rings[0][0], first, runtime.now_ms()))
    board = runtime.board()
    [queue] = board.queues
    assert (queue.waiting, queue.oldest_waiting_since_ms) == (0, None)
    assert queue.operators[0].state.value == "talking" and board.now_ms >= queue.operators[0].since_ms
    assert queue.operators[1].state.value == "offline"


async def test_predictive_withdraws_dials_ringing_past_the_minimum_when_nobody_is_free(
        rig: Rig) -> None:
    # The API holds the minimum ring time at 15 s or more; the runtime honours what is stored.
    pid, ids = await rig.project([f"7900000060{i}" for i in range(3)], dial_mode="predictive",
                                 max_concurrent_calls=3, dial_timeout_s=30, withdraw_after_s=1)
    operator = await rig.operator(pid)
    runtime = await rig.start()
    runtime.set_agent_status(operator, "available")
    await until(lambda: len(rig.calls.originated) >= 1, "a dial for the free operator")
    calls = [call_id for call_id, _, _ in rig.calls.originated]
    first = calls[0]
    runtime.on_call_event(CallRinging(first, runtime.now_ms()))
    await asyncio.sleep(1.3)
    assert rig.calls.hung_up == []  # rang past the minimum, but its operator is free
    runtime.set_agent_status(operator, "pause")
    await until(lambda: first in rig.calls.hung_up, "the ringing dial withdrawn")
    # Dials that never rang (no 180 yet) are not withdrawn whatever the operators do.
    assert [c for c in calls[1:] if c in rig.calls.hung_up] == []
    campaign = runtime.campaigns[pid]
    assert isinstance(campaign.pacer, PredictivePacer)
    assert campaign.pacer.dials.withdrawn == 1
    [queue] = runtime.board().queues  # «Мониторинг» counts it too
    assert (queue.dial_mode, queue.withdrawn, queue.persons) == ("predictive", 1, 0)
    assert campaign.pacing_input(runtime.now_ms(), runtime.roster).dial_started_ms == [
        d.started_ms for d in campaign.dials.values() if d.call_id != first]
    # The trunk's 487 to our CANCEL ends it as unanswered; the contact is rescheduled.
    ended_at = runtime.now_ms()
    runtime.on_call_event(CallEnded(first, ended_at, CallOutcome.NO_ANSWER, sip_code=487))
    await runtime.settle()
    contact = await rig.db.contacts.get(ids[0])
    assert (contact.dial_state, contact.attempts) == ("no_answer", 1)
    assert contact.next_attempt_at == ended_at + 2 * MINUTE
    assert campaign.pacer.persons_abandoned == 0


async def test_an_answer_crossing_the_withdrawal_counts_as_abandoned(rig: Rig) -> None:
    pid, _ = await rig.project(["79000000701"], dial_mode="predictive",
                               max_concurrent_calls=1, dial_timeout_s=30, withdraw_after_s=1)
    operator = await rig.operator(pid)
    runtime = await rig.start()
    runtime.set_agent_status(operator, "available")
    await until(lambda: len(rig.calls.originated) == 1, "a dial")
    call_id = rig.calls.originated[0][0]
    runtime.on_call_event(CallRinging(call_id, runtime.now_ms()))
    runtime.set_agent_status(operator, "pause")
    await until(lambda: call_id in rig.calls.hung_up, "the dial withdrawn", timeout=5)
    # The 200 OK crossed the CANCEL: the call layer ACKed it and sent BYE (RFC 3261 §9.1).
    runtime.on_call_event(CallEnded(call_id, runtime.now_ms(), CallOutcome.ABANDONED))
    await runtime.settle()
    pacer = runtime.campaigns[pid].pacer
    assert isinstance(pacer, PredictivePacer)
    assert (pacer.persons_handled, pacer.persons_abandoned) == (1, 1)
    [queue] = runtime.board().queues
    assert (queue.persons, queue.abandoned, queue.withdrawn) == (1, 1, 1)


async def test_an_answered_dial_is_never_withdrawn(rig: Rig) -> None:
    pid, _ = await rig.project(["79000000801"], dial_mode="predictive", amd_enabled=True,
                               max_concurrent_calls=1, dial_timeout_s=30, withdraw_after_s=1)
    operator = await rig.operator(pid)
    runtime = await rig.start()
    runtime.set_agent_status(operator, "available")
    await until(lambda: len(rig.calls.originated) == 1, "a dial")
    call_id = rig.calls.originated[0][0]
    runtime.on_call_event(CallRinging(call_id, runtime.now_ms()))
    runtime.on_call_event(CallAnswered(call_id, runtime.now_ms()))  # AMD still listening
    runtime.set_agent_status(operator, "pause")
    await asyncio.sleep(1.5)
    assert call_id not in rig.calls.hung_up

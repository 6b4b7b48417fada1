"""Outbound calls through a registered trunk whose provider is sipp: busy and no answer.

The dialer's view (events through ``attach_dialer``) and the CDR row are checked; the trunk
registers first (401, then 200) and its state is published on the bus.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from callworld import World, refusing_provider, start_provider

from sipspeak.dialer.ports import (
    CallAnswered,
    CallEnded,
    CallEvent,
    CallOutcome,
    CallRinging,
    DialContact,
    ProjectDialSettings,
)
from sipspeak.sip.trunk import TrunkState


async def registered_trunk(world: World, port: int) -> int:
    trunk_id = await world.add_trunk(port, host=f"sip:{'117049'}@127.0.0.1:{port}")
    await world.log.wait("trunk.state", trunk_id=trunk_id, state="registered")
    assert world.runtime.trunk_states[trunk_id] is TrunkState.REGISTERED
    return trunk_id


async def dial(world: World, trunk_id: int, *, dial_timeout_ms: int = 20_000,
               global_timeout_ms: int | None = None
               ) -> tuple[str, list[CallEvent], asyncio.Event]:
    project_id = await world.add_project(trunk_id)
    events: list[CallEvent] = []
    ended = asyncio.Event()

    def on_call(event: CallEvent) -> None:
        events.append(event)
        if isinstance(event, CallAnswered):
            world.runtime.calls.start_hold_music(event.call_id)
        if isinstance(event, CallEnded):
            ended.set()

    world.runtime.calls.attach_dialer(on_call, None)
    call_id = world.runtime.calls.originate(
        DialContact(contact_id=await _contact(world, project_id), phone="79030001122"),
        ProjectDialSettings(project_id=project_id, trunk_id=trunk_id, caller_id="74950001122",
                            dial_timeout_ms=dial_timeout_ms, amd_enabled=False,
                            global_timeout_ms=global_timeout_ms))
    return call_id, events, ended


async def _contact(world: World, project_id: int) -> int:
    from sipspeak.storage.models import NewContact

    await world.db.contacts.insert_many(project_id=project_id, upload_id=None, contacts=[
        NewContact(phone="79030001122", region="Москва", timezone="Europe/Moscow")])
    contacts = await world.db.contacts.list(project_id=project_id)
    return contacts[0].id


async def finished_row(world: World, call_id: str) -> Any:
    for _ in range(200):
        cdr_id = world.runtime.calls.finished.get(call_id)
        if cdr_id is not None:
            return await world.db.calls.get(cdr_id)
        await asyncio.sleep(0.05)
    raise AssertionError("the CDR was never completed")


async def test_busy_callee_ends_busy_with_its_code(world: World, spawn: Any) -> None:
    provider, port = await start_provider(spawn, "busy.xml")
    trunk_id = await registered_trunk(world, port)
    call_id, events, ended = await dial(world, trunk_id)
    await asyncio.wait_for(ended.wait(), 15)
    end = events[-1]
    assert isinstance(end, CallEnded) and end.outcome is CallOutcome.BUSY
    assert end.sip_code == 486
    row = await finished_row(world, call_id)
    assert row.result == "busy" and row.sip_code == 486 and row.client_status == "Занято"
    assert row.direction == "outbound" and row.kind == "auto" and row.to_number == "79030001122"
    assert row.from_number == "74950001122" and row.region == "Москва"
    assert row.billing_ms == 0 and row.duration_ms == row.dial_ms
    assert row.price_kopecks == 0 and row.recording_path is None
    ended_event = await world.log.wait("call.ended", call_id=call_id)
    assert ended_event.data["outcome"] == "busy"
    # The admin switches the trunk off; the web layer says so on the bus: it unregisters.
    await world.db.trunks.update(trunk_id, active=False)
    world.bus.publish("trunks.changed", trunk_id=trunk_id)
    await world.log.wait("trunk.state", trunk_id=trunk_id, state="disabled")
    for _ in range(100):
        if trunk_id not in world.runtime.trunk_states:
            break
        await asyncio.sleep(0.05)
    assert trunk_id not in world.runtime.trunk_states


async def test_no_answer_is_cancelled_at_the_dial_timeout(world: World, spawn: Any) -> None:
    provider, port = await start_provider(spawn, "no_answer.xml")
    trunk_id = await registered_trunk(world, port)
    call_id, events, ended = await dial(world, trunk_id, dial_timeout_ms=1500)
    await asyncio.wait_for(ended.wait(), 15)
    assert any(isinstance(e, CallRinging) for e in events)
    end = events[-1]
    assert isinstance(end, CallEnded) and end.outcome is CallOutcome.NO_ANSWER
    row = await finished_row(world, call_id)
    assert row.result == "no_answer" and row.client_status == "Клиент не ответил"
    assert row.answered_at is None and row.duration_ms >= 1500
    # sipp saw our CANCEL (it answered it 200 and the INVITE 487, then got our ACK).
    assert "call.ringing" in world.log.topics()


async def test_global_timeout_ends_an_answered_call(world: World, spawn: Any,
                                                    rtp_party: Any) -> None:
    customer = rtp_party(1000.0)
    provider, port = await start_provider(spawn, "provider.xml", rtp_port=customer.port)
    trunk_id = await registered_trunk(world, port)
    call_id, events, ended = await dial(world, trunk_id, global_timeout_ms=2500)
    await asyncio.wait_for(ended.wait(), 15)
    end = events[-1]
    # Answered, no operator joined before the project's global timeout: abandoned.
    assert isinstance(end, CallEnded) and end.outcome is CallOutcome.ABANDONED
    row = await finished_row(world, call_id)
    assert row.answered_at is not None and row.duration_ms >= 2500
    assert row.result == "abandoned" and row.client_status == "Клиент положил трубку в очереди"


@pytest.mark.parametrize(("code", "outcome", "sip_code", "client_status"), [
    (503, CallOutcome.CONGESTION, 503, "Перегрузка сети"),
    (404, CallOutcome.FAILED, 404, "Ошибка"),
    (603, CallOutcome.FAILED, 603, "Ошибка"),
    (480, CallOutcome.NO_ANSWER, 480, "Клиент не ответил"),
    (408, CallOutcome.NO_ANSWER, 408, "Клиент не ответил"),
])
async def test_provider_refusal_maps_to_the_outcome(
        world: World, spawn: Any, tmp_path: Path, code: int, outcome: CallOutcome,
        sip_code: int, client_status: str) -> None:
    scenario = refusing_provider(tmp_path, code)
    _, port = await start_provider(spawn, str(scenario))
    trunk_id = await registered_trunk(world, port)
    call_id, events, ended = await dial(world, trunk_id)
    await asyncio.wait_for(ended.wait(), 15)
    end = events[-1]
    assert isinstance(end, CallEnded) and end.outcome is outcome and end.sip_code == sip_code
    assert not any(isinstance(e, CallAnswered) for e in events)
    ended_event = await world.log.wait("call.ended", call_id=call_id)
    assert ended_event.data["outcome"] == outcome.value
    assert ended_event.data["sip_code"] == sip_code
    row = await finished_row(world, call_id)
    assert row.result == outcome.value and row.sip_code == sip_code
    assert row.client_status == client_status and row.operator_status == ""
    assert row.answered_at is None and row.bridged_at is None
    assert row.duration_ms == row.dial_ms and row.duration_ms >= 0
    assert row.billing_ms == row.wait_ms == row.talk_ms == 0 and row.price_kopecks == 0

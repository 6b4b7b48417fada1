"""Answered calls that end without an operator: the customer's audio stops (lost), or the
answering-machine detector hears a machine (a long recorded greeting) — sipp as the provider, a socket
as the customer's RTP."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from callworld import World, spoken_greeting, start_provider
from test_outcomes_sipp import _contact, finished_row

from sipspeak.dialer.ports import (
    AmdResult,
    AmdVerdict,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallOutcome,
    DialContact,
    OperatorDeclined,
    OperatorEvent,
    ProjectDialSettings,
)


async def answered_call(world: World, spawn: Any, customer: Any, *, amd: bool
                        ) -> tuple[str, list[CallEvent], asyncio.Event, int]:
    provider, port = await start_provider(spawn, "provider.xml", rtp_port=customer.port)
    trunk_id = await world.add_trunk(port)
    await world.log.wait("trunk.state", trunk_id=trunk_id, state="registered")
    project_id = await world.add_project(trunk_id, amd_enabled=amd)
    events: list[CallEvent] = []
    ended = asyncio.Event()
    calls = world.runtime.calls

    def on_call(event: CallEvent) -> None:
        events.append(event)
        if isinstance(event, CallAnswered):
            calls.start_hold_music(event.call_id)  # the customer hears us, and answers
        if isinstance(event, AmdResult) and event.verdict is AmdVerdict.MACHINE:
            calls.hang_up(event.call_id)  # what the dialer does, from inside the listener
        if isinstance(event, CallEnded):
            ended.set()

    calls.attach_dialer(on_call, None)
    contact_id = await _contact(world, project_id)
    settings = ProjectDialSettings(project_id=project_id, trunk_id=trunk_id,
                                   caller_id="74950001122", dial_timeout_ms=20_000,
                                   amd_enabled=amd)
    call_id = calls.originate(DialContact(contact_id=contact_id, phone="79030001122"), settings)
    return call_id, events, ended, trunk_id


async def test_customer_media_vanishing_ends_the_call_as_lost(
        world: World, spawn: Any, rtp_party: Any) -> None:
    customer = rtp_party(1000.0)
    call_id, events, ended, trunk_id = await answered_call(world, spawn, customer, amd=False)
    await world.log.wait("call.answered", call_id=call_id, timeout=15)
    await asyncio.sleep(1.0)
    assert customer.received  # hold music reached the customer, who talks back
    customer.press("5")  # a key press (RFC 4733) is published as call.dtmf
    dtmf = await world.log.wait("call.dtmf", call_id=call_id)
    assert dtmf.data["digit"] == "5" and dtmf.data["side"] == "customer"
    # An operator without a registered phone declines at once.
    declined: list[OperatorEvent] = []
    calls = world.runtime.calls
    calls.attach_dialer(calls._on_call, declined.append)
    lonely = await world.add_operator(trunk_id)
    calls.ring_operator("ring-lonely", lonely, call_id, auto_answer=False)
    for _ in range(100):
        if declined:
            break
        await asyncio.sleep(0.05)
    assert [type(e) for e in declined] == [OperatorDeclined]
    customer.sending = False  # the customer's side vanishes (no BYE, no RTP)
    await asyncio.wait_for(ended.wait(), 15)
    end = events[-1]
    assert isinstance(end, CallEnded) and end.outcome is CallOutcome.LOST
    row = await finished_row(world, call_id)
    assert row.result == "lost" and row.answered_at is not None and row.bridged_at is None
    assert row.billing_ms == row.wait_ms and row.talk_ms == 0
    # The process goes on: the next call through the same provider is answered.
    customer.sending = True
    second = calls.originate(DialContact(contact_id=row.contact_id or 0, phone="79030001122"),
                             ProjectDialSettings(project_id=row.project_id or 0,
                                                 trunk_id=trunk_id, caller_id="74950001122",
                                                 dial_timeout_ms=20_000, amd_enabled=False))
    await world.log.wait("call.answered", call_id=second, timeout=15)
    calls.hang_up(second)
    await world.log.wait("call.ended", call_id=second)


async def test_a_machine_is_hung_up_with_outcome_answering_machine(
        world: World, spawn: Any, rtp_party: Any, tmp_path: Path) -> None:
    customer = rtp_party(0.0, spoken_greeting(tmp_path))
    call_id, events, ended, _ = await answered_call(world, spawn, customer, amd=True)
    await asyncio.wait_for(ended.wait(), 20)
    verdicts = [e for e in events if isinstance(e, AmdResult)]
    assert [v.verdict for v in verdicts] == [AmdVerdict.MACHINE]
    end = events[-1]
    assert isinstance(end, CallEnded) and end.outcome is CallOutcome.ANSWERING_MACHINE
    amd = await world.log.wait("call.amd", call_id=call_id)
    assert amd.data["verdict"] == "machine"
    row = await finished_row(world, call_id)
    assert row.result == "answering_machine" and row.client_status == "Автоответчик"
    assert row.amd_result is not None and row.amd_result.startswith("machine")

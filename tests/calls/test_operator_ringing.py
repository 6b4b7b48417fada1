"""Offering a call to an operator, end to end: sipp is the trunk's provider, baresip
instances are the operator's phones, a socket is the customer's RTP.  The dialer's part is
played by the test through the ports (ring on CallAnswered, bridge on OperatorAnswered).

* Two phones registered for one extension both ring; the first to answer gets the call,
  the other is CANCELled (its SIP trace shows the CANCEL and its 487).
* The customer hangs up while the operator's phone still rings: the call is abandoned (the
  dialer's outcome for a person who answered and got no operator), the ring is CANCELled
  and the CDR row counts the wait.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from callworld import (
    OPERATOR_EXTENSION,
    World,
    baresip_phone,
    dominant_frequency,
    start_provider,
)
from test_outcomes_sipp import _contact, finished_row

from sipspeak.dialer.ports import (
    CallAnswered,
    CallEnded,
    CallEvent,
    CallOutcome,
    DialContact,
    OperatorAnswered,
    OperatorEvent,
    ProjectDialSettings,
)


async def start_phone(world: World, spawn: Any, directory: Path, *, freq: int,
                      auto_answer: bool, registered: int) -> Any:
    """A baresip phone with its SIP trace on; returns once ``registered`` phones are bound."""
    baresip_phone(directory, registrar_port=world.sip_port, freq=freq, auto_answer=auto_answer)
    phone = await spawn(["stdbuf", "-oL", "baresip", "-s", "-f", str(directory), "-t", "60"])
    phones = world.runtime.phones
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while len(phones.targets(OPERATOR_EXTENSION, loop.time())) < registered:
        if loop.time() > deadline:
            raise AssertionError(f"phone in {directory} did not register")
        await asyncio.sleep(0.05)
    return phone


class Dialer:
    """The dialer's side of the ports: rings the operator when the customer answers."""

    def __init__(self, world: World, operator_id: int) -> None:
        self.calls = world.runtime.calls
        self.operator_id = operator_id
        self.call_events: list[CallEvent] = []
        self.operator_events: list[OperatorEvent] = []
        self.ended = asyncio.Event()
        self.call_id = ""
        self.calls.attach_dialer(self.on_call, self.on_operator)

    def on_call(self, event: CallEvent) -> None:
        self.call_events.append(event)
        if isinstance(event, CallAnswered):
            self.calls.start_hold_music(event.call_id)
            self.calls.ring_operator("ring-1", self.operator_id, event.call_id,
                                     auto_answer=False)
        elif isinstance(event, CallEnded):
            self.ended.set()

    def on_operator(self, event: OperatorEvent) -> None:
        self.operator_events.append(event)
        if isinstance(event, OperatorAnswered):
            self.calls.bridge(self.call_id, event.operator_id)

    async def dial(self, world: World, project_id: int, trunk_id: int) -> str:
        contact_id = await _contact(world, project_id)
        self.call_id = self.calls.originate(
            DialContact(contact_id=contact_id, phone="79030001122"),
            ProjectDialSettings(project_id=project_id, trunk_id=trunk_id,
                                caller_id="74950001122", dial_timeout_ms=20_000,
                                amd_enabled=False))
        return self.call_id


async def test_both_phones_ring_the_first_to_answer_wins(
        world: World, spawn: Any, rtp_party: Any, tmp_path: Path) -> None:
    customer = rtp_party(1000.0)
    _, port = await start_provider(spawn, "provider.xml", rtp_port=customer.port)
    trunk_id = await world.add_trunk(port)
    await world.log.wait("trunk.state", trunk_id=trunk_id, state="registered")
    project_id = await world.add_project(trunk_id)
    operator_id = await world.add_operator(trunk_id, project_id)
    # The desk phone rings until someone picks it up; the softphone answers at once.
    desk = await start_phone(world, spawn, tmp_path / "desk", freq=660, auto_answer=False,
                             registered=1)
    await start_phone(world, spawn, tmp_path / "soft", freq=440, auto_answer=True,
                      registered=2)
    dialer = Dialer(world, operator_id)
    call_id = await dialer.dial(world, project_id, trunk_id)
    bridged = await world.log.wait("call.bridged", call_id=call_id, timeout=20)
    assert bridged.data["operator_id"] == operator_id
    assert [type(e) for e in dialer.operator_events] == [OperatorAnswered]
    # The desk phone rang too, and was cancelled once the softphone answered.
    out = await desk.read_until("Incoming call", timeout=10)
    out = await desk.read_until("SIP/2.0 487", timeout=10)
    assert "CANCEL sip:" in out
    await asyncio.sleep(2.0)
    # The audio is bridged to the phone that answered: its 440 Hz, not the desk's 660 Hz.
    assert abs(dominant_frequency(customer.audio()[-8000:]) - 440) < 20
    live = world.runtime.calls.get(call_id)
    assert live is not None and live.operator is not None
    assert live.operator.endpoint.packets_sent > 50  # the customer's audio goes to it
    assert not world.runtime.calls.rings or all(
        r.done for r in world.runtime.calls.rings.values())
    world.runtime.calls.hang_up(call_id)
    ended = await world.log.wait("call.ended", call_id=call_id)
    assert ended.data["outcome"] == "answered"
    row = await finished_row(world, call_id)
    assert row.result == "answered" and row.operator_id == operator_id
    assert row.operator_status == "Оператор ответил"


async def test_customer_hanging_up_while_the_operator_rings_is_abandoned(
        world: World, spawn: Any, rtp_party: Any, tmp_path: Path) -> None:
    customer = rtp_party(1000.0)
    # The customer answers, listens to the hold music for 3 s and hangs up (BYE).
    _, port = await start_provider(spawn, "provider_hangs_up.xml",
                                          rtp_port=customer.port, pause_ms=3000)
    trunk_id = await world.add_trunk(port)
    await world.log.wait("trunk.state", trunk_id=trunk_id, state="registered")
    project_id = await world.add_project(trunk_id, operator_timeout_s=60)
    operator_id = await world.add_operator(trunk_id, project_id)
    phone = await start_phone(world, spawn, tmp_path / "phone", freq=440, auto_answer=False,
                              registered=1)
    dialer = Dialer(world, operator_id)
    call_id = await dialer.dial(world, project_id, trunk_id)
    await phone.read_until("Incoming call", timeout=15)  # the operator's phone rings ...
    await asyncio.wait_for(dialer.ended.wait(), 20)
    end = dialer.call_events[-1]
    assert isinstance(end, CallEnded) and end.outcome is CallOutcome.ABANDONED
    assert end.sip_code is None
    assert not any(isinstance(e, OperatorAnswered) for e in dialer.operator_events)
    ended = await world.log.wait("call.ended", call_id=call_id)
    assert ended.data["outcome"] == "abandoned"
    # ... until the customer left: then the ring was CANCELled.
    out = await phone.read_until("SIP/2.0 487", timeout=10)
    assert "CANCEL sip:" in out
    assert customer.received  # the customer heard the hold music while waiting
    row = await finished_row(world, call_id)
    assert row.result == "abandoned"
    assert row.client_status == "Клиент положил трубку в очереди"
    assert row.operator_status == "Оператор не ответил" and row.operator_id is None
    assert row.answered_at is not None and row.bridged_at is None
    assert row.wait_ms > 0 and row.wait_ms == row.billing_ms and row.talk_ms == 0
    assert row.duration_ms == row.dial_ms + row.billing_ms


async def test_a_ring_withdrawn_while_it_is_set_up_never_rings(
        world: World, spawn: Any, rtp_party: Any, tmp_path: Path) -> None:
    customer = rtp_party(1000.0)
    _, port = await start_provider(spawn, "provider.xml", rtp_port=customer.port)
    trunk_id = await world.add_trunk(port)
    await world.log.wait("trunk.state", trunk_id=trunk_id, state="registered")
    project_id = await world.add_project(trunk_id)
    operator_id = await world.add_operator(trunk_id, project_id)
    phone = await start_phone(world, spawn, tmp_path / "phone", freq=440, auto_answer=True,
                              registered=1)
    # «Показывать номера» off: the phone's display gets the number masked too.
    await world.db.projects.update(project_id, show_numbers=False)
    in_use = world.runtime.calls.pool.in_use

    class Withdrawing(Dialer):
        def on_call(self, event: CallEvent) -> None:
            if isinstance(event, CallAnswered):
                # The queue offers the call, and withdraws the offer at once (another
                # operator took it) before the ring's media was even set up; then offers
                # it again.
                self.calls.ring_operator("ring-1", self.operator_id, event.call_id,
                                         auto_answer=True)
                self.calls.stop_ringing("ring-1")
                self.calls.ring_operator("ring-2", self.operator_id, event.call_id,
                                         auto_answer=True)
                return
            super().on_call(event)

    dialer = Withdrawing(world, operator_id)
    call_id = await dialer.dial(world, project_id, trunk_id)
    await world.log.wait("call.bridged", call_id=call_id, timeout=20)
    offered = [e.data["ring_id"] for e in world.log.all("call.offered")]
    assert offered == ["ring-2"]  # the withdrawn one never rang
    out = await phone.read_until("From:", timeout=10)
    assert "7903*****22" in out and "79030001122" not in out
    assert [type(e) for e in dialer.operator_events] == [OperatorAnswered]
    world.runtime.calls.hang_up(call_id)
    await world.log.wait("call.ended", call_id=call_id)
    await finished_row(world, call_id)
    assert world.runtime.calls.pool.in_use == in_use  # no RTP port left behind

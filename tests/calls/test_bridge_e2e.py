"""A whole outbound call: sipp as the trunk provider (401 on REGISTER, 407 on INVITE), baresip
as the operator's phone (registers with digest auth, auto-answers, plays 440 Hz), a socket
as the customer's RTP (plays 1 kHz).  The dialer's part is played by the test through the
ports: on CallAnswered ring the operator, on OperatorAnswered bridge.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
from callworld import (
    World,
    free_port,
    baresip_phone,
    dominant_frequency,
    read_stereo,
    start_provider,
)
from test_outcomes_sipp import _contact, finished_row

from sipspeak.dialer.ports import (
    CallAnswered,
    CallEvent,
    DialContact,
    OperatorAnswered,
    OperatorEvent,
    ProjectDialSettings,
)


async def operator_phone(world: World, spawn: Any, tmp_path: Path,
                         console_port: int | None = None) -> Any:
    directory = baresip_phone(tmp_path / "phone", registrar_port=world.sip_port,
                              console_port=console_port)
    phone = await spawn(["stdbuf", "-oL", "baresip", "-f", str(directory), "-t", "60"])
    try:
        await world.log.wait("phone.online", timeout=20, extension="101")
    except AssertionError:
        phone.kill()
        out, _ = await phone.proc.communicate()
        raise AssertionError(out.decode(errors="replace")[-3000:]) from None
    return phone


async def test_call_bridged_to_the_operator_phone_both_ways_recorded(
        world: World, spawn: Any, rtp_party: Any, tmp_path: Path) -> None:
    customer = rtp_party(1000.0)
    provider, port = await start_provider(spawn, "provider.xml", rtp_port=customer.port)
    trunk_id = await world.add_trunk(port)
    await world.log.wait("trunk.state", trunk_id=trunk_id, state="registered")
    project_id = await world.add_project(trunk_id)
    operator_id = await world.add_operator(trunk_id, project_id)
    console = free_port()
    await operator_phone(world, spawn, tmp_path, console)

    calls = world.runtime.calls
    call_events: list[CallEvent] = []
    operator_events: list[OperatorEvent] = []

    def on_call(event: CallEvent) -> None:
        call_events.append(event)
        if isinstance(event, CallAnswered):
            calls.start_hold_music(event.call_id)
            calls.ring_operator("ring-1", operator_id, event.call_id, auto_answer=True)

    def on_operator(event: OperatorEvent) -> None:
        operator_events.append(event)
        if isinstance(event, OperatorAnswered):
            calls.bridge(call_id, event.operator_id)

    calls.attach_dialer(on_call, on_operator)
    contact_id = await _contact(world, project_id)
    call_id = calls.originate(
        DialContact(contact_id=contact_id, phone="79030001122"),
        ProjectDialSettings(project_id=project_id, trunk_id=trunk_id, caller_id="74950001122",
                            dial_timeout_ms=20_000, amd_enabled=False))
    await world.log.wait("call.bridged", call_id=call_id, timeout=20)
    assert [type(e).__name__ for e in operator_events] == ["OperatorAnswered"]
    # The CDR row exists while the call lives (a crash now leaves it for close_dangling).
    live_call = calls.get(call_id)
    assert live_call is not None and live_call.cdr_id is not None
    open_row = await world.db.calls.get(live_call.cdr_id)
    assert open_row.ended_at is None and open_row.to_number == "79030001122"
    await asyncio.sleep(2.5)
    # Operator -> customer: baresip's 440 Hz reaches the customer's socket.
    heard = customer.audio()
    assert abs(dominant_frequency(heard[-8000:]) - 440) < 20

    # The operator puts the customer on hold (re-INVITE sendonly): music instead of him.
    await command(console, "/hold")
    hold = await world.log.wait("call.hold", call_id=call_id, on_hold=True)
    assert hold.data["on_hold"] is True
    await asyncio.sleep(1.5)
    assert abs(dominant_frequency(customer.audio()[-6000:]) - 440) > 20
    await command(console, "/resume")
    await world.log.wait("call.hold", call_id=call_id, on_hold=False)
    await asyncio.sleep(1.5)
    assert abs(dominant_frequency(customer.audio()[-6000:]) - 440) < 20
    # Customer -> operator: the bridge sends the customer's audio to the phone's leg (the
    # recording's left channel is tapped on that very path, checked below).
    live = calls.get(call_id)
    assert live is not None and live.operator is not None
    assert live.operator.endpoint.packets_sent > 100
    await command(console, "/hangup")  # the operator hangs up: BYE ends both legs
    ended = await world.log.wait("call.ended", call_id=call_id)
    assert ended.data["outcome"] == "answered"
    row = await finished_row(world, call_id)
    assert row.result == "answered" and row.operator_id == operator_id
    assert row.client_status == "Клиент ответил" and row.operator_status == "Оператор ответил"
    assert row.duration_ms == row.dial_ms + row.billing_ms
    assert row.billing_ms == row.wait_ms + row.talk_ms and row.talk_ms >= 2000
    assert row.price_kopecks > 0 and row.sip_call_id and row.project_id == project_id
    assert row.from_number == "74950001122" and row.contact_phone == "79030001122"
    # The recording: customer (1 kHz) on the left, operator (440 Hz) on the right.
    assert row.recording_path is not None
    path = Path(row.recording_path)
    for _ in range(100):
        if path.exists() and path.stat().st_size > 44 + 4 * 8000:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # the writer thread closes the file
    left, right = read_stereo(path)
    talk = slice(len(left) - 16000, len(left) - 4000)
    assert abs(dominant_frequency(left[talk]) - 1000) < 20
    assert abs(dominant_frequency(right[talk]) - 440) < 20
    assert np.abs(right[talk]).mean() > 500


async def command(console_port: int, text: str) -> None:
    """A command to baresip's UDP console (module cons)."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, remote_addr=("127.0.0.1", console_port))
    transport.sendto(text.encode() + b"\n")
    transport.close()


async def test_operator_who_does_not_answer_times_out(
        world: World, spawn: Any, rtp_party: Any, tmp_path: Path) -> None:
    customer = rtp_party(1000.0)
    provider, port = await start_provider(spawn, "provider.xml", rtp_port=customer.port)
    trunk_id = await world.add_trunk(port)
    await world.log.wait("trunk.state", trunk_id=trunk_id, state="registered")
    project_id = await world.add_project(trunk_id, operator_timeout_s=1)
    operator_id = await world.add_operator(trunk_id, project_id)
    directory = baresip_phone(tmp_path / "phone", registrar_port=world.sip_port,
                              auto_answer=False)
    phone = await spawn(["stdbuf", "-oL", "baresip", "-f", str(directory), "-t", "60"])
    await world.log.wait("phone.online", timeout=20, extension="101")
    calls = world.runtime.calls
    operator_events: list[OperatorEvent] = []

    def on_call(event: CallEvent) -> None:
        if isinstance(event, CallAnswered):
            calls.ring_operator("ring-1", operator_id, event.call_id, auto_answer=False)

    calls.attach_dialer(on_call, operator_events.append)
    contact_id = await _contact(world, project_id)
    call_id = calls.originate(
        DialContact(contact_id=contact_id, phone="79030001122"),
        ProjectDialSettings(project_id=project_id, trunk_id=trunk_id, caller_id="74950001122",
                            dial_timeout_ms=20_000, amd_enabled=False))
    await phone.read_until("Incoming call", timeout=15)  # the phone rang ...
    for _ in range(100):
        if operator_events:
            break
        await asyncio.sleep(0.05)
    # ... for the operator timeout, then the call layer cancelled it.
    assert [type(e).__name__ for e in operator_events] == ["OperatorRingTimeout"]
    await phone.read_until("session closed", timeout=10)  # our CANCEL reached it
    calls.hang_up(call_id)
    ended = await world.log.wait("call.ended", call_id=call_id)
    # Answered, then released without an operator (the queue timeout): abandoned.
    assert ended.data["outcome"] == "abandoned"
    row = await finished_row(world, call_id)
    assert row.operator_status == "Оператор не ответил" and row.operator_id is None

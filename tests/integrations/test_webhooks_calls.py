"""A whole inbound call — a provider's INVITE (sipp) answered, offered to the operator's
baresip phone, bridged, talked and hung up — reaches two webhook receivers as the call's
events, signed; the project hides numbers, so one receiver gets the caller's number masked
and the other, allowed full numbers, gets it whole."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1] / "calls"))
sys.path.insert(0, str(Path(__file__).parent))

import callworld
import test_webhooks_outbox
from callworld import SCENARIOS, World, free_port
from test_webhooks_outbox import SECRET, Receiver

from sipspeak.integrations.webhook_outbox import WebhookOutbox

# The fixtures of the call tests and of the outbox's receiver.
world, spawn, rtp_party = callworld.world, callworld.spawn, callworld.rtp_party
receiver = test_webhooks_outbox.receiver

LIFE = ["call.started", "call.offered", "call.answered", "call.bridged", "call.ended"]
INBOUND = ["call.started", "call.answered", "call.offered", "call.bridged", "call.ended"]
"""In the order an inbound call goes through them: answered by us, then offered."""


async def caller(spawn: Any, world: World, *, port: int, rtp_port: int) -> tuple[int, str]:
    """The provider calling the trunk's account (inbound.xml: talks 5 s, then hangs up)."""
    argv = ["sipp", f"127.0.0.1:{world.sip_port}", "-sf", str(SCENARIOS / "inbound.xml"),
            "-i", "127.0.0.1", "-p", str(port), "-mp", str(free_port()), "-s", "117049",
            "-m", "1", "-d", "5000", "-nostdin", "-timeout", "30s", "-timeout_error",
            "-key", "rtpport", str(rtp_port)]
    peer = await spawn(argv)
    out, _ = await asyncio.wait_for(peer.proc.communicate(), 35)
    return peer.proc.returncode or 0, out.decode(errors="replace")


async def test_an_inbound_call_reaches_the_receivers_masked_where_numbers_are_hidden(
        world: World, spawn: Any, rtp_party: Any, receiver: Receiver, tmp_path: Path) -> None:
    provider_port = free_port()
    trunk_id, project_id = await world.inbound_project(provider_port)
    await world.db.projects.update(project_id, show_numbers=False)
    operator_id = await world.add_operator(trunk_id, project_id)
    await world.start_phone(spawn, tmp_path / "phone")
    for path, full in (("/masked", False), ("/full", True)):
        receiver.secrets[path] = SECRET + path
        await world.db.webhooks.create(name=path, url=receiver.url(path), events=LIFE,
                                       secret=receiver.secrets[path], full_numbers=full)
    outbox = WebhookOutbox(world.db, world.bus)
    await outbox.start()
    try:
        code, out = await caller(spawn, world, port=provider_port,
                                 rtp_port=rtp_party(1000.0).port)
        assert code == 0, out[-2000:]
        ended = await world.log.wait("call.ended")
        call_id = ended.data["call_id"]
        masked = await receiver.wait(len(LIFE), "/masked")
        full = await receiver.wait(len(LIFE), "/full")
    finally:
        await outbox.aclose()
    assert all(r.signed for r in masked + full)
    assert [r.event["type"] for r in masked] == INBOUND
    assert [r.event["type"] for r in full] == INBOUND
    for got in (masked, full):
        # Each event once, with its own id; the same event has the same id at both.
        assert len({r.event["id"] for r in got}) == len(LIFE)
    assert [r.event["id"] for r in masked] == [r.event["id"] for r in full]
    events = {r.event["type"]: r.event for r in masked}
    for event in events.values():
        data = event["data"]
        assert data["call_id"] == call_id and data["project_id"] == project_id
        assert data["project_name"] == "Тест" and data["direction"] == "inbound"
        assert (data["phone"], data["phone_masked"]) == ("7903*****67", True)
    assert {r.event["data"]["phone"] for r in full} == {"79031234567"}
    contact = (await world.db.contacts.list(project_id=project_id))[0]
    assert events["call.ended"]["data"]["contact_id"] == contact.id
    offered = events["call.offered"]["data"]
    assert (offered["operator_id"], offered["operator_name"]) == (operator_id, "Оператор")
    end = events["call.ended"]["data"]
    assert end["outcome"] == "answered" and end["operator_id"] == operator_id
    assert end["duration_ms"] == end["ended_at"] - end["started_at"]
    assert end["talk_ms"] == end["ended_at"] - end["bridged_at"] > 3000
    assert end["recorded"] is True
    assert events["call.bridged"]["data"]["bridged_at"] == end["bridged_at"]
    # The times agree with the call's record in the calls report.
    for _ in range(100):
        if call_id in world.runtime.calls.finished:
            break
        await asyncio.sleep(0.05)
    row = await world.db.calls.get(world.runtime.calls.finished[call_id])
    assert end["started_at"] == row.started_at and end["cdr_id"] == row.id
    assert abs(end["duration_ms"] - row.duration_ms) <= 2
    assert events["call.started"]["occurred_at"] == row.started_at

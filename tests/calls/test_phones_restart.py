"""A restart of the service keeps the operators' phones reachable.

A baresip phone registers (refresh every 300 s, so it does not register again during the
test), the call runtime stops and a new one starts on the same SQLite file with a new SIP
port; an inbound call then reaches the phone through the registration kept in storage."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from callworld import World, free_port
from test_inbound_sipp import run_uac


async def test_a_registered_phone_is_rung_after_a_restart(
        world: World, spawn: Any, rtp_party: Any, tmp_path: Path) -> None:
    caller = rtp_party(1000.0)
    provider_port = free_port()
    trunk_id, project_id = await world.inbound_project(provider_port)
    operator_id = await world.add_operator(trunk_id, project_id)
    await world.start_phone(spawn, tmp_path / "phone")
    for _ in range(100):  # the binding is written behind the REGISTER's answer
        if await world.db.phone_bindings.live(0):
            break
        await asyncio.sleep(0.05)
    old_port = world.sip_port

    await world.restart()
    assert world.sip_port != old_port
    restored = world.log.all("phone.online")
    assert len(restored) == 2 and restored[-1].data["user_id"] == operator_id
    loop = asyncio.get_running_loop()
    [target] = world.runtime.phones.targets("101", loop.time())
    assert target.destination.transport == "UDP" and target.destination.host == "127.0.0.1"

    provider = asyncio.create_task(run_uac(spawn, world, "inbound.xml", port=provider_port,
                                           service="117049", rtpport=str(caller.port),
                                           pause_ms=3000))
    inbound = await world.log.wait("call.inbound", timeout=20)
    bridged = await world.log.wait("call.bridged", call_id=inbound.data["call_id"], timeout=20)
    assert bridged.data["operator_id"] == operator_id
    code, out = await provider
    assert code == 0, out[-2000:]
    ended = await world.log.wait("call.ended", call_id=inbound.data["call_id"])
    assert ended.data["outcome"] == "answered"
    # Only the one REGISTER at the start: the phone was reached without registering again.
    assert len(world.log.all("phone.online")) == 2


async def test_a_phone_whose_sip_password_changed_is_not_restored(
        world: World, spawn: Any, tmp_path: Path) -> None:
    trunk_id, project_id = await world.inbound_project(free_port())
    operator_id = await world.add_operator(trunk_id, project_id)
    await world.start_phone(spawn, tmp_path / "phone")
    for _ in range(100):
        if await world.db.phone_bindings.live(0):
            break
        await asyncio.sleep(0.05)
    # The administrator changes the operator's SIP password (to lock the phone out).
    await world.db.users.update(operator_id, sip_password="new-secret-9")
    await world.restart()
    loop = asyncio.get_running_loop()
    assert world.runtime.phones.targets("101", loop.time()) == []
    assert len(world.log.all("phone.online")) == 1  # the first registration only

"""Operators' phones going offline: a phone that unregisters (Expires: 0) and a binding that
expires unrefreshed both put ``phone.offline`` on the bus.  sipp plays the phone (REGISTER,
401, REGISTER with digest credentials)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from callworld import OPERATOR_EXTENSION, OPERATOR_PASSWORD, SCENARIOS, World, free_port


async def run_phone(spawn: Any, world: World, scenario: str, *, pause_ms: int = 0,
                    timeout: float = 20.0, **keys: str) -> tuple[int, str]:
    """sipp as an operator's phone registering his extension; its exit status and output."""
    argv = ["sipp", f"127.0.0.1:{world.sip_port}", "-sf", str(SCENARIOS / scenario),
            "-i", "127.0.0.1", "-p", str(free_port()), "-mp", str(free_port()),
            "-s", OPERATOR_EXTENSION, "-au", OPERATOR_EXTENSION, "-ap", OPERATOR_PASSWORD,
            "-m", "1", "-d", str(pause_ms), "-nostdin", "-timeout", f"{int(timeout)}s",
            "-timeout_error"]
    for key, value in keys.items():
        argv += ["-key", key, value]
    peer = await spawn(argv)
    try:
        out, _ = await asyncio.wait_for(peer.proc.communicate(), timeout + 5)
    except TimeoutError:
        peer.kill()
        raise
    return peer.proc.returncode or 0, out.decode(errors="replace")


async def test_a_phone_that_unregisters_goes_offline(world: World, spawn: Any) -> None:
    operator_id = await world.add_operator(None)
    phone = asyncio.create_task(run_phone(spawn, world, "phone_unregister.xml",
                                          pause_ms=500))
    online = await world.log.wait("phone.online", extension=OPERATOR_EXTENSION)
    assert online.data["user_id"] == operator_id and len(online.data["contacts"]) == 1
    offline = await world.log.wait("phone.offline", extension=OPERATOR_EXTENSION)
    assert offline.data["user_id"] == operator_id
    assert offline.data["reason"] == "unregistered"
    code, out = await phone
    assert code == 0, out[-2000:]  # every REGISTER was answered 200 in the end
    loop = asyncio.get_running_loop()
    assert world.runtime.phones.targets(OPERATOR_EXTENSION, loop.time()) == []
    assert not world.runtime.phones.is_online(OPERATOR_EXTENSION, loop.time())


@pytest.mark.registrar(min_expires=1)
async def test_a_binding_that_is_not_refreshed_expires(world: World, spawn: Any) -> None:
    operator_id = await world.add_operator(None)
    code, out = await run_phone(spawn, world, "phone_register.xml", expires="1")
    assert code == 0, out[-2000:]
    online = await world.log.wait("phone.online", extension=OPERATOR_EXTENSION)
    assert online.data["user_id"] == operator_id
    # No refresh comes: the registrar's expiry drops the binding a second later.
    offline = await world.log.wait("phone.offline", extension=OPERATOR_EXTENSION, timeout=10)
    assert offline.data["reason"] == "expired" and offline.data["user_id"] == operator_id
    loop = asyncio.get_running_loop()
    assert not world.runtime.phones.is_online(OPERATOR_EXTENSION, loop.time())

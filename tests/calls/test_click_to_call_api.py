"""Click-to-call through the REST API: the operator's phone (baresip) rings and auto-answers,
then the customer is dialled through the operator's trunk (sipp, 407, 183 with early media,
then 200) and bridged;
``GET /api/v1/calls/{id}`` follows the call to its CDR row."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from callworld import World, baresip_phone, dominant_frequency, read_stereo, start_provider

from sipspeak.accounts import create_token
from sipspeak.app import Services
from sipspeak.config import load_config
from sipspeak.security import hash_password
from sipspeak.web.app import create_app


async def test_click_to_call_rings_operator_first_then_bridges_the_customer(
        world: World, spawn: Any, rtp_party: Any, tmp_path: Path) -> None:
    customer = rtp_party(1000.0)
    provider, port = await start_provider(spawn, "provider_early.xml", rtp_port=customer.port)
    trunk_id = await world.add_trunk(port, host=f"127.0.0.1:{port}")
    await world.log.wait("trunk.state", trunk_id=trunk_id, state="registered")
    operator_id = await world.add_operator(trunk_id)
    directory = baresip_phone(tmp_path / "phone", registrar_port=world.sip_port)
    await spawn(["stdbuf", "-oL", "baresip", "-f", str(directory), "-t", "60"])
    await world.log.wait("phone.online", timeout=20, extension="101")

    await world.db.users.create(role="admin", full_name="Админ", email="admin@x.test",
                                password_hash=hash_password("pw-123456"))
    token = await create_token(world.db, "admin@x.test")
    config = load_config(environ={}).with_overrides(
        {("storage", "data_dir"): str(tmp_path / "data")})
    services = Services(config=config, db=world.db, bus=world.bus,
                        call_runtime=world.runtime)
    assert services.trunk_states[trunk_id].value == "registered"
    server = TestServer(create_app(services))
    await server.start_server()
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with aiohttp.ClientSession(headers=headers) as http:
            base = str(server.make_url("/api/v1/calls"))
            async with http.post(base, json={"operator_id": operator_id,
                                             "phone": "79030001122"}) as response:
                assert response.status == 201, await response.text()
                created = await response.json()
            call_id = created["id"]
            # 183 with SDP: the operator already hears the customer's side and vice versa.
            await world.log.wait("call.ringing", call_id=call_id, timeout=20)
            await asyncio.sleep(1.5)
            assert "call.answered" not in world.log.topics()
            assert abs(dominant_frequency(customer.audio()[-6000:]) - 440) < 20
            await world.log.wait("call.bridged", call_id=call_id, timeout=20)
            topics = world.log.topics()
            # The customer is dialled only after the operator answered (his leg first).
            async with http.get(f"{base}/{call_id}") as response:
                live = await response.json()
            assert live["state"] == "bridged" and live["operator_id"] == operator_id
            await asyncio.sleep(2.0)
            assert abs(dominant_frequency(customer.audio()[-8000:]) - 440) < 20
            world.runtime.calls.hang_up(call_id)
            await world.log.wait("call.ended", call_id=call_id)
            for _ in range(100):
                if call_id in world.runtime.calls.finished:
                    break
                await asyncio.sleep(0.05)
            async with http.get(f"{base}/{call_id}") as response:
                done = await response.json()
            async with http.post(base, json={"operator_id": operator_id}) as response:
                assert response.status == 422
            # A call that cannot be placed is refused in the caller's language.
            admin = await world.db.users.by_email("admin@x.test")
            for language, message in (("ru", "номер телефона должен состоять из цифр"),
                                      ("en", "the phone number must consist of digits")):
                await world.db.users.update(admin.id, language=language)
                async with http.post(base, json={"operator_id": operator_id,
                                                 "phone": "+7 (903) нет"}) as response:
                    assert response.status == 422
                    assert (await response.json())["error"]["message"] == message
    finally:
        await server.close()
    assert topics.index("call.ringing") < topics.index("call.answered")
    cdr = done["cdr"]
    assert done["state"] == "ended" and cdr["kind"] == "click" and cdr["result"] == "answered"
    assert cdr["operator_id"] == operator_id and cdr["trunk_id"] == trunk_id
    assert cdr["duration_ms"] == cdr["dial_ms"] + cdr["billing_ms"] and cdr["wait_ms"] == 0
    assert cdr["from_number"] == "117049"  # no project: the trunk's account is the caller ID
    await asyncio.sleep(0.3)
    left, right = read_stereo(Path(cdr["recording_path"]))
    talk = slice(len(left) - 12000, len(left) - 4000)
    assert abs(dominant_frequency(left[talk]) - 1000) < 20
    assert abs(dominant_frequency(right[talk]) - 440) < 20

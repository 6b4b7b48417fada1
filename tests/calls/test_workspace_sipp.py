"""The workspace follows a real inbound call: sipp is the provider calling in, baresip the
operator's phone (auto-answer); the caller's contact is found or created for the card."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from callworld import World, free_port
from test_inbound_sipp import run_uac

from sipspeak.accounts import create_token
from sipspeak.app import Services
from sipspeak.config import load_config
from sipspeak.web.app import create_app

CALLER = "79031234567"  # inbound.xml's From


async def test_the_workspace_shows_the_inbound_call_and_its_callers_card(
        world: World, spawn: Any, rtp_party: Any, tmp_path: Path) -> None:
    caller = rtp_party(1000.0)
    provider_port = free_port()
    trunk_id, project_id = await world.inbound_project(provider_port)
    operator_id = await world.add_operator(trunk_id, project_id)
    operator = await world.db.users.get(operator_id)
    await world.start_phone(spawn, tmp_path / "phone")
    token = await create_token(world.db, operator.email)
    config = load_config(environ={}).with_overrides(
        {("storage", "data_dir"): str(tmp_path / "data")})
    services = Services(config=config, db=world.db, bus=world.bus, call_runtime=world.runtime)
    server = TestServer(create_app(services), host="127.0.0.1")
    await server.start_server()
    pictures: list[dict[str, Any]] = []
    try:
        async with aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {token}"}) as http:
            async with http.ws_connect(server.make_url("/api/v1/workspace")) as socket:
                first = json.loads((await socket.receive(timeout=10)).data)
                assert first["telephony"] is True and first["phone"] == "online"
                assert first["calls"] == [] and first["last_call"] is None
                provider = asyncio.create_task(run_uac(
                    spawn, world, "inbound.xml", port=provider_port, service="117049",
                    rtpport=str(caller.port), pause_ms=3000))
                while not any(c["phase"] == "bridged" for p in pictures for c in p["calls"]):
                    pictures.append(json.loads((await socket.receive(timeout=20)).data))
                code, out = await provider
                assert code == 0, out[-2000:]
                while pictures[-1]["calls"] or pictures[-1]["last_call"] is None:
                    pictures.append(json.loads((await socket.receive(timeout=20)).data))
    finally:
        await server.close()
    talking = next(c for p in pictures for c in p["calls"] if c["phase"] == "bridged")
    contact = await world.db.contacts.get(talking["contact_id"])
    # A new caller: his contact is created in the project, enriched, and not dialled back.
    assert (contact.project_id, contact.phone, contact.dial_state) == (
        project_id, f"+{CALLER}", "called")
    assert contact.region and contact.timezone
    assert (talking["direction"], talking["phone"], talking["project"], talking["offered"]) == (
        "inbound", CALLER, "Тест", False)
    last = pictures[-1]["last_call"]
    assert (last["contact_id"], last["project_id"], last["direction"]) == (
        contact.id, project_id, "inbound")
    row = await world.db.calls.get(last["cdr_id"])
    assert row.contact_id == contact.id and row.operator_id == operator_id
    # The call through the API: his own, with the number masked once the project hides
    # numbers; another operator may not read it at all.
    await world.db.projects.update(project_id, show_numbers=False)
    await world.db.users.create(role="operator", full_name="Другой", email="other@x.test",
                                password_hash="x")
    other = await create_token(world.db, "other@x.test")
    server = TestServer(create_app(services), host="127.0.0.1")
    await server.start_server()
    try:
        url = server.make_url(f"/api/v1/calls/{row.id}")
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            async with http.get(url) as response:
                cdr = (await response.json())["cdr"]
        assert (cdr["contact_phone"], cdr["from_number"]) == ("7903*****67", "7903*****67")
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {other}"}) as http:
            async with http.get(url) as response:
                assert response.status == 404
    finally:
        await server.close()

"""Interop: a real sipp UAC registers with Digest auth to our registrar over UDP,
through SipEndpoint and the UserAgent's REGISTER extension point."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sipspeak.sip.auth import DigestServer, StoredSecret
from sipspeak.sip.registrar import ExtensionOnline, Registrar, RegistrarEvent
from sipspeak.sip.registrar_aio import RegisterHandler
from sipspeak.sip.transport import SipEndpoint


async def lookup(user: str) -> StoredSecret | None:
    await asyncio.sleep(0)  # as the storage layer would
    return StoredSecret.from_password("pw" + user) if user.startswith("10") else None


@dataclass
class RegistrarUnderTest:
    handler: RegisterHandler
    events: list[RegistrarEvent]
    port: int


@pytest.fixture
async def registrar(endpoint: SipEndpoint) -> AsyncIterator[RegistrarUnderTest]:
    events: list[RegistrarEvent] = []
    handler = RegisterHandler(
        registrar=Registrar(min_expires=60, max_expires=3600),
        # sipp 3.6 reads only the first challenge and knows MD5 only.
        auth=DigestServer(
            realm="sipspeak",
            key=b"k" * 32,
            algorithms=("MD5",),
            max_failures=3,
            lockout_seconds=60,
        ),
        lookup=lookup,
        on_event=events.append,
    )
    handler.attach(endpoint.ua)
    port = endpoint.ua.addresses["UDP"].port
    try:
        yield RegistrarUnderTest(handler, events, port)
    finally:
        await handler.aclose()


async def sipp_register(
    spawn: Callable[..., Any],
    scenarios: Path,
    pick_port: Callable[..., int],
    scenario: str,
    port: int,
    *,
    user: str,
    password: str,
    transport: str = "u1",
) -> tuple[int, str]:
    peer = await spawn(
        [
            "sipp", f"127.0.0.1:{port}",
            "-sf", str(scenarios / scenario),
            "-i", "127.0.0.1",
            "-p", str(pick_port()),
            "-cp", str(pick_port()),
            "-mp", str(pick_port()),
            "-s", user, "-au", user, "-ap", password,
            "-t", transport,
            "-m", "1", "-nostdin",
            "-timeout", "10s", "-timeout_error",
        ]
    )  # fmt: skip
    code, out = await peer.wait(20)
    return code, out[-2000:]


async def test_sipp_registers_with_right_password(
    registrar: RegistrarUnderTest, spawn: Any, scenarios: Path, pick_port: Any
) -> None:
    code, out = await sipp_register(
        spawn,
        scenarios,
        pick_port,
        "reg_auth_ok.xml",
        registrar.port,
        user="101",
        password="pw101",
    )
    assert code == 0, out
    now = asyncio.get_running_loop().time()
    [binding] = registrar.handler.registrar.lookup("101", now)
    assert binding.uri.user == "101" and binding.uri.host == "127.0.0.1"
    assert 290 < binding.expires_at - now <= 300
    assert binding.source is not None and binding.source.host == "127.0.0.1"
    assert binding.source.transport == "UDP"
    assert [type(e) for e in registrar.events] == [ExtensionOnline]


async def test_sipp_wrong_password_then_lockout(
    registrar: RegistrarUnderTest, spawn: Any, scenarios: Path, pick_port: Any
) -> None:
    lockout = registrar.handler.auth.lockout
    for failures in (1, 2):
        code, out = await sipp_register(
            spawn,
            scenarios,
            pick_port,
            "reg_auth_wrong.xml",
            registrar.port,
            user="101",
            password="nope",
        )
        assert code == 0, out  # the scenario demands 401 after the credentials
        assert (
            lockout.failures("127.0.0.1", asyncio.get_running_loop().time()) == failures
        )
    code, out = await sipp_register(
        spawn,
        scenarios,
        pick_port,
        "reg_auth_lockout.xml",
        registrar.port,
        user="101",
        password="nope",
    )
    assert code == 0, out  # third failure: 403
    # Locked out: even the right password gets 403 at once.
    code, out = await sipp_register(
        spawn,
        scenarios,
        pick_port,
        "reg_auth_locked.xml",
        registrar.port,
        user="101",
        password="pw101",
    )
    assert code == 0, out
    now = asyncio.get_running_loop().time()
    assert lockout.is_locked("127.0.0.1", now)
    assert registrar.handler.registrar.lookup("101", now) == []
    assert registrar.events == []


async def test_sipp_registers_over_tcp_and_the_binding_keeps_the_connection(
    registrar: RegistrarUnderTest,
    endpoint: SipEndpoint,
    spawn: Any,
    scenarios: Path,
    pick_port: Any,
) -> None:
    local = await endpoint.listen_tcp("127.0.0.1", 0)
    code, out = await sipp_register(
        spawn,
        scenarios,
        pick_port,
        "reg_auth_ok.xml",
        local.port,
        user="102",
        password="pw102",
        transport="t1",
    )
    assert code == 0, out
    [binding] = registrar.handler.registrar.lookup(
        "102", asyncio.get_running_loop().time()
    )
    assert binding.source is not None and binding.source.transport == "TCP"
    assert binding.source.connection is not None

"""An operator's phone on SIP over TLS, end to end: the call runtime listens on
``tls:127.0.0.1:0`` ([sip] tls_cert / tls_key), a baresip phone registers over TLS with digest
auth, and an inbound call from the trunk's provider (sipp over UDP) is offered to the phone
on the very TLS connection its REGISTER opened, answered and bridged.  Bad settings stop the
start with one line naming the setting and the file."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tlscerts import TlsFiles, make_tls_files, other_key

sys.path.insert(0, str(Path(__file__).parents[1] / "calls"))

from callworld import (
    OPERATOR_EXTENSION,
    RtpParty,
    World,
    baresip_phone,
    dominant_frequency,
    free_port,
    free_port_range,
)
from test_inbound_sipp import run_uac

from sipspeak.calls.runtime import CallRuntime, CallRuntimeError
from sipspeak.config import Config, ConfigError, load_config
from sipspeak.events import EventBus
from sipspeak.storage import Database


def tls_config(files: TlsFiles, *, key: Path | None = None,
               listen: tuple[str, ...] = ("udp:127.0.0.1:0", "tls:127.0.0.1:0")) -> Config:
    first = free_port_range(400)
    return load_config(environ={}).with_overrides({
        ("sip", "listen"): list(listen),
        ("sip", "tls_cert"): str(files.cert), ("sip", "tls_key"): str(key or files.key),
        ("rtp", "port_min"): first, ("rtp", "port_max"): first + 400,
        ("rtp", "inactivity_timeout"): 2,
    })


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    return make_tls_files(tmp_path / "pki")


@pytest.fixture
async def tls_world(tmp_path: Path, spawn: Any, tls_files: TlsFiles) -> AsyncIterator[World]:
    db = await Database.open(tmp_path / "calls.db")
    bus = EventBus()
    config = tls_config(tls_files)

    async def start() -> CallRuntime:
        return await CallRuntime.start(config, db, bus, recordings_dir=tmp_path / "rec",
                                       trunk_reconcile_interval=0.5, trunk_stop_timeout=1.0)

    world = World(db, bus, await start(), tmp_path, start)
    try:
        yield world
    finally:
        await world.runtime.aclose()
        await db.close()


def tls_phone(directory: Path, *, tls_port: int, ca: Path) -> Path:
    """The operator's baresip phone registering over TLS to ``tls_port``, trusting ``ca``."""
    baresip_phone(directory, registrar_port=tls_port)
    accounts = directory / "accounts"
    aor = f"127.0.0.1:{tls_port}>"
    assert aor in accounts.read_text()
    accounts.write_text(accounts.read_text().replace(aor, f"127.0.0.1:{tls_port};transport=tls>"))
    with (directory / "config").open("a") as config:
        config.write(f"sip_cafile {ca}\n")
    return directory


async def test_a_phone_registered_over_tls_is_offered_calls_on_its_connection(
        tls_world: World, spawn: Any, tls_files: TlsFiles, tmp_path: Path) -> None:
    caller = RtpParty(1000.0)  # the customer's RTP
    caller.start()
    try:
        await phone_call_over_tls(tls_world, spawn, tls_files, tmp_path, caller)
    finally:
        await caller.close()


async def phone_call_over_tls(world: World, spawn: Any, tls_files: TlsFiles, tmp_path: Path,
                              caller: RtpParty) -> None:
    [udp, tls] = world.runtime.addresses
    assert (udp.transport, tls.transport) == ("UDP", "TLS")
    provider_port = free_port()
    trunk_id, project_id = await world.inbound_project(provider_port)
    operator_id = await world.add_operator(trunk_id, project_id)
    directory = tls_phone(tmp_path / "phone", tls_port=tls.port, ca=tls_files.ca)
    phone = await spawn(["stdbuf", "-oL", "baresip", "-s", "-f", str(directory), "-t", "60"])
    await world.log.wait("phone.online", timeout=20, extension=OPERATOR_EXTENSION)

    # The binding is the TLS connection the REGISTER came over.
    loop = asyncio.get_running_loop()
    [target] = world.runtime.phones.targets(OPERATOR_EXTENSION, loop.time())
    assert target.destination.transport == "TLS" and target.destination.connection is not None
    [connection] = world.runtime.endpoint.stream_connections
    assert connection == target.destination
    register = await phone.read_until("REGISTER sip:", 5)
    assert f"TLS 127.0.0.1:{connection.port} -> 127.0.0.1:{tls.port}" in register

    provider = asyncio.create_task(run_uac(spawn, world, "inbound.xml", port=provider_port,
                                           service="117049", rtpport=str(caller.port),
                                           pause_ms=3000))
    inbound = await world.log.wait("call.inbound", timeout=20)
    call_id = inbound.data["call_id"]
    bridged = await world.log.wait("call.bridged", call_id=call_id, timeout=20)
    assert bridged.data["operator_id"] == operator_id
    code, out = await provider
    assert code == 0, out[-2000:]
    ended = await world.log.wait("call.ended", call_id=call_id)
    assert ended.data["outcome"] == "answered"
    # The phone's 440 Hz reached the caller through the bridge.
    assert abs(dominant_frequency(caller.audio()[-10000:-2000]) - 440) < 20

    # The INVITE reached the phone over TLS, from our TLS port to the connection's port,
    # with a Via saying TLS and a Contact with ;transport=tls; no second connection was
    # opened.
    trace = await phone.read_until("INVITE sip:", 5)
    before, _, invite = trace.partition("INVITE sip:")
    assert before.rsplit("#", 1)[-1].strip() == (
        f"TLS 127.0.0.1:{tls.port} -> 127.0.0.1:{connection.port}")
    head = invite.split("\n\n", 1)[0]
    assert f"Via: SIP/2.0/TLS 127.0.0.1:{tls.port};" in head
    assert f"Contact: <sip:sipspeak@127.0.0.1:{tls.port};transport=tls>" in head
    assert world.runtime.endpoint.stream_connections == [connection]


async def test_bad_sip_certificate_settings_stop_the_start_naming_the_file(
        tls_files: TlsFiles, tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "calls.db")
    try:
        wrong = other_key(tmp_path / "wrong-key.pem")
        config = tls_config(tls_files, key=wrong)
        with pytest.raises(CallRuntimeError) as raised:
            await CallRuntime.start(config, db, EventBus())
        assert str(raised.value) == (
            f"[sip] tls_key: {wrong} does not match the certificate in {tls_files.cert}")

        missing = tmp_path / "no-such-key.pem"
        port = free_port()
        config = tls_config(tls_files, key=missing,
                            listen=(f"udp:127.0.0.1:{port}", "tls:127.0.0.1:0"))
        with pytest.raises(CallRuntimeError) as raised:
            await CallRuntime.start(config, db, EventBus())
        assert str(raised.value) == f"[sip] tls_key: {missing} does not exist"
        # Nothing was bound: the UDP port is still free.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", port))
    finally:
        await db.close()


def test_a_tls_listen_address_needs_a_certificate_and_key() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(environ={"SIPSPEAK_SIP_LISTEN": "udp:0.0.0.0:5060,tls:0.0.0.0:5061"})
    assert str(raised.value) == ("[sip] tls_cert: the listen address tls:0.0.0.0:5061 needs a "
                                 "certificate and key ([sip] tls_cert, tls_key)")
    with pytest.raises(ConfigError) as raised:
        load_config(environ={"SIPSPEAK_SIP_TLS_CERT": "/etc/ssl/sip.pem"})
    assert str(raised.value) == "[sip] tls_key: must be set together with tls_cert"
    with pytest.raises(ConfigError) as raised:
        load_config(environ={"SIPSPEAK_SIP_LISTEN": "tls:0.0.0.0"})
    assert "[sip] listen" in str(raised.value)
    with pytest.raises(ConfigError) as raised:
        load_config(environ={"SIPSPEAK_SIP_LISTEN": "sctp:0.0.0.0:5060"})
    assert "transport must be udp, tcp, tls or ws" in str(raised.value)
    config = load_config(environ={"SIPSPEAK_SIP_LISTEN": "udp:0.0.0.0:5060,tls:0.0.0.0:5061",
                                  "SIPSPEAK_SIP_TLS_CERT": "/etc/ssl/sip.pem",
                                  "SIPSPEAK_SIP_TLS_KEY": "/etc/ssl/sip.key"})
    assert config.get("sip", "listen") == ["udp:0.0.0.0:5060", "tls:0.0.0.0:5061"]

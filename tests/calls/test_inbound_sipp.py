"""Calls that come in: a provider's INVITE on a trunk goes to the project's queue (ring-all
operators when no ACD is attached); a stranger's INVITE gets 403."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from callworld import (
    SCENARIOS,
    World,
    baresip_phone,
    dominant_frequency,
    free_port,
    read_stereo,
)

from sipspeak.calls import trunks
from sipspeak.sip import trunk_aio
from sipspeak.storage.models import NewContact


async def run_uac(spawn: Any, world: World, scenario: str, *, port: int, service: str,
                  timeout: float = 30.0, pause_ms: int = 1000, source: str = "127.0.0.1",
                  **keys: str) -> tuple[int, str]:
    argv = ["sipp", f"127.0.0.1:{world.sip_port}", "-sf", str(SCENARIOS / scenario),
            "-i", source, "-p", str(port), "-mp", str(free_port()), "-s", service,
            "-m", "1", "-d", str(pause_ms), "-nostdin", "-timeout", f"{int(timeout)}s", "-timeout_error"]
    for key, value in keys.items():
        argv += ["-key", key, value]
    peer = await spawn(argv)
    try:
        out, _ = await asyncio.wait_for(peer.proc.communicate(), timeout + 5)
    except TimeoutError:
        peer.kill()
        raise
    return peer.proc.returncode or 0, out.decode(errors="replace")


async def test_inbound_call_reaches_an_operator_of_the_trunks_project(
        world: World, spawn: Any, rtp_party: Any, tmp_path: Path) -> None:
    caller = rtp_party(1000.0)
    provider_port = free_port()
    trunk_id, project_id = await world.inbound_project(provider_port)
    operator_id = await world.add_operator(trunk_id, project_id)
    await world.start_phone(spawn, tmp_path / "phone")

    provider = asyncio.create_task(run_uac(spawn, world, "inbound.xml", port=provider_port,
                                           service="117049", rtpport=str(caller.port),
                                           pause_ms=5000))
    inbound = await world.log.wait("call.inbound", timeout=20)
    assert inbound.data["project_id"] == project_id
    call_id = inbound.data["call_id"]
    bridged = await world.log.wait("call.bridged", call_id=call_id, timeout=20)
    assert bridged.data["operator_id"] == operator_id
    code, out = await provider  # the caller talked, then hung up (BYE answered 200)
    assert code == 0, out[-2000:]
    ended = await world.log.wait("call.ended", call_id=call_id)
    assert ended.data["outcome"] == "answered"
    # The operator's 440 Hz reached the caller.
    assert abs(dominant_frequency(caller.audio()[-10000:-2000]) - 440) < 20
    for _ in range(100):
        if call_id in world.runtime.calls.finished:
            break
        await asyncio.sleep(0.05)
    row = await world.db.calls.get(world.runtime.calls.finished[call_id])
    assert row.direction == "inbound" and row.kind == "inbound" and row.result == "answered"
    assert row.contact_phone == "79031234567" and row.to_number == "117049"
    assert row.duration_ms == row.dial_ms + row.wait_ms + row.talk_ms and row.talk_ms > 3000
    await asyncio.sleep(0.3)
    left, right = read_stereo(Path(row.recording_path or ""))
    talk = slice(len(left) - 16000, len(left) - 8000)
    assert abs(dominant_frequency(left[talk]) - 1000) < 20
    assert abs(dominant_frequency(right[talk]) - 440) < 20


async def test_invite_from_a_stranger_is_forbidden(world: World, spawn: Any) -> None:
    # A trunk exists on this host, but the stranger neither comes from its port nor calls
    # its account, and his From names no operator: no relay to the external number.
    await world.add_trunk(free_port())
    await world.add_operator(None)
    code, out = await run_uac(spawn, world, "outsider.xml", port=free_port(),
                              service="79990000000", fromuser="hacker", timeout=15)
    assert code == 0, out[-2000:]
    assert not world.runtime.calls.calls
    assert await world.db.calls.list() == []
    # An operator's extension without credentials is challenged (407), not relayed.
    code, out = await run_uac(spawn, world, "challenged.xml", port=free_port(),
                              service="79990000000", fromuser="101", timeout=15)
    assert code == 0, out[-2000:]
    assert await world.db.calls.list() == []


async def test_provider_may_call_from_any_address_of_its_host_name(
        world: World, spawn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # The provider's name resolves to two servers; we register to the first, calls come from
    # the second.  The name's answer is given here (the test has no DNS of its own); the
    # trunk still registers to the real resolution of "localhost" (127.0.0.1).
    lookups: list[str] = []

    async def provider_dns(host: str) -> frozenset[str]:
        lookups.append(host)
        return frozenset({"127.0.0.1", "127.0.0.2"} if host == "localhost" else set())

    monkeypatch.setattr(trunks, "lookup_addresses", provider_dns)
    provider_port = free_port()
    trunk_id, project_id = await world.inbound_project(
        provider_port, host=f"sip:localhost:{provider_port}")

    # The second server, another port, calling the trunk's account (our registered Contact):
    # the trunk's call, answered and queued for its project (which has nobody to take it).
    code, out = await run_uac(spawn, world, "inbound_unattended.xml", port=free_port(),
                              service="117049", source="127.0.0.2", rtpport="9")
    assert code == 0, out[-2000:]
    inbound = await world.log.wait("call.inbound", timeout=10)
    assert inbound.data["project_id"] == project_id and inbound.data["trunk_id"] == trunk_id
    ended = await world.log.wait("call.ended", call_id=inbound.data["call_id"])
    assert ended.data["direction"] == "inbound" and ended.data["outcome"] == "abandoned"
    assert lookups == ["localhost"]
    # The second server calling an external number, and a third address calling the account:
    # neither is the provider's call to us; both get 403 and leave no call behind.
    for source, service in (("127.0.0.2", "79990000000"), ("127.0.0.3", "117049")):
        code, out = await run_uac(spawn, world, "outsider.xml", port=free_port(),
                                  service=service, source=source, fromuser="hacker",
                                  timeout=15)
        assert code == 0, f"{source} {service}: {out[-2000:]}"
    assert len(world.log.all("call.inbound")) == 1
    assert lookups == ["localhost"]  # looked up once, then cached


async def test_provider_networks_listed_on_the_trunk_deliver_any_number(
        world: World, spawn: Any) -> None:
    # The provider's media servers (127.0.0.2) are neither the registrar nor its name's
    # addresses; listed on the trunk, they deliver calls to a DID, not to our account.
    trunk_id, project_id = await world.inbound_project(free_port(),
                                                       inbound_sources="127.0.0.2/32")
    code, out = await run_uac(spawn, world, "inbound_unattended.xml", port=free_port(),
                              service="74951234567", source="127.0.0.2", rtpport="9")
    assert code == 0, out[-2000:]
    inbound = await world.log.wait("call.inbound", timeout=10)
    assert inbound.data["trunk_id"] == trunk_id and inbound.data["project_id"] == project_id
    await world.log.wait("call.ended", call_id=inbound.data["call_id"])
    for _ in range(100):  # the CDR row is completed right after the event
        if inbound.data["call_id"] in world.runtime.calls.finished:
            break
        await asyncio.sleep(0.05)
    row = await world.db.calls.get(world.runtime.calls.finished[inbound.data["call_id"]])
    assert row.direction == "inbound" and row.to_number == "74951234567"
    # The same call from an address the trunk does not list is a stranger's.
    code, out = await run_uac(spawn, world, "outsider.xml", port=free_port(),
                              service="74951234567", source="127.0.0.3", fromuser="hacker",
                              timeout=15)
    assert code == 0, out[-2000:]
    assert len(world.log.all("call.inbound")) == 1
    # Another trunk's provider inside the listed network, calling its own account: that
    # trunk's call, not the listing one's.
    other_port = free_port()
    other = await world.db.trunks.create(name="other", host=f"sip:127.0.0.2:{other_port}",
                                         username="222", password="x")
    other_project = await world.add_project(other, queue_timeout_s=20)
    await world.db.trunks.update(other, inbound_project_id=other_project)
    await world.runtime.reload_trunks()
    code, out = await run_uac(spawn, world, "inbound_unattended.xml", port=free_port(),
                              service="222", source="127.0.0.2", rtpport="9")
    assert code == 0, out[-2000:]
    second = world.log.all("call.inbound")[-1]
    assert second.data["trunk_id"] == other and second.data["project_id"] == other_project


async def test_operator_manual_call_goes_out_through_his_trunk(
        world: World, spawn: Any, rtp_party: Any, tmp_path: Path) -> None:
    from callworld import start_provider

    customer = rtp_party(1000.0)
    provider, port = await start_provider(spawn, "provider.xml", rtp_port=customer.port)
    trunk_id = await world.add_trunk(port, host=f"sip:117049@127.0.0.1:{port}")
    await world.log.wait("trunk.state", trunk_id=trunk_id, state="registered")
    # He works in a project whose base has the number: the call is that contact's.
    project_id = await world.add_project(trunk_id, caller_id="74957770000")
    operator_id = await world.add_operator(trunk_id, project_id)
    await world.db.contacts.insert_many(project_id=project_id, upload_id=None,
                                        contacts=[NewContact(phone="+79030001122")])
    contact_id = (await world.db.contacts.list(project_id=project_id))[0].id
    directory = baresip_phone(tmp_path / "phone", registrar_port=world.sip_port)
    # The phone dials an external number: challenged with 407, it re-sends with credentials.
    await spawn(["stdbuf", "-oL", "baresip", "-f", str(directory), "-t", "60",
                 "-e", f"/dial sip:79030001122@127.0.0.1:{world.sip_port}"])
    bridged = await world.log.wait("call.bridged", timeout=20)
    call_id = bridged.data["call_id"]
    assert bridged.data["kind"] == "manual" and bridged.data["operator_id"] == operator_id
    await asyncio.sleep(2.0)
    assert abs(dominant_frequency(customer.audio()[-8000:]) - 440) < 20
    world.runtime.calls.hang_up(call_id)
    await world.log.wait("call.ended", call_id=call_id)
    for _ in range(100):
        if call_id in world.runtime.calls.finished:
            break
        await asyncio.sleep(0.05)
    row = await world.db.calls.get(world.runtime.calls.finished[call_id])
    assert row.kind == "manual" and row.trunk_id == trunk_id and row.result == "answered"
    assert row.operator_id == operator_id and row.to_number == "79030001122"
    assert row.from_number == "74957770000" and row.wait_ms == 0  # the project's caller id
    assert (row.project_id, row.contact_id) == (project_id, contact_id)
    assert bridged.data.get("contact_id") == contact_id


async def test_a_provider_name_that_does_not_resolve_is_not_looked_up_per_invite(
        world: World, spawn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    lookups: list[str] = []

    async def no_dns(destination: Any) -> Any:
        lookups.append(destination.host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def registration_dns(destination: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(trunks, "resolve", no_dns)
    # The registration resolves on its own path; it must not ask a real resolver either.
    monkeypatch.setattr(trunk_aio, "resolve", registration_dns)
    trunk_id = await world.add_trunk(free_port(), host="sip:provider.invalid:5060")
    directory = world.runtime.trunks
    with pytest.raises(socket.gaierror):
        await directory.address(trunk_id)
    # Strangers keep knocking: each INVITE is answered 403 without asking DNS again.
    for _ in range(3):
        code, out = await run_uac(spawn, world, "outsider.xml", port=free_port(),
                                  service="79990000000", fromuser="hacker", timeout=15)
        assert code == 0, out[-2000:]
    assert lookups == ["provider.invalid"]


async def test_a_ring_that_fails_to_start_still_releases_the_caller(
        world: World, spawn: Any, tmp_path: Path, monkeypatch: Any) -> None:
    provider_port = free_port()
    trunk_id, project_id = await world.inbound_project(provider_port)
    await world.add_operator(trunk_id, project_id)
    await world.start_phone(spawn, tmp_path / "phone")  # online: ring-all rings him

    async def broken_ring(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("storage went away")

    monkeypatch.setattr(world.runtime.calls, "ring", broken_ring)
    code, out = await run_uac(spawn, world, "inbound_unattended.xml", port=provider_port,
                              service="117049", rtpport="9")
    assert code == 0, out[-2000:]  # our BYE came: not left waiting for a ring that never was
    inbound = world.log.all("call.inbound")[0]
    ended = await world.log.wait("call.ended", call_id=inbound.data["call_id"])
    assert ended.data["outcome"] == "abandoned"

"""A supervisor listens in: his phone (baresip, extension 102) is rung with auto-answer and
hears the customer (1000 Hz, a socket behind sipp) and the operator (baresip, 440 Hz) mixed;
neither hears his own 660 Hz.  His hanging up, or the call ending, lets him go."""

from __future__ import annotations

import asyncio
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import childproc
import numpy as np
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from callworld import World, dominant_frequency, free_port, start_provider
from test_bridge_e2e import command
from test_operator_ringing import Dialer, start_phone

from sipspeak.accounts import create_token
from sipspeak.app import Services
from sipspeak.calls.operators import ListenRefused
from sipspeak.config import load_config
from sipspeak.dialer.runtime import CampaignRuntime
from sipspeak.web.app import create_app

SUPERVISOR_EXTENSION = "102"
SUPERVISOR_PASSWORD = "sup-s3cret"


def level(pcm: np.ndarray, freq: float, rate: int) -> float:
    """The spectrum's magnitude at ``freq`` (±10 Hz), relative to the loudest bin."""
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm))))
    bins = np.fft.rfftfreq(len(pcm), 1.0 / rate)
    near = spectrum[(bins > freq - 10) & (bins < freq + 10)]
    return float(near.max() / spectrum[5:].max()) if len(near) else 0.0


def heard(directory: Path) -> tuple[np.ndarray, int]:
    """What the phone heard (baresip's sndfile dump of the decoded audio)."""
    [dump] = sorted(directory.glob("dump-*-dec.wav"))
    with wave.open(str(dump), "rb") as wav:
        rate, channels = wav.getframerate(), wav.getnchannels()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return (pcm.reshape(-1, channels)[:, 0] if channels > 1 else pcm), rate


@dataclass
class Scene:
    customer: Any
    trunk_id: int
    project_id: int
    operator_id: int
    supervisor_id: int
    desk: Path
    dialer: Dialer


async def scene(world: World, spawn: Any, rtp_party: Any, tmp_path: Path, *,
                console: int | None = None, record: bool = False,
                **project: Any) -> Scene:
    """A customer (1000 Hz) behind sipp, the project's operator on baresip (440 Hz,
    auto-answer) and a supervisor (extension 102) on baresip (660 Hz, auto-answer)."""
    customer = rtp_party(1000.0)
    _, port = await start_provider(spawn, "provider.xml", rtp_port=customer.port)
    trunk_id = await world.add_trunk(port)
    await world.log.wait("trunk.state", trunk_id=trunk_id, state="registered")
    supervisor_id = await world.db.users.create(
        role="supervisor", full_name="Супервайзер", email="sup@x.test", password_hash="x",
        extension=SUPERVISOR_EXTENSION, sip_password=SUPERVISOR_PASSWORD)
    project_id = await world.add_project(trunk_id, supervisor_id=supervisor_id, **project)
    operator_id = await world.add_operator(trunk_id, project_id)
    await start_phone(world, spawn, tmp_path / "operator", freq=440, auto_answer=True,
                      registered=1)
    desk = tmp_path / "supervisor"
    childproc.baresip_phone(desk, extension=SUPERVISOR_EXTENSION,
                            password=SUPERVISOR_PASSWORD, registrar_port=world.sip_port,
                            freq=660, auto_answer=True, record=record, console_port=console)
    await spawn(["stdbuf", "-oL", "baresip", "-f", str(desk), "-t", "60"])
    await world.log.wait("phone.online", timeout=20, extension=SUPERVISOR_EXTENSION)
    return Scene(customer, trunk_id, project_id, operator_id, supervisor_id, desk,
                 Dialer(world, operator_id))


async def test_a_supervisor_hears_both_sides_and_neither_hears_him(
        world: World, spawn: Any, rtp_party: Any, tmp_path: Path) -> None:
    s = await scene(world, spawn, rtp_party, tmp_path, record=True)
    calls = world.runtime.calls
    call_id = await s.dialer.dial(world, s.project_id, s.trunk_id)
    with pytest.raises(ListenRefused):  # nothing to listen to before the conversation
        await calls.listen(call_id, s.supervisor_id)
    await world.log.wait("call.bridged", call_id=call_id, timeout=20)
    await calls.listen(call_id, s.supervisor_id)
    await world.log.wait("call.listening", call_id=call_id, timeout=20)
    with pytest.raises(ListenRefused):  # one listener at a time
        await calls.listen(call_id, s.supervisor_id)
    await asyncio.sleep(3.0)
    # The customer still hears only the operator: not the supervisor's 660 Hz.
    assert abs(dominant_frequency(s.customer.audio()[-8000:]) - 440) < 20
    calls.hang_up(call_id)
    await world.log.wait("call.listening_ended", call_id=call_id, timeout=10)
    await world.log.wait("call.ended", call_id=call_id)
    await asyncio.sleep(0.5)
    pcm, rate = heard(s.desk)
    last = pcm[-int(rate * 2.0):]
    assert len(last) == int(rate * 2.0)
    # Both sides, mixed; not his own tone.
    assert level(last, 1000.0, rate) > 0.3 and level(last, 440.0, rate) > 0.3
    assert level(last, 660.0, rate) < 0.1
    assert not calls.rings  # his leg went with the call


async def test_the_supervisor_hanging_up_leaves_the_call_as_it_was(
        world: World, spawn: Any, rtp_party: Any, tmp_path: Path) -> None:
    console = free_port()
    s = await scene(world, spawn, rtp_party, tmp_path, console=console)
    calls = world.runtime.calls
    call_id = await s.dialer.dial(world, s.project_id, s.trunk_id)
    await world.log.wait("call.bridged", call_id=call_id, timeout=20)
    await calls.listen(call_id, s.supervisor_id)
    await world.log.wait("call.listening", call_id=call_id, timeout=20)
    await command(console, "/hangup")
    await world.log.wait("call.listening_ended", call_id=call_id, timeout=10)
    # The conversation goes on, and another may listen now.
    live = calls.get(call_id)
    assert live is not None and live.state.live and live.listening is None
    assert [r for r in calls.rings if "-listen-" in r] == []  # his ring is gone, not the call's
    await asyncio.sleep(1.0)
    assert abs(dominant_frequency(s.customer.audio()[-8000:]) - 440) < 20
    calls.hang_up(call_id)
    ended = await world.log.wait("call.ended", call_id=call_id)
    assert ended.data["outcome"] == "answered"


async def test_listen_through_the_monitoring_api(
        world: World, spawn: Any, rtp_party: Any, tmp_path: Path) -> None:
    # His launched project (no contacts: the campaign dials nobody); the call itself comes
    # from the stand-in dialer of the scene.
    s = await scene(world, spawn, rtp_party, tmp_path, launched=True)
    campaigns = CampaignRuntime(db=world.db, bus=world.bus, calls=world.runtime.calls,
                                ringer=world.runtime.calls)
    await campaigns.start()
    config = load_config(environ={}).with_overrides(
        {("storage", "data_dir"): str(tmp_path / "data")})
    services = Services(config=config, db=world.db, bus=world.bus, call_runtime=world.runtime,
                        campaigns=campaigns)
    server = TestServer(create_app(services), host="127.0.0.1")
    await server.start_server()
    token = await create_token(world.db, "sup@x.test")
    call_id = ""
    try:
        async with ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            url = server.make_url("/api/v1/monitoring/listen")
            async with http.post(url, json={"operator_id": s.operator_id}) as response:
                assert response.status == 409  # not talking yet
            call_id = await s.dialer.dial(world, s.project_id, s.trunk_id)
            await world.log.wait("call.bridged", call_id=call_id, timeout=20)
            async with http.post(url, json={"operator_id": s.operator_id}) as response:
                assert response.status == 202, await response.text()
                assert (await response.json())["call_id"] == call_id
            await world.log.wait("call.listening", call_id=call_id,
                                 listener_id=s.supervisor_id, timeout=20)
            async with http.post(url, json={"operator_id": s.operator_id}) as response:
                assert response.status == 409  # one listener at a time
    finally:
        await server.close()
        if call_id:
            world.runtime.calls.hang_up(call_id)
            await world.log.wait("call.ended", call_id=call_id)
        await campaigns.aclose()

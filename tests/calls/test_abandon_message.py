"""«Сообщение, если оператор не ответил»: a caller nobody took hears the project's recording
(a WAV of the file manager) before the release; without one he is released at once.  sipp is
the provider calling in, a socket the caller's RTP."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from callworld import World, dominant_frequency, free_port
from sound import write_tone
from test_inbound_sipp import run_uac

MESSAGE_HZ = 880.0


def write_message(path: Path) -> int:
    """The project's recorded message: 1.5 s of 880 Hz at 16 kHz; its size."""
    return write_tone(path, MESSAGE_HZ, seconds=1.5, rate=16000, amplitude=0.4).stat().st_size


async def finished_row(world: World, call_id: str) -> Any:
    for _ in range(100):
        if call_id in world.runtime.calls.finished:
            return await world.db.calls.get(world.runtime.calls.finished[call_id])
        await asyncio.sleep(0.05)
    raise AssertionError("no CDR row")


async def test_a_caller_nobody_takes_hears_the_message_then_is_released(
        world: World, spawn: Any, rtp_party: Any, tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    world.runtime.calls.files_dir = files
    size = write_message(files / "a1b2c3.wav")
    file_id = await world.db.files.add_file(name="Все операторы заняты.wav",
                                            stored_name="a1b2c3.wav", size=size)
    provider_port = free_port()
    _, project_id = await world.inbound_project(provider_port)
    await world.db.projects.update(project_id, abandon_message_file_id=file_id)
    caller = rtp_party(1000.0)
    # No operator is online: ring-all gives up at once, with the message first.
    code, out = await run_uac(spawn, world, "inbound_unattended.xml", port=provider_port,
                              service="117049", rtpport=str(caller.port))
    assert code == 0, out[-2000:]  # our BYE came, after the message
    inbound = world.log.all("call.inbound")[0]
    ended = await world.log.wait("call.ended", call_id=inbound.data["call_id"])
    assert ended.data["outcome"] == "abandoned"
    heard = caller.audio()
    assert len(heard) >= 8000  # about a second and a half of it reached the caller
    assert abs(dominant_frequency(heard[2000:10000]) - MESSAGE_HZ) < 20
    row = await finished_row(world, inbound.data["call_id"])
    assert row.result == "abandoned" and row.duration_ms >= 1400

    # Without a message the same call is released at once: nothing is played.
    await world.db.projects.update(project_id, abandon_message_file_id=None)
    quiet = rtp_party(1000.0)
    code, out = await run_uac(spawn, world, "inbound_unattended.xml", port=provider_port,
                              service="117049", rtpport=str(quiet.port))
    assert code == 0, out[-2000:]
    second = world.log.all("call.inbound")[1]
    row = await finished_row(world, second.data["call_id"])
    assert row.result == "abandoned" and row.duration_ms < 1000
    assert len(quiet.audio()) < 4000


async def test_an_unreadable_message_only_releases_the_caller(
        world: World, spawn: Any, rtp_party: Any, tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    world.runtime.calls.files_dir = files
    (files / "broken.wav").write_bytes(b"RIFF not really")
    # A WAV cut short after it was chosen: its header promises more PCM than there is.
    write_message(files / "cut.wav")
    (files / "cut.wav").write_bytes((files / "cut.wav").read_bytes()[:-1001])
    provider_port = free_port()
    _, project_id = await world.inbound_project(provider_port)
    for number, stored in enumerate(("broken.wav", "cut.wav")):
        file_id = await world.db.files.add_file(name=stored, stored_name=stored, size=15)
        await world.db.projects.update(project_id, abandon_message_file_id=file_id)
        code, out = await run_uac(spawn, world, "inbound_unattended.xml", port=provider_port,
                                  service="117049", rtpport=str(rtp_party(1000.0).port))
        assert code == 0, out[-2000:]  # released with our BYE, not left on hold music
        inbound = world.log.all("call.inbound")[number]
        ended = await world.log.wait("call.ended", call_id=inbound.data["call_id"])
        assert ended.data["outcome"] == "abandoned"

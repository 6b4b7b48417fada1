"""The customer puts the call on hold: the operator hears music until the customer resumes.

sipp is the provider delivering an inbound call: it talks, re-INVITEs with ``a=sendonly``
(hold), stays silent for five seconds, re-INVITEs with ``a=sendrecv`` (resume), talks and
hangs up.  baresip is the operator's phone (auto-answer, 440 Hz; its sndfile module records what it
hears);
a socket is the customer's RTP (1 kHz while not on hold).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
from callworld import World, dominant_frequency, free_port
from test_inbound_sipp import run_uac


class HeardByPhone:
    """What baresip's sndfile module wrote of the decoded audio so far (the WAV header is
    fixed up at the end of the call; the samples follow its 44 bytes)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def path(self) -> Path:
        found = sorted(self.directory.glob("dump-*-dec.wav"))
        return found[-1] if found else self.directory / "dump-none-dec.wav"

    def size(self) -> int:
        path = self.path
        return path.stat().st_size if path.exists() else 0

    def between(self, start: int, end: int) -> np.ndarray:
        data = self.path.read_bytes()[max(start, 44):end]
        return np.frombuffer(data[:len(data) // 2 * 2], dtype="<i2")

    async def grown(self, start: int, samples: int, timeout: float = 10.0) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.size() < start + 2 * samples:
            if loop.time() > deadline:
                raise AssertionError(f"the phone wrote nothing more to {self.path}")
            await asyncio.sleep(0.05)
        return self.size()


async def test_operator_hears_music_while_the_customer_holds(
        world: World, spawn: Any, rtp_party: Any, tmp_path: Path) -> None:
    caller = rtp_party(1000.0)
    provider_port = free_port()
    trunk_id, project_id = await world.inbound_project(provider_port)
    operator_id = await world.add_operator(trunk_id, project_id)
    directory = await world.start_phone(spawn, tmp_path / "phone", record=True)
    heard = HeardByPhone(directory)

    provider = asyncio.create_task(run_uac(spawn, world, "inbound_hold.xml", port=provider_port,
                                           service="117049", rtpport=str(caller.port),
                                           pause_ms=3000))
    inbound = await world.log.wait("call.inbound", timeout=20)
    call_id = inbound.data["call_id"]
    bridged = await world.log.wait("call.bridged", call_id=call_id, timeout=20)
    assert bridged.data["operator_id"] == operator_id
    await heard.grown(0, 8000)  # a second of the conversation reached the phone

    hold = await world.log.wait("call.hold", call_id=call_id, on_hold=True, timeout=20)
    assert hold.data["side"] == "customer"
    caller.sending = False  # on hold the customer sends nothing (longer than the 2 s timeout)
    live = world.runtime.calls.get(call_id)
    assert live is not None and live.operator is not None
    sent_before = live.operator.endpoint.packets_sent
    start = heard.size() + 8000  # skip what was buffered before the switch
    end = await heard.grown(start, 16000)
    # The operator keeps receiving RTP during the hold, and it is the music, not silence
    # and not the customer's 1 kHz.
    assert live.operator.endpoint.packets_sent - sent_before >= 50
    during = heard.between(start, end)
    assert np.sqrt(np.mean(during.astype(np.float64) ** 2)) > 300
    assert abs(dominant_frequency(during) - 1000) > 30

    await world.log.wait("call.hold", call_id=call_id, on_hold=False, timeout=20)
    caller.sending = True
    start = heard.size() + 8000
    end = await heard.grown(start, 8000)
    assert abs(dominant_frequency(heard.between(start, end)) - 1000) < 20  # the customer again

    code, out = await provider  # the customer hung up after talking again
    assert code == 0, out[-2000:]
    ended = await world.log.wait("call.ended", call_id=call_id)
    assert ended.data["outcome"] == "answered"  # the silent hold did not count as a drop

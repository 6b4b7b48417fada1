"""Helpers of the call control tests (imported by conftest.py and the tests)."""


from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import subprocess
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import childproc
import numpy as np
import pytest
from buslog import BusLog
from childproc import Peer, free_port, free_port_range, spawn  # noqa: F401  (re-exported)

from sipspeak.calls.runtime import CallRuntime
from sipspeak.config import load_config
from sipspeak.events import EventBus
from sipspeak.media.g711 import decode, encode
from sipspeak.sip.registrar import Registrar
from sipspeak.storage import Database

SCENARIOS = Path(__file__).parent / "scenarios"
TRUNK_USER = "117049"
TRUNK_PASSWORD = "s3cret"
OPERATOR_EXTENSION = "101"
OPERATOR_PASSWORD = "op-s3cret"


class World:
    """Storage, bus and the call runtime of one test."""

    def __init__(self, db: Database, bus: EventBus, runtime: CallRuntime, tmp: Path,
                 start: Callable[[], Awaitable[CallRuntime]]) -> None:
        self.db = db
        self.bus = bus
        self.runtime = runtime
        self.tmp = tmp
        self.log = BusLog(bus)
        self._start = start

    async def restart(self) -> None:
        """Stop the call runtime and start a new one on the same storage and bus (the
        service restarting); its SIP port is a new one."""
        await self.runtime.aclose()
        self.runtime = await self._start()

    @property
    def sip_port(self) -> int:
        return self.runtime.addresses[0].port

    async def add_trunk(self, port: int, *, host: str | None = None) -> int:
        trunk_id = await self.db.trunks.create(
            name=f"provider-{port}", host=host or f"sip:127.0.0.1:{port}",
            username=TRUNK_USER, password=TRUNK_PASSWORD, price_per_minute_kopecks=150,
            billing_increment_s=1)
        await self.runtime.reload_trunks()
        return trunk_id

    async def inbound_project(self, provider_port: int, *, host: str | None = None,
                              **sources: str) -> tuple[int, int]:
        """A trunk whose provider is on ``provider_port`` and a project taking its inbound
        calls (queue timeout 20 s); ``inbound_sources`` may list the provider's networks.
        Returns (trunk id, project id)."""
        trunk_id = await self.add_trunk(provider_port, host=host)
        project_id = await self.add_project(trunk_id, queue_timeout_s=20)
        await self.db.trunks.update(trunk_id, inbound_project_id=project_id, **sources)
        await self.runtime.reload_trunks()
        return trunk_id, project_id

    async def start_phone(self, spawn: Any, directory: Path, **options: Any) -> Path:
        """The operator's baresip phone (:func:`baresip_phone` ``options``), registered."""
        baresip_phone(directory, registrar_port=self.sip_port, **options)
        await spawn(["stdbuf", "-oL", "baresip", "-f", str(directory), "-t", "60"])
        await self.log.wait("phone.online", timeout=20, extension=OPERATOR_EXTENSION)
        return directory

    async def add_project(self, trunk_id: int, **settings: Any) -> int:
        values: dict[str, Any] = {"trunk_id": trunk_id, "caller_id": "74950001122",
                                  "music_on_hold": True, "operator_auto_answer": True,
                                  "dial_timeout_s": 30}
        values.update(settings)
        return await self.db.projects.create("Тест", **values)

    async def add_operator(self, trunk_id: int | None, project_id: int | None = None) -> int:
        user_id = await self.db.users.create(
            role="operator", full_name="Оператор", email=f"op{random.randrange(10**6)}@x.test",
            password_hash="x", extension=OPERATOR_EXTENSION, sip_password=OPERATOR_PASSWORD,
            trunk_id=trunk_id)
        if project_id is not None:
            group = await self.db.groups.create(f"g{user_id}")
            await self.db.groups.add_members(group, [user_id])
            await self.db.projects.set_groups(project_id, [group])
        return user_id


@pytest.fixture
async def world(request: pytest.FixtureRequest, tmp_path: Path,
                spawn: Any) -> AsyncIterator[World]:
    # Depends on ``spawn`` so that peers outlive the runtime: the trunks unregister from a
    # live provider instead of waiting for a dead one.
    # ``@pytest.mark.registrar(min_expires=1)`` gives the test a registrar of its own.
    marker = request.node.get_closest_marker("registrar")
    db = await Database.open(tmp_path / "calls.db")
    bus = EventBus()
    first = free_port_range(400)
    config = load_config(environ={}).with_overrides({
        ("sip", "listen"): ["udp:127.0.0.1:0"],
        ("rtp", "port_min"): first, ("rtp", "port_max"): first + 400,
        ("rtp", "inactivity_timeout"): 2,
    })

    async def start() -> CallRuntime:
        return await CallRuntime.start(
            config, db, bus, recordings_dir=tmp_path / "recordings",
            trunk_reconcile_interval=0.5, trunk_stop_timeout=1.0,
            registrar=Registrar(**marker.kwargs) if marker is not None else None)

    w = World(db, bus, await start(), tmp_path, start)
    try:
        yield w
    finally:
        await w.runtime.aclose()
        await db.close()


async def start_provider(spawn: Any, scenario: str, *, rtp_port: int = 0,
                         pause_ms: int | None = None, **keys: str) -> tuple[Any, int]:
    """sipp as the trunk's provider (a UAS); ``scenario`` is a name in scenarios/ or a path;
    ``keys`` become its ``-key`` values."""
    port = free_port()
    argv = ["sipp", "-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1", "-p", str(port),
            "-mp", str(free_port()), "-key", "rtpport", str(rtp_port or 9),
            "-nostdin", "-trace_err", "-timeout", "60s"]
    if pause_ms is not None:
        argv += ["-d", str(pause_ms)]
    for key, value in keys.items():
        argv += ["-key", key, value]
    peer = await spawn(argv)
    await asyncio.sleep(0.3)  # sipp binds its socket
    return peer, port


def refusing_provider(directory: Path, code: int) -> Path:
    """refuses.xml answering ``code`` to the INVITE (sipp takes no key in a status line)."""
    text = (SCENARIOS / "refuses.xml").read_text(encoding="iso-8859-1")
    path = directory / f"refuses-{code}.xml"
    path.write_text(text.replace("SIP/2.0 599 Refused", f"SIP/2.0 {code} Refused"),
                    encoding="iso-8859-1")
    return path


# -- RTP parties ---------------------------------------------------------------------------------


def tone(freq: float, samples: int, start: int = 0) -> np.ndarray:
    t = (np.arange(samples) + start) / 8000.0
    return (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def dominant_frequency(pcm: np.ndarray) -> float:
    if len(pcm) < 800:
        return 0.0
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm))))
    return float(np.argmax(spectrum[5:]) + 5) * 8000.0 / len(pcm)


class RtpParty:
    """One party's RTP as a UDP socket: sends a tone to whoever sent it RTP, keeps what came."""

    def __init__(self, freq: float, audio: np.ndarray | None = None) -> None:
        self.audio_out = audio
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.freq = freq
        self.received: list[tuple[int, bytes]] = []
        self.remote: tuple[str, int] | None = None
        self.sending = True
        self.dtmf: list[bytes] = []  # RFC 4733 packets to send instead of audio frames
        self._task: asyncio.Task[None] | None = None

    def press(self, digit: str) -> None:
        """Queue one key press as RFC 4733 telephone-events (payload type 101)."""
        from sipspeak.media.dtmf import telephone_event_packets

        for _, packet in telephone_event_packets(digit, payload_type=101, ssrc=0x1234,
                                                 first_sequence=50000, timestamp=900000):
            self.dtmf.append(packet.serialize())

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        seq, ts, n = 1, 0, 0
        next_at = loop.time()
        while True:
            try:
                while True:
                    data, addr = self.sock.recvfrom(2048)
                    if len(data) > 12 and data[0] >> 6 == 2:
                        self.remote = addr
                        self.received.append((data[1] & 0x7F, data[12:]))
            except BlockingIOError:
                pass
            if self.remote is not None and self.sending and self.dtmf:
                with contextlib.suppress(OSError):
                    self.sock.sendto(self.dtmf.pop(0), self.remote)
            elif self.remote is not None and self.sending:
                # Answer in the codec we are sent (what the SDP exchange agreed).
                pt = next((p for p, _ in reversed(self.received) if p in (0, 8)), 0)
                if self.audio_out is not None:
                    start = (n * 160) % max(1, len(self.audio_out) - 160)
                    frame = self.audio_out[start:start + 160]
                else:
                    frame = tone(self.freq, 160, n * 160)
                payload = encode("PCMA" if pt == 8 else "PCMU", frame)
                header = struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, ts & 0xFFFFFFFF, 0x1234)
                with contextlib.suppress(OSError):
                    self.sock.sendto(header + payload, self.remote)
                seq, ts, n = seq + 1, ts + 160, n + 1
            next_at += 0.02
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    def audio(self) -> np.ndarray:
        parts = [decode("PCMA" if pt == 8 else "PCMU", p) for pt, p in self.received
                 if pt in (0, 8)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.sock.close()


@pytest.fixture
async def rtp_party() -> AsyncIterator[Callable[..., RtpParty]]:
    parties: list[RtpParty] = []

    def make(freq: float, audio: np.ndarray | None = None) -> RtpParty:
        party = RtpParty(freq, audio)
        party.start()
        parties.append(party)
        return party

    yield make
    for party in parties:
        await party.close()


def read_stereo(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with wave.open(str(path), "rb") as wav:
        assert wav.getnchannels() == 2 and wav.getframerate() == 8000
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    return frames[:, 0], frames[:, 1]


def baresip_phone(directory: Path, *, registrar_port: int, freq: int = 440,
                  auto_answer: bool = True, console_port: int | None = None,
                  record: bool = False) -> Path:
    """The operator's baresip phone (extension 101): see :func:`childproc.baresip_phone`."""
    return childproc.baresip_phone(
        directory, extension=OPERATOR_EXTENSION, password=OPERATOR_PASSWORD,
        registrar_port=registrar_port, freq=freq, auto_answer=auto_answer,
        console_port=console_port, record=record)


def spoken_greeting(directory: Path) -> np.ndarray:
    """A voice-mail greeting (espeak-ng, 8 kHz): what a machine says when it answers."""
    raw, pcm = directory / "greeting22.wav", directory / "greeting8.wav"
    subprocess.run(["espeak-ng", "-v", "ru", "-s", "150", "-w", str(raw),
                    "Здравствуйте, вы позвонили в компанию Ромашка. Все операторы сейчас "
                    "заняты. Оставьте, пожалуйста, сообщение после звукового сигнала."],
                   check=True, timeout=30)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(pcm)],
                   check=True, timeout=30)
    with wave.open(str(pcm), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").copy()

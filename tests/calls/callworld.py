"""Helpers of the call control tests (imported by conftest.py and the tests)."""


from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import socket
import struct
import subprocess
import wave
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sipspeak.calls.runtime import CallRuntime
from sipspeak.config import load_config
from sipspeak.events import Event, EventBus
from sipspeak.media.g711 import decode, encode
from sipspeak.sip.registrar import Registrar
from sipspeak.storage import Database

SCENARIOS = Path(__file__).parent / "scenarios"
TRUNK_USER = "117049"
TRUNK_PASSWORD = "s3cret"
OPERATOR_EXTENSION = "101"
OPERATOR_PASSWORD = "op-s3cret"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_range(size: int, probe: int = 128) -> int:
    """The first port of ``size`` RTP ports whose first ``probe`` are free now.

    Other processes on the machine (a load benchmark, say) may hold thousands of UDP ports
    in a row; the port pool gives up after 64 taken pairs, so probe before choosing.
    """
    for _ in range(200):
        first = random.randrange(20000, 60000 - size, 2)
        try:
            for port in range(first, first + probe):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise AssertionError("no free range of RTP ports")


class Peer:
    """A child process that is always killed."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.output = b""

    async def read_until(self, text: str, timeout: float) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        assert self.proc.stdout is not None
        while text.encode() not in self.output:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"{text!r} not seen:\n{self.output[-3000:].decode(errors='replace')}")
            try:
                chunk = await asyncio.wait_for(self.proc.stdout.read(4096), remaining)
            except TimeoutError:
                continue
            if not chunk:
                raise AssertionError(f"peer exited before {text!r}:\n"
                                     f"{self.output[-3000:].decode(errors='replace')}")
            self.output += chunk
        return self.output.decode(errors="replace")

    def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()


@pytest.fixture
async def spawn(tmp_path: Path) -> AsyncIterator[Callable[[Sequence[str]], Any]]:
    peers: list[Peer] = []

    async def start(argv: Sequence[str]) -> Peer:
        if shutil.which(argv[0]) is None:
            pytest.fail(f"{argv[0]} is not installed")
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=tmp_path, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        peer = Peer(proc)
        peers.append(peer)
        return peer

    yield start
    for peer in peers:
        peer.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(peer.proc.wait(), 5)


class BusLog:
    """Every event published on the bus, with waits for one of them."""

    def __init__(self, bus: EventBus) -> None:
        self.sub = bus.subscribe()
        self.events: list[Event] = []

    async def wait(self, topic: str, timeout: float = 15.0, **match: Any) -> Event:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event.topic == topic and all(event.data.get(k) == v for k, v in match.items()):
                    return event
            seen = len(self.events)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no {topic} {match}; got {[e.topic for e in self.events]}")
            try:
                self.events.append(await asyncio.wait_for(self.sub.get(), remaining))
            except TimeoutError:
                pass

    def topics(self) -> list[str]:
        while not self.sub.queue.empty():
            self.events.append(self.sub.queue.get_nowait())
        return [e.topic for e in self.events]


class World:
    """Storage, bus and the call runtime of one test."""

    def __init__(self, db: Database, bus: EventBus, runtime: CallRuntime, tmp: Path) -> None:
        self.db = db
        self.bus = bus
        self.runtime = runtime
        self.tmp = tmp
        self.log = BusLog(bus)

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
    registrar = Registrar(**marker.kwargs) if marker is not None else None
    db = await Database.open(tmp_path / "calls.db")
    bus = EventBus()
    first = free_port_range(400)
    config = load_config(environ={}).with_overrides({
        ("sip", "listen"): ["udp:127.0.0.1:0"],
        ("rtp", "port_min"): first, ("rtp", "port_max"): first + 400,
        ("rtp", "inactivity_timeout"): 2,
    })
    runtime = await CallRuntime.start(config, db, bus, recordings_dir=tmp_path / "recordings",
                                      trunk_reconcile_interval=0.5, trunk_stop_timeout=1.0,
                                      registrar=registrar)
    w = World(db, bus, runtime, tmp_path)
    try:
        yield w
    finally:
        await runtime.aclose()
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
    """A baresip operator phone: registers with digest auth, auto-answers, plays a tone.

    With ``record`` the sndfile module writes what the phone hears (and says) to WAV files
    in ``directory`` (``dump-*-dec.wav`` / ``dump-*-enc.wav``)."""
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / "tone.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(source),
                    "synth", "60", "sine", str(freq)], check=True, timeout=20)
    port = free_port()
    (directory / "config").write_text(
        f"sip_listen 127.0.0.1:{port}\n"
        "module_path /usr/lib/baresip/modules\n"
        "module g711.so\nmodule aufile.so\nmodule menu.so\nmodule_app account.so\n"
        f"audio_player aufile,{directory}/received.wav\n"
        f"audio_source aufile,{source}\n"
        f"audio_alert aufile,{directory}/alert.wav\n"
        + (f"module cons.so\ncons_listen 127.0.0.1:{console_port}\n" if console_port else "")
        + (f"module sndfile.so\nsnd_path {directory}\n" if record else ""))
    answer = ";answermode=auto" if auto_answer else ""
    (directory / "accounts").write_text(
        f"<sip:{OPERATOR_EXTENSION}@127.0.0.1:{registrar_port}>"
        f";auth_pass={OPERATOR_PASSWORD};regint=300{answer}\n")
    return directory


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

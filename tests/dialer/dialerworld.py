"""Helpers of the dialer's end-to-end tests: child processes that are always killed (sipp,
baresip), a log of the bus with waits, and baresip operator phones that register with digest
auth. Adapted from tests/calls/callworld.py."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from sipspeak.events import Event, EventBus


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Peer:
    """A child process whose output is collected; killed by the fixture at the end."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()

    async def output(self) -> str:
        self.kill()
        out, _ = await asyncio.wait_for(self.proc.communicate(), 5)
        return out.decode(errors="replace") if out else ""


Spawn = Callable[[Sequence[str]], Any]


@pytest.fixture
async def spawn(tmp_path: Path) -> AsyncIterator[Spawn]:
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
            await asyncio.wait_for(peer.proc.communicate(), 5)


class BusLog:
    """Every event published on the bus, with a wait for one of them."""

    def __init__(self, bus: EventBus) -> None:
        self.sub = bus.subscribe(maxsize=100_000)
        self.events: list[Event] = []

    def _pull(self) -> None:
        while not self.sub.queue.empty():
            self.events.append(self.sub.queue.get_nowait())

    async def wait(self, topic: str, timeout: float = 15.0, **match: Any) -> Event:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = 0
        while True:
            self._pull()
            for event in self.events[seen:]:
                if event.topic == topic and all(event.data.get(k) == v for k, v in match.items()):
                    return event
            seen = len(self.events)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no {topic} {match}; got {[e.topic for e in self.events]}")
            with contextlib.suppress(TimeoutError):
                self.events.append(await asyncio.wait_for(self.sub.get(), remaining))

    def all(self, topic: str) -> list[Event]:
        self._pull()
        return [e for e in self.events if e.topic == topic]


def baresip_phone(directory: Path, *, extension: str, password: str, registrar_port: int,
                  freq: int = 440) -> Path:
    """A baresip operator phone: registers with digest auth, auto-answers, plays a tone."""
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / "tone.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(source),
                    "synth", "120", "sine", str(freq)], check=True, timeout=20)
    port = free_port()
    (directory / "config").write_text(
        f"sip_listen 127.0.0.1:{port}\n"
        "module_path /usr/lib/baresip/modules\n"
        "module g711.so\nmodule aufile.so\nmodule menu.so\nmodule_app account.so\n"
        f"audio_player aufile,{directory}/received.wav\n"
        f"audio_source aufile,{source}\n"
        f"audio_alert aufile,{directory}/alert.wav\n")
    (directory / "accounts").write_text(
        f"<sip:{extension}@127.0.0.1:{registrar_port}>"
        f";auth_pass={password};regint=300;answermode=auto\n")
    return directory

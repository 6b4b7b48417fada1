"""Real peers for the interop tests: child processes (sipp, baresip) and free loopback ports.

One module for every test folder that starts peers (``from childproc import …``): the
``spawn`` fixture starts a child with its output collected and kills it at the end, whatever
the test did; the port helpers find ports free on 127.0.0.1 right now.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

__all__ = ["Peer", "Spawn", "baresip_phone", "free_port", "free_port_range", "spawn"]


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port free right now on 127.0.0.1 (for peers that cannot bind port 0 and report it)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_range(size: int, probe: int = 128) -> int:
    """The first (even) port of ``size`` RTP ports whose first ``probe`` are free now.

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
    """A child process (sipp, baresip) whose output is collected; always killed at the end."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.output = b""

    async def read_until(self, text: str, timeout: float) -> str:
        """Read the output until ``text`` shows; everything read so far."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        assert self.proc.stdout is not None
        while text.encode() not in self.output:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"{text!r} not seen:\n{self.output[-3000:].decode(errors='replace')}"
                )
            try:
                chunk = await asyncio.wait_for(self.proc.stdout.read(4096), remaining)
            except TimeoutError:
                continue
            if not chunk:
                raise AssertionError(
                    f"peer exited before {text!r}:\n"
                    f"{self.output[-3000:].decode(errors='replace')}"
                )
            self.output += chunk
        return self.output.decode(errors="replace")

    async def wait(self, timeout: float) -> tuple[int, str]:
        """Wait for the exit: (exit code, whole output); killed and -1 after ``timeout``."""
        try:
            out, _ = await asyncio.wait_for(self.proc.communicate(), timeout)
        except TimeoutError:
            self.kill()
            out, _ = await self.proc.communicate()
            return -1, (self.output + out).decode(errors="replace")
        return self.proc.returncode or 0, (self.output + out).decode(errors="replace")

    async def stop(self) -> str:
        """Kill it and return its whole output (for a failure message)."""
        self.kill()
        out, _ = await asyncio.wait_for(self.proc.communicate(), 5)
        return (self.output + (out or b"")).decode(errors="replace")

    def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()


Spawn = Callable[[Sequence[str]], Any]


@pytest.fixture
async def spawn(tmp_path: Path) -> AsyncIterator[Spawn]:
    """``await spawn(argv)`` starts a :class:`Peer` in the test's directory."""
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


def baresip_phone(directory: Path, *, extension: str, password: str, registrar_port: int,
                  freq: int = 440, seconds: int = 60, auto_answer: bool = True,
                  console_port: int | None = None, record: bool = False) -> Path:
    """A headless baresip operator phone's configuration in ``directory``: it registers with
    digest auth to 127.0.0.1:``registrar_port``, plays a ``freq`` Hz tone for ``seconds``
    (``aufile`` source) and writes what it hears to ``received.wav``.

    ``console_port`` opens its TCP console (``cons``); with ``record`` the sndfile module
    writes what the phone hears and says to ``dump-*-dec.wav`` / ``dump-*-enc.wav``.
    Start it with ``spawn(["stdbuf", "-oL", "baresip", "-f", str(directory), "-t", "60"])``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / "tone.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(source),
                    "synth", str(seconds), "sine", str(freq)], check=True, timeout=20)
    (directory / "config").write_text(
        f"sip_listen 127.0.0.1:{free_port()}\n"
        "module_path /usr/lib/baresip/modules\n"
        "module g711.so\nmodule aufile.so\nmodule menu.so\nmodule_app account.so\n"
        f"audio_player aufile,{directory}/received.wav\n"
        f"audio_source aufile,{source}\n"
        f"audio_alert aufile,{directory}/alert.wav\n"
        + (f"module cons.so\ncons_listen 127.0.0.1:{console_port}\n" if console_port else "")
        + (f"module sndfile.so\nsnd_path {directory}\n" if record else ""))
    answer = ";answermode=auto" if auto_answer else ""
    (directory / "accounts").write_text(
        f"<sip:{extension}@127.0.0.1:{registrar_port}>"
        f";auth_pass={password};regint=300{answer}\n")
    return directory

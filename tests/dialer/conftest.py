"""Fixtures of the dialer's end-to-end tests: child processes (sipp, baresip) that are always
killed. Adapted from tests/calls/callworld.py."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest


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

"""Interop: a real sipp UAC registers with Digest auth to our registrar over UDP."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path
from typing import cast

import pytest

from sipspeak.sip.auth import DigestServer, StoredSecret
from sipspeak.sip.errors import SipError
from sipspeak.sip.events import Address
from sipspeak.sip.message import SipRequest, make_response, parse_message
from sipspeak.sip.registrar import ExtensionOnline, Registrar, RegistrarEvent
from sipspeak.sip.registrar_aio import RegisterHandler

SCENARIOS = Path(__file__).parent / "scenarios"
SIPP = shutil.which("sipp")
pytestmark = pytest.mark.skipif(
    SIPP is None, reason="sipp (Debian sip-tester) is required"
)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RegistrarEndpoint(asyncio.DatagramProtocol):
    """A bare UDP server in front of RegisterHandler (one final response per request)."""

    def __init__(self, handler: RegisterHandler) -> None:
        self.handler = handler
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.statuses: list[int] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.get_running_loop().create_task(self._answer(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            request = parse_message(data)
        except SipError:
            return
        if not isinstance(request, SipRequest):
            return
        if request.method == "REGISTER":
            response = await self.handler.handle(
                request, Address("UDP", addr[0], addr[1])
            )
        else:
            response = make_response(request, 405)
        self.statuses.append(response.status)
        assert self.transport is not None
        self.transport.sendto(response.serialize(), addr)


async def run_sipp(
    scenario: str, port: int, *, user: str, password: str
) -> tuple[int, str]:
    args = [
        SIPP or "sipp",
        f"127.0.0.1:{port}",
        "-sf",
        str(SCENARIOS / scenario),
        "-i",
        "127.0.0.1",
        "-p",
        str(free_udp_port()),
        "-cp",
        str(free_udp_port()),
        "-mp",
        str(free_udp_port()),
        "-s",
        user,
        "-au",
        user,
        "-ap",
        password,
        "-m",
        "1",
        "-nostdin",
        "-timeout",
        "10s",
        "-timeout_error",
    ]
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out.decode(errors="replace")[-2000:]


@pytest.fixture
async def registrar_server():
    events: list[RegistrarEvent] = []
    handler = RegisterHandler(
        registrar=Registrar(min_expires=60, max_expires=3600),
        # sipp 3.6 answers MD5 challenges only.
        auth=DigestServer(
            realm="sipspeak",
            key=b"k" * 32,
            algorithms=("MD5",),
            max_failures=3,
            lockout_seconds=60,
        ),
        lookup=lambda user: (
            StoredSecret.from_password("pw" + user) if user.startswith("10") else None
        ),
        on_event=events.append,
    )
    loop = asyncio.get_running_loop()
    transport, endpoint = await loop.create_datagram_endpoint(
        lambda: RegistrarEndpoint(handler), local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    try:
        yield port, handler, endpoint, events
    finally:
        transport.close()


async def test_sipp_registers_with_right_password(registrar_server) -> None:
    port, handler, endpoint, events = registrar_server
    code, out = await run_sipp("reg_auth_ok.xml", port, user="101", password="pw101")
    assert code == 0, out
    assert endpoint.statuses == [401, 200]
    now = asyncio.get_running_loop().time()
    [binding] = handler.registrar.lookup("101", now)
    assert binding.uri.user == "101" and binding.uri.host == "127.0.0.1"
    assert 290 < binding.expires_at - now <= 300
    assert [type(e) for e in events] == [ExtensionOnline]


async def test_sipp_wrong_password_then_lockout(registrar_server) -> None:
    port, handler, endpoint, events = registrar_server
    for _ in range(2):
        code, out = await run_sipp(
            "reg_auth_wrong.xml", port, user="101", password="nope"
        )
        assert code == 0, out
    code, out = await run_sipp(
        "reg_auth_lockout.xml", port, user="101", password="nope"
    )
    assert code == 0, out
    # Locked out: even the right password gets 403 now.
    code, out = await run_sipp(
        "reg_auth_locked.xml", port, user="101", password="pw101"
    )
    assert code == 0, out
    assert endpoint.statuses == [401, 401, 401, 401, 401, 403, 403]
    assert handler.registrar.lookup("101", asyncio.get_running_loop().time()) == []
    assert events == []

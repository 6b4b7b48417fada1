"""Interop: a real sipp UAC registers with Digest auth to our registrar over UDP,
through the UserAgent core's REGISTER extension point."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path
from typing import cast

import pytest

from sipspeak.sip.auth import DigestServer, StoredSecret
from sipspeak.sip.events import Address
from sipspeak.sip.message import SipResponse
from sipspeak.sip.registrar import ExtensionOnline, Registrar, RegistrarEvent
from sipspeak.sip.registrar_aio import RegisterHandler
from sipspeak.sip.useragent import UserAgent

SCENARIOS = Path(__file__).parent / "scenarios"
SIPP = shutil.which("sipp")
pytestmark = pytest.mark.skipif(
    SIPP is None, reason="sipp (Debian sip-tester) is required"
)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class UaShell(asyncio.DatagramProtocol):
    """A minimal UDP shell around the sans-IO UserAgent (feeds datagrams, sends its
    output, arms its one timer) with the REGISTER handler attached."""

    def __init__(self, handler: RegisterHandler) -> None:
        self.handler = handler
        self.ua: UserAgent | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.responses: list[SipResponse] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        port = transport.get_extra_info("sockname")[1]
        self.ua = UserAgent(local=Address("UDP", "127.0.0.1", port))
        self.ua.wakeup = self.flush
        self.handler.attach(self.ua)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.ua is not None
        now = asyncio.get_running_loop().time()
        self.ua.receive_data(data, Address("UDP", addr[0], addr[1]), now)
        self.flush()

    def _fire(self) -> None:
        assert self.ua is not None
        self.ua.handle_timer(asyncio.get_running_loop().time())
        self.flush()

    def flush(self) -> None:
        assert self.ua is not None and self.transport is not None
        for item in self.ua.messages_to_send():
            message = item.message
            if isinstance(message, SipResponse) and not any(
                message is r for r in self.responses
            ):
                self.responses.append(message)
            dest = item.destination
            self.transport.sendto(message.serialize(), (dest.host, dest.port))
        while self.ua.next_event() is not None:
            pass
        if self.timer is not None:
            self.timer.cancel()
        deadline = self.ua.get_timer()
        if deadline is not None:
            self.timer = asyncio.get_running_loop().call_at(deadline, self._fire)

    @property
    def statuses(self) -> list[int]:
        return [r.status for r in self.responses]


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
        lambda: UaShell(handler), local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    try:
        yield port, handler, endpoint, events
    finally:
        await handler.aclose()
        if endpoint.timer is not None:
            endpoint.timer.cancel()
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

"""Interop with sipp as the SIP provider: our trunk registers (401, then 200) and our
UAC re-sends an INVITE with credentials after a 407, over the real UserAgent core."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path
from typing import cast

import pytest

from sipspeak.sip.digest import (
    DigestClient,
    DigestCredentials,
    RequestAuthenticator,
    compute_ha1,
    compute_response,
)
from sipspeak.sip.events import Address
from sipspeak.sip.headers import NameAddr
from sipspeak.sip.message import SipRequest
from sipspeak.sip.session import CallAnswered, CallFailed
from sipspeak.sip.trunk import TrunkConfig, TrunkState, TrunkStatus
from sipspeak.sip.trunk_aio import TrunkRunner, UserAgentChannel
from sipspeak.sip.uri import SipUri
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
    """A minimal UDP shell around the sans-IO UserAgent: feed datagrams, send its
    output, arm its one timer, collect its events."""

    def __init__(self) -> None:
        self.ua: UserAgent | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.events: list[object] = []
        self.sent: list[SipRequest] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        port = transport.get_extra_info("sockname")[1]
        self.ua = UserAgent(local=Address("UDP", "127.0.0.1", port), user="117049")
        self.ua.wakeup = self.flush

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.ua is not None
        self.ua.receive_data(data, Address("UDP", addr[0], addr[1]), self._now())
        self.flush()

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _fire(self) -> None:
        assert self.ua is not None
        self.ua.handle_timer(self._now())
        self.flush()

    def flush(self) -> None:
        assert self.ua is not None and self.transport is not None
        for item in self.ua.messages_to_send():
            message = item.message
            if (
                isinstance(message, SipRequest)
                and message.method not in ("ACK", "BYE")
                and not any(message is m for m in self.sent)
            ):
                self.sent.append(message)
            dest = item.destination
            self.transport.sendto(item.message.serialize(), (dest.host, dest.port))
        while (event := self.ua.next_event()) is not None:
            self.events.append(event)
        if self.timer is not None:
            self.timer.cancel()
        deadline = self.ua.get_timer()
        if deadline is not None:
            self.timer = asyncio.get_running_loop().call_at(deadline, self._fire)


async def start_sipp_uas(
    scenario: str, port: int, service: str
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        SIPP or "sipp",
        "-sf", str(SCENARIOS / scenario),
        "-i", "127.0.0.1",
        "-p", str(port),
        "-cp", str(free_udp_port()),
        "-mp", str(free_udp_port()),
        "-s", service,
        "-m", "1",
        "-nostdin",
        "-timeout", "15s",
        "-timeout_error",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip


async def finish(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out.decode(errors="replace")[-1500:]


async def wait_for_state(
    statuses: list[TrunkStatus], state: TrunkState, count: int = 1
) -> None:
    for _ in range(1000):
        if sum(1 for s in statuses if s.state is state) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"trunk never reached {state}: {statuses}")


@pytest.fixture
async def shell():
    loop = asyncio.get_running_loop()
    transport, endpoint = await loop.create_datagram_endpoint(
        UaShell, local_addr=("127.0.0.1", 0)
    )
    try:
        yield endpoint
    finally:
        if endpoint.timer is not None:
            endpoint.timer.cancel()
        transport.close()


async def test_trunk_registers_refreshes_and_unregisters(shell: UaShell) -> None:
    port = free_udp_port()
    proc = await start_sipp_uas("reg_trunk_uas.xml", port, "117049")
    statuses: list[TrunkStatus] = []
    config = TrunkConfig(
        username="117049",
        password="s3cret",
        host=f"127.0.0.1:{port}",
        refresh_margin=1.0,
    )
    runner = TrunkRunner(config, UserAgentChannel(shell.ua), on_status=statuses.append)
    task = asyncio.create_task(runner.run())
    try:
        await wait_for_state(statuses, TrunkState.REGISTERED)
        # The provider granted 2 s: the runner refreshes on its own before expiry.
        for _ in range(500):
            if len(shell.sent) >= 3:
                break
            await asyncio.sleep(0.01)
        assert len(shell.sent) >= 3
    finally:
        await runner.stop(task, timeout=10)
    code, out = await finish(proc)
    assert code == 0, out
    first, second, refresh, unregister = shell.sent
    assert "Authorization" not in first.headers
    creds = DigestCredentials.parse(second.headers.get("Authorization") or "")
    assert (
        creds.username == "117049" and creds.realm == "provider.test" and creds.nc == 1
    )
    again = DigestCredentials.parse(refresh.headers.get("Authorization") or "")
    assert again.nc == 2 and again.nonce == creds.nonce
    assert refresh.call_id == first.call_id and refresh.cseq.seq == 3
    assert unregister.headers.get("Expires") == "0"
    assert runner.status.state is TrunkState.DISABLED
    assert [s.state for s in statuses] == [
        TrunkState.REGISTERING,
        TrunkState.REGISTERED,
        TrunkState.DISABLED,
    ]


async def test_trunk_with_wrong_password_fails_with_the_reason(
    shell: UaShell,
) -> None:
    port = free_udp_port()
    proc = await start_sipp_uas("reg_trunk_uas.xml", port, "117049")
    statuses: list[TrunkStatus] = []
    config = TrunkConfig(
        username="117049", password="wrong", host=f"sip:127.0.0.1:{port}"
    )
    runner = TrunkRunner(config, UserAgentChannel(shell.ua), on_status=statuses.append)
    task = asyncio.create_task(runner.run())
    try:
        await wait_for_state(statuses, TrunkState.FAILED)
    finally:
        await runner.stop(task, timeout=10)
    code, out = await finish(proc)
    assert code == 0, out
    failed = next(s for s in statuses if s.state is TrunkState.FAILED)
    assert failed.status_code == 403 and failed.reason == "403 Forbidden"
    assert failed.next_attempt is not None  # a retry is scheduled (back-off)
    assert len(shell.sent) == 2


SDP_OFFER = (
    b"v=0\r\no=sipspeak 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


async def call_through_provider(shell: UaShell, port: int, password: str) -> object:
    """INVITE via the trunk's credentials; the first final event of the call."""
    assert shell.ua is not None
    loop = asyncio.get_running_loop()
    callee = SipUri(user="79001234567", host="127.0.0.1", port=port)
    session = shell.ua.invite(
        uri=callee,
        from_=NameAddr(uri=SipUri(user="117049", host="127.0.0.1", port=port)),
        destination=Address("UDP", "127.0.0.1", port),
        now=loop.time(),
        body=SDP_OFFER,
        authenticate=RequestAuthenticator(
            DigestClient(username="117049", password=password)
        ),
    )
    shell.flush()
    for _ in range(1000):
        for event in shell.events:
            if (
                isinstance(event, CallAnswered | CallFailed)
                and event.session is session
            ):
                return event
        await asyncio.sleep(0.01)
    raise AssertionError(f"call never ended: {shell.events}")


async def test_invite_is_resent_with_proxy_authorization_after_407(
    shell: UaShell,
) -> None:
    port = free_udp_port()
    proc = await start_sipp_uas("auth_invite_uas.xml", port, "117049")
    answered = await call_through_provider(shell, port, "s3cret")
    assert isinstance(answered, CallAnswered)
    answered.session.hangup(asyncio.get_running_loop().time())
    shell.flush()
    code, out = await finish(proc)
    assert code == 0, out
    first, second = shell.sent
    assert first.method == second.method == "INVITE"
    assert "Proxy-Authorization" not in first.headers
    creds = DigestCredentials.parse(second.headers.get("Proxy-Authorization") or "")
    assert creds.realm == "calls.provider.test" and creds.uri == str(first.uri)
    # sipp's verifyauth reads only Authorization, so check the digest here.
    ha1 = compute_ha1("MD5", "117049", creds.realm, "s3cret")
    expected = compute_response(
        algorithm="MD5",
        ha1=ha1,
        nonce=creds.nonce,
        method="INVITE",
        uri=creds.uri,
        qop=creds.qop,
        nc=creds.nc,
        cnonce=creds.cnonce,
    )
    assert creds.response == expected and creds.qop == "auth" and creds.nc == 1
    assert second.call_id == first.call_id and second.cseq.seq == first.cseq.seq + 1
    assert second.via[0].branch != first.via[0].branch


async def test_invite_with_wrong_password_is_not_retried_forever(
    shell: UaShell,
) -> None:
    port = free_udp_port()
    proc = await start_sipp_uas("auth_invite_reject_uas.xml", port, "117049")
    failed = await call_through_provider(shell, port, "wrong")
    code, out = await finish(proc)
    assert code == 0, out  # sipp fails the call if a third INVITE arrives
    assert isinstance(failed, CallFailed) and failed.status == 407
    assert len(shell.sent) == 2

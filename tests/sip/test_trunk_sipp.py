"""Interop: our trunk registers to a sipp UAS acting as the provider (401, then 200)."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path
from typing import cast

import pytest

from sipspeak.sip.digest import DigestCredentials
from sipspeak.sip.errors import SipError
from sipspeak.sip.events import Address, ResponseReceived, TransactionTimedOut, Transmit
from sipspeak.sip.headers import NameAddr, Via
from sipspeak.sip.message import SipRequest, SipResponse, parse_message
from sipspeak.sip.timers import TimerValues
from sipspeak.sip.transaction_layer import TransactionLayer, new_branch
from sipspeak.sip.trunk import TrunkConfig, TrunkState, TrunkStatus
from sipspeak.sip.trunk_aio import TrunkRunner
from sipspeak.sip.uri import SipUri

SCENARIOS = Path(__file__).parent / "scenarios"
SIPP = shutil.which("sipp")
pytestmark = pytest.mark.skipif(
    SIPP is None, reason="sipp (Debian sip-tester) is required"
)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class UdpChannel(asyncio.DatagramProtocol):
    """A minimal UDP endpoint over the sans-IO TransactionLayer (a RequestChannel)."""

    def __init__(self, timer_values: TimerValues | None = None) -> None:
        self.layer = TransactionLayer(timer_values=timer_values)
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.waiting: dict[int, asyncio.Future[SipResponse]] = {}
        self.sent: list[SipRequest] = []
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.port = transport.get_extra_info("sockname")[1]

    def via_for(self, destination: Address) -> Via:
        return Via.parse(
            f"SIP/2.0/UDP 127.0.0.1:{self.port};branch={new_branch()};rport"
        )

    def contact_for(self, destination: Address) -> NameAddr:
        return NameAddr(uri=SipUri(host="127.0.0.1", port=self.port))

    async def send_request(
        self, request: SipRequest, destination: Address
    ) -> SipResponse:
        loop = asyncio.get_running_loop()
        txn = self.layer.send_request(request, destination, loop.time())
        future: asyncio.Future[SipResponse] = loop.create_future()
        self.waiting[id(txn)] = future
        self.sent.append(request)
        self._drain()
        return await future

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            message = parse_message(data)
        except SipError:
            return
        if isinstance(message, SipResponse):
            self.layer.receive_response(message, asyncio.get_running_loop().time())
            self._drain()

    def _fire(self) -> None:
        now = asyncio.get_running_loop().time()
        for owner in self.layer.queue.pop_due(now):
            owner.handle_timer(now)
        self._drain()

    def _drain(self) -> None:
        outbox, self.layer.outbox = self.layer.outbox, []
        for item in outbox:
            if isinstance(item, Transmit) and self.transport is not None:
                dest = item.destination
                self.transport.sendto(item.message.serialize(), (dest.host, dest.port))
            elif isinstance(item, ResponseReceived) and item.response.status >= 200:
                future = self.waiting.pop(id(item.transaction), None)
                if future is not None and not future.done():
                    future.set_result(item.response)
            elif isinstance(item, TransactionTimedOut):
                future = self.waiting.pop(id(item.transaction), None)
                if future is not None and not future.done():
                    future.set_exception(TimeoutError("Timer F"))
        if self.timer is not None:
            self.timer.cancel()
        deadline = self.layer.queue.get_timer()
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
async def channel():
    loop = asyncio.get_running_loop()
    transport, endpoint = await loop.create_datagram_endpoint(
        lambda: UdpChannel(TimerValues()), local_addr=("127.0.0.1", 0)
    )
    try:
        yield endpoint
    finally:
        if endpoint.timer is not None:
            endpoint.timer.cancel()
        transport.close()


async def test_trunk_registers_refreshes_and_unregisters(channel: UdpChannel) -> None:
    port = free_udp_port()
    proc = await start_sipp_uas("reg_trunk_uas.xml", port, "117049")
    statuses: list[TrunkStatus] = []
    config = TrunkConfig(
        username="117049",
        password="s3cret",
        host=f"127.0.0.1:{port}",
        refresh_margin=1.0,
    )
    runner = TrunkRunner(config, channel, on_status=statuses.append)
    task = asyncio.create_task(runner.run())
    try:
        await wait_for_state(statuses, TrunkState.REGISTERED)
        # The provider granted 2 s: the runner refreshes on its own before expiry.
        for _ in range(500):
            if len(channel.sent) >= 3:
                break
            await asyncio.sleep(0.01)
        assert len(channel.sent) >= 3
    finally:
        await runner.stop(task, timeout=10)
    code, out = await finish(proc)
    assert code == 0, out
    first, second, refresh, unregister = channel.sent
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
    channel: UdpChannel,
) -> None:
    port = free_udp_port()
    proc = await start_sipp_uas("reg_trunk_uas.xml", port, "117049")
    statuses: list[TrunkStatus] = []
    config = TrunkConfig(
        username="117049", password="wrong", host=f"sip:127.0.0.1:{port}"
    )
    runner = TrunkRunner(config, channel, on_status=statuses.append)
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
    assert len(channel.sent) == 2

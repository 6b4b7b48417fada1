"""Interop with sipp as the SIP provider, over SipEndpoint and the UserAgent core: our
trunk registers (401, then 200), refreshes and unregisters; our UAC re-sends an INVITE
with credentials after a 407 and gives up when they are rejected."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sipspeak.sip.digest import DigestCredentials, compute_ha1, compute_response
from sipspeak.sip.events import Address
from sipspeak.sip.headers import NameAddr
from sipspeak.sip.message import SipRequest, SipResponse
from sipspeak.sip.session import CallAnswered, CallFailed
from sipspeak.sip.transport import SipEndpoint
from sipspeak.sip.trunk import TrunkConfig, TrunkState, TrunkStatus
from sipspeak.sip.trunk_aio import TrunkRunner, UserAgentChannel
from sipspeak.sip.uri import SipUri


class RecordingChannel(UserAgentChannel):
    """The user agent channel, keeping each REGISTER it sent (for the assertions)."""

    def __init__(self, endpoint: SipEndpoint) -> None:
        super().__init__(endpoint.ua)
        self.sent: list[SipRequest] = []

    async def send_request(
        self, request: SipRequest, destination: Address
    ) -> SipResponse:
        self.sent.append(request)
        return await super().send_request(request, destination)


async def start_provider(
    spawn: Callable[..., Any],
    scenarios: Path,
    scenario: str,
    port: int,
    pick_port: Callable[..., int],
) -> Any:
    return await spawn(
        [
            "sipp",
            "-sf", str(scenarios / scenario),
            "-i", "127.0.0.1",
            "-p", str(port),
            "-cp", str(pick_port()),
            "-mp", str(pick_port()),
            "-s", "117049",
            "-m", "1", "-nostdin",
            "-timeout", "15s", "-timeout_error",
        ]
    )  # fmt: skip


async def wait_for_state(statuses: list[TrunkStatus], state: TrunkState) -> None:
    for _ in range(1000):
        if any(s.state is state for s in statuses):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"trunk never reached {state}: {statuses}")


async def test_trunk_registers_refreshes_and_unregisters(
    endpoint: SipEndpoint, spawn: Any, scenarios: Path, pick_port: Any
) -> None:
    port = pick_port()
    provider = await start_provider(
        spawn, scenarios, "reg_trunk_uas.xml", port, pick_port
    )
    statuses: list[TrunkStatus] = []
    config = TrunkConfig(
        username="117049",
        password="s3cret",
        host=f"127.0.0.1:{port}",
        refresh_margin=1.0,
    )
    channel = RecordingChannel(endpoint)
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
    code, out = await provider.wait(20)
    assert code == 0, out[-1500:]
    first, second, refresh, unregister = channel.sent
    assert "Authorization" not in first.headers
    creds = DigestCredentials.parse(second.headers.get("Authorization") or "")
    assert (
        creds.username == "117049" and creds.realm == "provider.test" and creds.nc == 1
    )
    again = DigestCredentials.parse(refresh.headers.get("Authorization") or "")
    assert again.nc == 2 and again.nonce == creds.nonce
    assert refresh.call_id == first.call_id and refresh.cseq.seq == 3
    assert str(first.contact[0].uri).startswith("sip:117049@127.0.0.1:")
    assert unregister.headers.get("Expires") == "0"
    assert runner.status.state is TrunkState.DISABLED
    assert [s.state for s in statuses] == [
        TrunkState.REGISTERING,
        TrunkState.REGISTERED,
        TrunkState.DISABLED,
    ]


async def test_trunk_with_wrong_password_fails_with_the_reason(
    endpoint: SipEndpoint, spawn: Any, scenarios: Path, pick_port: Any
) -> None:
    port = pick_port()
    provider = await start_provider(
        spawn, scenarios, "reg_trunk_uas.xml", port, pick_port
    )
    statuses: list[TrunkStatus] = []
    config = TrunkConfig(
        username="117049", password="wrong", host=f"sip:127.0.0.1:{port}"
    )
    channel = RecordingChannel(endpoint)
    runner = TrunkRunner(config, channel, on_status=statuses.append)
    task = asyncio.create_task(runner.run())
    try:
        await wait_for_state(statuses, TrunkState.FAILED)
    finally:
        await runner.stop(task, timeout=10)
    code, out = await provider.wait(20)
    assert code == 0, out[-1500:]
    failed = next(s for s in statuses if s.state is TrunkState.FAILED)
    assert failed.status_code == 403 and failed.reason == "403 Forbidden"
    assert failed.next_attempt is not None  # a retry is scheduled (back-off)
    assert len(channel.sent) == 2


SDP_OFFER = (
    b"v=0\r\no=sipspeak 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


async def call_through_provider(endpoint: SipEndpoint, port: int, password: str) -> Any:
    """INVITE with the trunk's credentials; the first final event of the call."""
    events: list[object] = []
    endpoint.on_event = events.append
    loop = asyncio.get_running_loop()
    runner = TrunkRunner(
        TrunkConfig(username="117049", password=password, host=f"127.0.0.1:{port}"),
        UserAgentChannel(endpoint.ua),
    )
    session = endpoint.ua.invite(
        uri=SipUri(user="79001234567", host="127.0.0.1", port=port),
        from_=NameAddr(uri=SipUri(user="117049", host="127.0.0.1", port=port)),
        destination=Address("UDP", "127.0.0.1", port),
        now=loop.time(),
        body=SDP_OFFER,
        authenticate=runner.authenticator(),
    )
    for _ in range(1000):
        for event in events:
            if (
                isinstance(event, CallAnswered | CallFailed)
                and event.session is session
            ):
                return event
        await asyncio.sleep(0.01)
    raise AssertionError(f"call never ended: {events}")


async def test_invite_is_resent_with_proxy_authorization_after_407(
    endpoint: SipEndpoint, spawn: Any, scenarios: Path, pick_port: Any
) -> None:
    port = pick_port()
    provider = await start_provider(
        spawn, scenarios, "auth_invite_uas.xml", port, pick_port
    )
    answered = await call_through_provider(endpoint, port, "s3cret")
    assert isinstance(answered, CallAnswered)
    session = answered.session
    session.hangup(asyncio.get_running_loop().time())
    code, out = await provider.wait(20)
    assert code == 0, out[-1500:]
    resent: SipRequest = session.invite
    assert resent.cseq.seq == 2 and resent.cseq.method == "INVITE"
    creds = DigestCredentials.parse(resent.headers.get("Proxy-Authorization") or "")
    assert creds.realm == "calls.provider.test" and creds.uri == str(resent.uri)
    # sipp's verifyauth reads only Authorization, so check the digest here.
    expected = compute_response(
        algorithm="MD5",
        ha1=compute_ha1("MD5", "117049", creds.realm, "s3cret"),
        nonce=creds.nonce,
        method="INVITE",
        uri=creds.uri,
        qop=creds.qop,
        nc=creds.nc,
        cnonce=creds.cnonce,
    )
    assert creds.response == expected and creds.qop == "auth" and creds.nc == 1


async def test_invite_with_wrong_password_is_not_retried_forever(
    endpoint: SipEndpoint, spawn: Any, scenarios: Path, pick_port: Any
) -> None:
    port = pick_port()
    provider = await start_provider(
        spawn, scenarios, "auth_invite_reject_uas.xml", port, pick_port
    )
    failed = await call_through_provider(endpoint, port, "wrong")
    code, out = await provider.wait(20)
    assert code == 0, out[-1500:]  # sipp fails the call if a third INVITE arrives
    assert isinstance(failed, CallFailed) and failed.status == 407
    assert failed.session.invite.cseq.seq == 2

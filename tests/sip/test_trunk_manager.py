"""TrunkManager and TrunkRunner against an in-process provider (our DigestServer and
Registrar behind a RequestChannel), on the real event loop."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from sipspeak.sip.auth import Accepted, Challenge, DigestServer, StoredSecret
from sipspeak.sip.events import Address
from sipspeak.sip.headers import NameAddr, Via
from sipspeak.sip.message import SipRequest, SipResponse, make_response, parse_message
from sipspeak.sip.registrar import Registrar
from sipspeak.sip.transaction_layer import new_branch
from sipspeak.sip.trunk import TrunkConfig, TrunkState, TrunkStatus
from sipspeak.sip.trunk_aio import TrunkManager, trunk_destination
from sipspeak.sip.uri import SipUri


class ProviderChannel:
    """Delivers each REGISTER (through the wire format) to a provider in this process."""

    def __init__(self, password: str = "s3cret") -> None:
        self.auth = DigestServer(realm="provider", key=b"q" * 32)
        self.registrar = Registrar(max_expires=3600)
        self.password = password
        self.seen: list[SipRequest] = []

    def via_for(self, destination: Address) -> Via:
        return Via.parse(f"SIP/2.0/UDP 127.0.0.1:5098;branch={new_branch()}")

    def contact_for(self, destination: Address) -> NameAddr:
        return NameAddr(uri=SipUri(user="ignored", host="127.0.0.1", port=5098))

    async def send_request(
        self, request: SipRequest, destination: Address
    ) -> SipResponse:
        await asyncio.sleep(0)
        received = parse_message(request.serialize())
        assert isinstance(received, SipRequest)
        self.seen.append(received)
        now = asyncio.get_running_loop().time()
        decision = self.auth.authenticate(
            method="REGISTER",
            uri=str(received.uri),
            authorization=received.headers.get_all("Authorization"),
            source=destination.host,
            now=now,
            lookup=lambda user: StoredSecret.from_password(self.password),
        )
        if isinstance(decision, Challenge):
            headers = [(decision.header, v) for v in decision.values]
            response = make_response(received, decision.status, headers=headers)
        elif isinstance(decision, Accepted):
            user = received.to.uri.user if isinstance(received.to.uri, SipUri) else ""
            result = self.registrar.handle_request(
                received, extension=user or "", now=now
            )
            response = result.response(received)
        else:
            response = make_response(received, decision.status)
        wire = parse_message(response.serialize())
        assert isinstance(wire, SipResponse)
        return wire


async def wait_until(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_manager_starts_restarts_and_stops_trunks() -> None:
    channel = ProviderChannel()
    seen: list[tuple[str, TrunkStatus]] = []
    manager = TrunkManager(channel, on_status=lambda name, st: seen.append((name, st)))
    config = TrunkConfig(
        username="117049", password="s3cret", host="sip:117049@127.0.0.1:5090"
    )
    assert trunk_destination(config) == Address("UDP", "127.0.0.1", 5090)
    try:
        await manager.apply("zadarma", config)
        await wait_until(
            lambda: manager.statuses()["zadarma"].state is TrunkState.REGISTERED,
            "registration",
        )
        now = asyncio.get_running_loop().time()
        [binding] = channel.registrar.lookup("117049", now)
        assert binding.uri == SipUri(user="117049", host="127.0.0.1", port=5098)
        count = len(channel.seen)
        await manager.apply("zadarma", config)  # unchanged: keeps running
        assert len(channel.seen) == count
        runner = manager.runner("zadarma")
        assert runner is not None
        # Changed password: old registration removed, new one fails with the reason.
        await manager.apply("zadarma", replace(config, password="wrong"))
        await wait_until(
            lambda: manager.statuses()["zadarma"].state is TrunkState.FAILED, "failure"
        )
        assert channel.seen[count].headers.get("Expires") == "0"
        failed = manager.statuses()["zadarma"]
        assert failed.status_code == 401 and failed.reason is not None
        assert "credentials rejected" in failed.reason
        assert manager.runner("zadarma") is not runner
    finally:
        await manager.aclose()
    assert manager.statuses() == {}
    assert (
        seen[-1] == ("zadarma", seen[-1][1])
        and seen[-1][1].state is TrunkState.DISABLED
    )
    assert channel.registrar.lookup("117049", asyncio.get_running_loop().time()) == []


async def test_runner_authenticator_answers_the_providers_407() -> None:
    channel = ProviderChannel()
    manager = TrunkManager(channel)
    config = TrunkConfig(username="117049", password="s3cret", host="127.0.0.1:5090")
    try:
        await manager.apply("t", config)
        await wait_until(
            lambda: manager.statuses()["t"].state is TrunkState.REGISTERED, "reg"
        )
        runner = manager.runner("t")
        assert runner is not None
        invite = parse_message(
            b"INVITE sip:79001234567@127.0.0.1:5090 SIP/2.0\r\n"
            b"Via: SIP/2.0/UDP 127.0.0.1:5098;branch=z9hG4bKa\r\n"
            b"From: <sip:117049@127.0.0.1>;tag=f\r\nTo: <sip:79001234567@127.0.0.1>\r\n"
            b"Call-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        )
        assert isinstance(invite, SipRequest)
        now = asyncio.get_running_loop().time()
        challenge = channel.auth.challenge(now=now, proxy=True)
        response = make_response(
            invite, 407, headers=[(challenge.header, v) for v in challenge.values]
        )
        headers = runner.authenticator()(invite, response)
        assert headers is not None
        decision = channel.auth.authenticate(
            method="INVITE",
            uri=str(invite.uri),
            authorization=[v for n, v in headers if n == "Proxy-Authorization"],
            source="127.0.0.1",
            now=now,
            lookup=lambda user: StoredSecret.from_password("s3cret"),
            proxy=True,
        )
        assert decision == Accepted(username="117049")
    finally:
        await manager.aclose()


async def test_host_names_are_resolved_and_dns_failures_reported() -> None:
    channel = ProviderChannel()
    manager = TrunkManager(channel)
    try:
        await manager.apply(
            "named",
            TrunkConfig(username="117049", password="s3cret", host="localhost:5090"),
        )
        await manager.apply(
            "missing",
            TrunkConfig(
                username="117049", password="s3cret", host="no-such-host.invalid"
            ),
        )
        await wait_until(
            lambda: (
                manager.statuses()["named"].state is TrunkState.REGISTERED
                and manager.statuses()["missing"].state is TrunkState.FAILED
            ),
            "both outcomes",
        )
        named = manager.runner("named")
        assert named is not None and named.resolved == Address("UDP", "127.0.0.1", 5090)
        # The Request-URI keeps the name (RFC 3263 resolves only the next hop).
        assert str(channel.seen[0].uri) == "sip:localhost:5090"
        reason = manager.statuses()["missing"].reason
        assert reason is not None and reason.startswith("DNS:")
    finally:
        await manager.aclose()

"""Interop: an operator's phone (a sipp UAC) calls out and our server side challenges
its INVITE with 407 (RFC 3261 §22.3) before the call is answered."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sipspeak.sip.auth import DigestServer, StoredSecret
from sipspeak.sip.events import Address
from sipspeak.sip.message import SipResponse
from sipspeak.sip.registrar_aio import authenticate_request
from sipspeak.sip.sdp import answer_offer, extract_sdp, parse_sdp
from sipspeak.sip.session import IncomingCall
from sipspeak.sip.transport import SipEndpoint


class GuardedCallee:
    """Answers operators' INVITEs once Digest says who is calling; rejects otherwise."""

    def __init__(self, endpoint: SipEndpoint, auth: DigestServer) -> None:
        self.endpoint = endpoint
        self.auth = auth
        self.callers: list[str] = []
        self.challenges: list[int] = []
        self.tasks: set[asyncio.Task[None]] = set()
        endpoint.on_event = self.on_event

    def on_event(self, event: object) -> None:
        if isinstance(event, IncomingCall):
            task = self.endpoint.loop.create_task(self.guard(event))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def guard(self, event: IncomingCall) -> None:
        request = event.request
        via = request.via[0]
        rport = via.rport
        source = Address(
            "UDP",
            via.received or via.host,
            rport if isinstance(rport, int) else (via.port or 5060),
        )
        verdict = await authenticate_request(
            self.auth,
            request,
            source=source,
            lookup=lambda user: (
                StoredSecret.from_password("pw101") if user == "101" else None
            ),
            clock=self.endpoint.loop.time,
            proxy=True,
        )
        now = self.endpoint.loop.time()
        if isinstance(verdict, SipResponse):
            self.challenges.append(verdict.status)
            event.session.reject(verdict.status, now, headers=list(verdict.headers))
            return
        self.callers.append(verdict)
        offer = extract_sdp(request.headers.get("Content-Type"), request.body)
        assert offer is not None
        answer, _ = answer_offer(
            parse_sdp(offer), address="127.0.0.1", port=40000, session_id=1, version=1
        )
        event.session.answer(answer.serialize(), now)


async def test_operator_invite_is_answered_after_proxy_authentication(
    endpoint: SipEndpoint, spawn: Any, scenarios: Path, pick_port: Any
) -> None:
    callee = GuardedCallee(
        endpoint, DigestServer(realm="sipspeak", key=b"i" * 32, algorithms=("MD5",))
    )
    port = endpoint.ua.addresses["UDP"].port
    peer = await spawn(
        [
            "sipp", f"127.0.0.1:{port}",
            "-sf", str(scenarios / "auth_invite_uac.xml"),
            "-i", "127.0.0.1",
            "-p", str(pick_port()), "-cp", str(pick_port()), "-mp", str(pick_port()),
            "-s", "79001234567", "-au", "101", "-ap", "pw101",
            "-m", "1", "-nostdin",
            "-timeout", "15s", "-timeout_error",
        ]
    )  # fmt: skip
    code, out = await peer.wait(20)
    assert code == 0, out[:3000]  # sipp errors come first, the screen after
    assert callee.challenges == [407]
    assert callee.callers == ["101"]

"""Shared helpers for the SIP tests: two sans-IO user agents wired together."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sipspeak.sip.events import Address, Transmit
from sipspeak.sip.message import SipRequest
from sipspeak.sip.useragent import UserAgent


class Wire:
    """Two user agents and a float clock; ``transfer`` moves messages between them."""

    def __init__(self) -> None:
        self.a_addr = Address("UDP", "127.0.0.1", 5071)
        self.b_addr = Address("UDP", "127.0.0.1", 5072)
        self.a = UserAgent(local=self.a_addr, user="alice")
        self.b = UserAgent(local=self.b_addr, user="bob")
        self.now = 0.0
        self.log: list[tuple[str, str]] = []

    def _peer(self, destination: Address) -> tuple[UserAgent, Address]:
        if destination.port == self.b_addr.port:
            return self.b, self.a_addr
        return self.a, self.b_addr

    def transfer(
        self, drop: Callable[[Transmit], bool] | None = None, rounds: int = 20
    ) -> None:
        """Deliver everything queued on both sides until quiet."""
        for _ in range(rounds):
            moved = False
            for ua in (self.a, self.b):
                for item in ua.messages_to_send():
                    moved = True
                    msg = item.message
                    label = (
                        msg.method if isinstance(msg, SipRequest) else str(msg.status)
                    )
                    self.log.append(("a>b" if ua is self.a else "b>a", label))
                    if drop is not None and drop(item):
                        continue
                    peer, source = self._peer(item.destination)
                    peer.receive_data(msg.serialize(), source, self.now)
            if not moved:
                return

    def advance(
        self, until: float, drop: Callable[[Transmit], bool] | None = None
    ) -> None:
        """Run both clocks to ``until``, firing timers and moving messages."""
        while True:
            deadlines = [
                d for d in (self.a.get_timer(), self.b.get_timer()) if d is not None
            ]
            if not deadlines or min(deadlines) > until:
                break
            self.now = max(self.now, min(deadlines))
            self.a.handle_timer(self.now)
            self.b.handle_timer(self.now)
            self.transfer(drop)
        self.now = until

    def events(self, ua: UserAgent) -> list[object]:
        out = []
        while (event := ua.next_event()) is not None:
            out.append(event)
        return out


@pytest.fixture
def wire() -> Wire:
    return Wire()


# ---------------------------------------------------------------- real peers
from collections.abc import AsyncIterator
from pathlib import Path

from childproc import Peer, free_port, spawn  # noqa: F401  (fixtures and helpers)

from sipspeak.sip.sdp import answer_offer, build_offer, extract_sdp, parse_sdp
from sipspeak.sip.session import IncomingCall
from sipspeak.sip.transport import SipEndpoint

SCENARIOS = Path(__file__).parent / "scenarios"


class AnsweringApp:
    """A small callee on the stack: rings, then answers (or rejects, or only rings)."""

    def __init__(self, endpoint: SipEndpoint, *, answer_after: float | None = 0.02,
                 reject: int | None = None) -> None:  # fmt: skip
        self.endpoint = endpoint
        self.answer_after = answer_after
        self.reject = reject
        self.events: list[object] = []
        endpoint.on_event = self.on_event

    def on_event(self, event: object) -> None:
        self.events.append(event)
        if not isinstance(event, IncomingCall):
            return
        session = event.session
        now = self.endpoint.loop.time()
        if self.reject is not None:
            session.reject(self.reject, now)
            return
        session.ring(now)
        if self.answer_after is not None:
            self.endpoint.loop.call_later(self.answer_after, self._answer, session)

    def _answer(self, session: Any) -> None:
        offer = extract_sdp(
            session.invite.headers.get("Content-Type"), session.invite.body
        )
        now = self.endpoint.loop.time()
        if offer is None:
            body = build_offer(
                address="127.0.0.1", port=40000, session_id=1, version=1
            ).serialize()
        else:
            answer, _ = answer_offer(
                parse_sdp(offer),
                address="127.0.0.1",
                port=40000,
                session_id=1,
                version=1,
            )
            body = answer.serialize()
        session.answer(body, now)


@pytest.fixture
async def endpoint() -> AsyncIterator[SipEndpoint]:
    ua = UserAgent(local=Address("UDP", "127.0.0.1", 0), user="sipspeak")
    ep = SipEndpoint(ua)
    await ep.listen_udp("127.0.0.1", 0)
    try:
        yield ep
    finally:
        await ep.close()


@pytest.fixture
def scenarios() -> Path:
    return SCENARIOS


@pytest.fixture
def answering_app() -> type[AnsweringApp]:
    return AnsweringApp


@pytest.fixture
def pick_port() -> Callable[..., int]:
    return free_port

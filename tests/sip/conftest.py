"""Shared helpers for the SIP tests: two sans-IO user agents wired together."""

from __future__ import annotations

from collections.abc import Callable

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

"""Ringing an operator's phones and browsers: offer to every device, first answer wins.

One :class:`Ring` is one offer of a call to one operator (manual §5.2.4): an INVITE to each
live binding of his extension (parallel forking in the spirit of RFC 3261 §16.6 step 8, done
by a B2BUA), all carrying the same SDP offer for one RTP endpoint of ours.  The first 2xx
wins: its SDP points the endpoint at that phone, the other branches are CANCELled.  With
auto-answer the INVITEs carry ``Call-Info: <sip:…>;answer-after=0`` and
``Alert-Info: <http://…>;info=alert-autoanswer`` (the two forms phones understand).

His connected browser softphones are offered the call at the same moment
(:class:`~sipspeak.calls.browser.BrowserOffer`, one WebRTC leg each): a browser's accepted
SDP answer wins like a 2xx (``ring.leg`` is then a
:class:`~sipspeak.calls.browser.BrowserLeg`), and a browser that refuses or goes away
counts as a branch that failed with 603.

Results go to ``on_result(ring, event)`` as the dialer's operator events:
``OperatorAnswered`` (``ring.leg`` holds the answered leg), ``OperatorDeclined`` (every
branch refused, or no phone registered) or ``OperatorRingTimeout`` (the operator timeout
passed; every branch was cancelled).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from sipspeak.dialer.ports import (
    OperatorAnswered,
    OperatorDeclined,
    OperatorEvent,
    OperatorRingTimeout,
)
from sipspeak.media.endpoint import RtpEndpoint
from sipspeak.sip.headers import NameAddr
from sipspeak.sip.session import CallAnswered, CallFailed, InviteSession
from sipspeak.sip.uri import SipUri
from sipspeak.sip.useragent import UserAgent

from .browser import BrowserLeg, BrowserOffer, BrowserPhones
from .legs import MediaOffer, SipLeg
from .phones import PhoneTarget

__all__ = ["Ring", "auto_answer_headers", "start_ring"]

log = logging.getLogger(__name__)


def auto_answer_headers(host: str) -> list[tuple[str, str]]:
    return [("Call-Info", f"<sip:{host}>;answer-after=0"),
            ("Alert-Info", "<http://www.notused.com>;info=alert-autoanswer")]


@dataclass(eq=False, slots=True)
class Ring:
    """One operator being rung for one call."""

    ring_id: str
    operator_id: int
    call_id: str
    endpoint: RtpEndpoint | None  # the phones' media; None when only browsers are rung
    sdp: MediaOffer | None
    on_result: Callable[[Ring, OperatorEvent], None]
    now_ms: Callable[[], int]
    forks: list[InviteSession] = field(default_factory=list)
    offers: list[BrowserOffer] = field(default_factory=list)
    browsers: BrowserPhones | None = None
    spawn: Callable[[Coroutine[Any, Any, Any], str], object] | None = None
    loop_time: Callable[[], float] = lambda: 0.0  # the SIP layer's clock, for the CANCELs
    leg: SipLeg | BrowserLeg | None = None
    done: bool = False
    declined: bool = False
    timer: asyncio.TimerHandle | None = None

    # -- SIP events of the forks -----------------------------------------------------------
    def answered(self, event: CallAnswered, now: float) -> None:
        session = event.session
        if self.done:
            session.hangup(now)  # a second phone answered too late
            return
        if self.endpoint is None or self.sdp is None:  # no phone was rung: not our fork
            session.hangup(now)
            return
        leg = SipLeg(session=session, endpoint=self.endpoint, sdp=self.sdp, role="operator")
        if not leg.remote_answer(event.response.headers.get("Content-Type"),
                                 event.response.body):
            log.info("%s: operator phone answered without usable SDP", session.call_id)
            session.hangup(now)
            self.forks.remove(session)
            self._maybe_declined()
            return
        self.leg = leg
        self._finish(now, keep=session)
        self.on_result(self, OperatorAnswered(self.ring_id, self.operator_id, self.now_ms()))

    def failed(self, event: CallFailed) -> None:
        if event.session in self.forks:
            self.forks.remove(event.session)
        if event.status in (486, 600, 603):
            self.declined = True
        self._maybe_declined()

    # -- the browsers' answers ---------------------------------------------------------------
    def add_offer(self, offer: BrowserOffer) -> None:
        offer.on_answer = self._browser_answered
        offer.on_decline = self._browser_declined
        self.offers.append(offer)

    def _browser_answered(self, offer: BrowserOffer) -> None:
        if offer in self.offers:
            self.offers.remove(offer)
        if self.done or self.browsers is None or self.spawn is None:
            if self.browsers is not None:
                self.browsers.withdraw(offer)
            return
        self.leg = self.browsers.take(offer, self.spawn)
        self._finish(self.loop_time(), keep=None)
        self.on_result(self, OperatorAnswered(self.ring_id, self.operator_id, self.now_ms()))

    def _browser_declined(self, offer: BrowserOffer) -> None:
        if offer in self.offers:
            self.offers.remove(offer)
            self.declined = True  # refused, or gone: like a 603 (RFC 3261 §21.6.2)
            self._maybe_declined()

    def _maybe_declined(self) -> None:
        if not self.forks and not self.offers and not self.done:
            self.done = True
            self._cancel_timer()
            self.on_result(self, OperatorDeclined(self.ring_id, self.operator_id, self.now_ms()))

    # -- our decisions ------------------------------------------------------------------------
    def timed_out(self, now: float) -> None:
        if self.done:
            return
        self._finish(now, keep=None)
        self.on_result(self, OperatorRingTimeout(self.ring_id, self.operator_id, self.now_ms()))

    def stop(self, now: float) -> None:
        """Cancel every branch (nobody answered, or the call went away)."""
        if not self.done:
            self._finish(now, keep=None)
        elif self.leg is not None:
            self.leg.hangup(now)

    def _finish(self, now: float, keep: InviteSession | None) -> None:
        self.done = True
        self._cancel_timer()
        for fork in list(self.forks):
            if fork is not keep:
                fork.hangup(now)
        for offer in list(self.offers):
            if self.browsers is not None:
                self.browsers.withdraw(offer)
        self.offers.clear()

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def start_ring(ring: Ring, ua: UserAgent, targets: list[PhoneTarget], *, extension: str,
               caller: str, local_host: str, auto_answer: bool, now: float) -> None:
    """Send one INVITE per target, all with ``ring.sdp``'s offer."""
    if not targets or ring.sdp is None:
        return
    body = ring.sdp.make_offer()
    headers = auto_answer_headers(local_host) if auto_answer else []
    for target in targets:
        to_uri = target.uri if isinstance(target.uri, SipUri) else SipUri(
            user=extension, host=target.destination.host, port=target.destination.port)
        session = ua.invite(
            uri=to_uri,
            from_=NameAddr(uri=SipUri(user=caller or "sipspeak", host=local_host)),
            to=NameAddr(uri=SipUri(user=extension, host=local_host)),
            destination=target.destination, now=now, body=body, headers=headers)
        ring.forks.append(session)

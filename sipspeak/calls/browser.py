"""Operators' browser softphones: who is connected, offers to them, and the answered leg.

A browser softphone is one signed-in tab holding the signalling WebSocket (see
:mod:`~sipspeak.calls.browser_signalling` for the messages).  The web layer calls
:meth:`BrowserPhones.connect` with the user id and a ``send`` callback when the socket opens,
:meth:`BrowserPhones.receive` with every text frame and :meth:`BrowserPhones.disconnect` when
it closes; this module never touches the socket.  An operator with a connected browser is
online like one with a registered phone: ``phone.online`` / ``phone.offline`` (with
``device="browser"``) are published when his first browser connects / his last one leaves.

Offering a call (:class:`~sipspeak.calls.ringing.Ring`) to a browser makes one
:class:`~sipspeak.media.webrtc.WebRtcLeg` from the gateway per tab, with our SDP offer
(PCMU only; webrtc-pc §4.4.1.5 ``createOffer``), sent in a ``ring`` message.  The browser's
answer is applied (``setRemoteDescription``, JSEP §5.10) and the offer becomes a
:class:`BrowserLeg`: the operator leg the bridge relays to.  The ring decides who wins; this
module reports each offer's fate through its callbacks:

* ``on_answer(offer)`` — the browser's SDP answer was accepted;
* ``on_decline(offer)`` — refused, the tab went away (declined at once, as a phone's 603
  would be), its answer was unusable, or its WebRTC leg failed while ringing.

A :class:`BrowserLeg` ends like a SIP leg: its ``on_gone`` runs when the browser hangs up,
its socket closes or its WebRTC leg closes (ICE consent lost, RFC 7675 §5.1; DTLS
close_notify; no RTP for the media timeout) — the service then treats it like a BYE.

A browser holds like a desk phone, without a re-offer: its ``hold`` / ``unhold`` names the
call talked on there; anything else (no call on this device, another call's id) is answered
``no_such_call``.  The leg's ``on_hold_request`` (set by call control) does the rest or
raises :class:`HoldRefused`; the browser is told the outcome (``held`` or ``error``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from sipspeak.events import EventBus
from sipspeak.i18n import Text
from sipspeak.media.leg import MediaLeg
from sipspeak.media.webrtc import (
    WebRtcLeg,
    WebRtcLegClosed,
    WebRtcLegEvent,
    WebRtcSignallingError,
)
from sipspeak.media.webrtc_gateway import WebRtcGateway

from .browser_signalling import (
    Answer,
    Candidate,
    Decline,
    Dtmf,
    Hangup,
    Hold,
    Ping,
    SignallingError,
    error_message,
    parse_message,
)

__all__ = ["BrowserLeg", "BrowserOffer", "BrowserPhone", "BrowserPhones", "HoldRefused",
           "RingInfo"]

log = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], None]
OFFER_TIMEOUT_S = 10.0
"""Gathering our ICE candidates for an offer takes milliseconds with host candidates only;
a STUN server that does not answer must not hold the ring longer than this."""


class HoldRefused(ValueError):
    """A ``hold`` / ``unhold`` that cannot be done now: ``code`` for the ``error`` message,
    ``text`` (a catalogue :class:`Text`) for the operator."""

    def __init__(self, code: str, text: Text) -> None:
        super().__init__(str(text))
        self.code = code
        self.text = text


@dataclass(eq=False, slots=True)
class BrowserPhone:
    """One connected softphone (one WebSocket of a signed-in user)."""

    id: int
    user_id: int
    send: Send
    offers: dict[str, BrowserOffer] = field(default_factory=dict)  # ring id -> offer
    leg: BrowserLeg | None = None  # the call it is on
    connected: bool = True
    language: str = "ru"  # of the user: the texts of the errors sent to it


@dataclass(frozen=True, slots=True)
class RingInfo:
    """What the ``ring`` message tells the operator about the call."""

    ring_id: str
    call_id: str
    caller: str
    project: str
    contact_id: int | None
    auto_answer: bool


@dataclass(eq=False, slots=True)
class BrowserOffer:
    """One call offered to one browser: our WebRTC leg holding the SDP offer."""

    phone: BrowserPhone
    ring_id: str
    rtc: WebRtcLeg
    sdp: str
    call: str = ""  # the call it offers (call control's id, the ``call`` of ``ring``)
    on_answer: Callable[[BrowserOffer], None] = lambda offer: None
    on_decline: Callable[[BrowserOffer], None] = lambda offer: None
    pending: bool = True  # neither answered nor withdrawn yet


@dataclass(eq=False, slots=True)
class BrowserLeg:
    """The operator's leg on a browser: a connected (or connecting) WebRTC leg."""

    phone: BrowserPhone
    ring_id: str
    rtc: WebRtcLeg
    spawn: Callable[[Coroutine[Any, Any, Any], str], object]
    role: str = "operator"
    call: str = ""  # the call it talks on (call control's id)
    on_hold: bool = False  # held by the browser's ``hold`` (it never re-offers)
    hold_since_ms: int | None = None  # when this hold began (call control's clock)
    on_gone: Callable[[BrowserLeg], None] | None = None
    on_dtmf: Callable[[BrowserLeg, str], None] | None = None
    #: ``(leg, on_hold)``: hold or resume the call; raises :class:`HoldRefused`.
    on_hold_request: Callable[[BrowserLeg, bool], None] | None = None
    released: bool = False

    @property
    def media_leg(self) -> MediaLeg:
        return self.rtc

    @property
    def call_id(self) -> str:
        return self.ring_id

    def hangup(self, now: float, status: int | None = None) -> None:
        """We end it: the browser is told (``ended``), the WebRTC leg closes."""
        if self._release():
            self.phone.send({"type": "ended", "ring": self.ring_id})

    def close_media(self, reason: str = "") -> None:
        self._release()

    def gone(self) -> None:
        """The browser's side ended (hang-up, socket closed, WebRTC closed): like a BYE."""
        if not self._release():
            return
        if self.phone.connected:  # its media failed: the page may not know yet
            self.phone.send({"type": "ended", "ring": self.ring_id})
        if self.on_gone is not None:
            self.on_gone(self)

    def _release(self) -> bool:
        if self.released:
            return False
        self.released = True
        if self.phone.leg is self:
            self.phone.leg = None
        self.rtc.set_event_handler(None)
        self.spawn(self.rtc.close(), f"close browser leg {self.ring_id}")
        return True


class BrowserPhones:
    """See the module docstring."""

    def __init__(self, *, bus: EventBus, gateway: WebRtcGateway) -> None:
        self.bus = bus
        self.gateway = gateway
        self._phones: dict[int, list[BrowserPhone]] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- who is connected ------------------------------------------------------------------
    def connect(self, user_id: int, send: Send, *, language: str = "ru") -> BrowserPhone:
        phone = BrowserPhone(id=next(self._ids), user_id=user_id, send=send, language=language)
        first = not self._phones.get(user_id)
        self._phones.setdefault(user_id, []).append(phone)
        if first:
            self.bus.publish("phone.online", extension=None, user_id=user_id, device="browser")
        return phone

    def disconnect(self, phone: BrowserPhone) -> None:
        """The socket closed: its offers are declined at once, its call ends like a BYE."""
        if not phone.connected:
            return
        phone.connected = False
        phones = self._phones.get(phone.user_id, [])
        if phone in phones:
            phones.remove(phone)
        if not phones:
            self._phones.pop(phone.user_id, None)
            self.bus.publish("phone.offline", extension=None, user_id=phone.user_id,
                             device="browser", reason="disconnected")
        for offer in list(phone.offers.values()):
            self._declined(offer)
        if phone.leg is not None:
            phone.leg.gone()

    def is_online(self, user_id: int) -> bool:
        return bool(self._phones.get(user_id))

    def of(self, user_id: int) -> list[BrowserPhone]:
        return list(self._phones.get(user_id, ()))

    # -- offering a call -------------------------------------------------------------------
    async def make_offers(self, phones: list[BrowserPhone], ring_id: str,
                          call_id: str) -> list[BrowserOffer]:
        """A WebRTC leg with its SDP offer for each phone (concurrently); a phone whose
        offer cannot be made (or that went away meanwhile) is left out."""
        async def one(phone: BrowserPhone) -> BrowserOffer | None:
            try:
                rtc = self.gateway.open_leg(call_id=call_id)
            except RuntimeError as exc:  # the gateway is closed: shutting down
                log.info("%s: no WebRTC leg for browser %s: %s", call_id, phone.id, exc)
                return None
            try:
                sdp = await asyncio.wait_for(rtc.create_offer(), OFFER_TIMEOUT_S)
            except (WebRtcSignallingError, TimeoutError, OSError) as exc:
                log.warning("%s: no WebRTC offer for browser %s: %s", call_id, phone.id, exc)
                await rtc.close()
                return None
            if not phone.connected:
                await rtc.close()
                return None
            return BrowserOffer(phone=phone, ring_id=ring_id, rtc=rtc, sdp=sdp, call=call_id)

        made = await asyncio.gather(*(one(p) for p in phones))
        return [offer for offer in made if offer is not None]

    def ring(self, offer: BrowserOffer, info: RingInfo) -> None:
        """Send the offer (the callbacks are set): the browser rings (or answers by itself)."""
        offer.phone.offers[offer.ring_id] = offer

        def rtc_event(event: WebRtcLegEvent) -> None:
            if isinstance(event, WebRtcLegClosed) and offer.pending:
                self._declined(offer)

        offer.rtc.set_event_handler(rtc_event)
        offer.phone.send({"type": "ring", "ring": info.ring_id, "call": info.call_id,
                          "caller": info.caller, "project": info.project,
                          "contact": info.contact_id, "auto_answer": info.auto_answer,
                          "sdp": offer.sdp})

    def withdraw(self, offer: BrowserOffer) -> None:
        """Stop ringing there (another device answered, the call went away)."""
        if not offer.pending:
            return
        offer.pending = False
        offer.phone.offers.pop(offer.ring_id, None)
        offer.rtc.set_event_handler(None)
        if offer.phone.connected:
            offer.phone.send({"type": "ended", "ring": offer.ring_id})
        self._spawn(offer.rtc.close(), f"close offer {offer.ring_id}")

    def take(self, offer: BrowserOffer, spawn: Callable[[Coroutine[Any, Any, Any], str],
                                                         object]) -> BrowserLeg:
        """The answered offer as the operator's leg of the call."""
        offer.pending = False
        offer.phone.offers.pop(offer.ring_id, None)
        leg = BrowserLeg(phone=offer.phone, ring_id=offer.ring_id, rtc=offer.rtc, spawn=spawn,
                         call=offer.call)
        offer.phone.leg = leg

        def rtc_event(event: WebRtcLegEvent) -> None:
            if isinstance(event, WebRtcLegClosed):
                log.info("browser leg %s closed: %s", leg.ring_id, event.reason)
                leg.gone()

        offer.rtc.set_event_handler(rtc_event)
        return leg

    def _declined(self, offer: BrowserOffer) -> None:
        if not offer.pending:
            return
        self.withdraw(offer)
        offer.on_decline(offer)

    # -- what the browser says -------------------------------------------------------------
    def receive(self, phone: BrowserPhone, text: str | bytes) -> None:
        """One text frame from the browser; a bad one is answered with ``error``."""
        try:
            message = parse_message(text)
        except SignallingError as exc:
            phone.send(error_message(exc.code, str(exc)))
            return
        if isinstance(message, Ping):
            phone.send({"type": "pong"})
        elif isinstance(message, Answer):
            offer = phone.offers.get(message.ring)
            if offer is None or not offer.pending:
                phone.send(error_message("no_such_ring", message.ring))
                return
            self._spawn(self._answer(offer, message.sdp), f"answer {offer.ring_id}")
        elif isinstance(message, Decline | Hangup):
            self._refuse(phone, message)
        elif isinstance(message, Candidate):
            self._spawn(self._candidate(phone, message), f"candidate {message.ring}")
        elif isinstance(message, Dtmf):
            leg = phone.leg
            if leg is None:
                phone.send(error_message("no_call"))
            elif leg.on_dtmf is not None:
                leg.on_dtmf(leg, message.digits)
        elif isinstance(message, Hold):
            self._hold(phone, message)

    def _hold(self, phone: BrowserPhone, message: Hold) -> None:
        """Only the call talked on with this device; the browser hears how it went."""
        leg = phone.leg
        try:
            if leg is None or not leg.call or leg.call != message.call:
                raise HoldRefused("no_such_call",
                                  Text("softphone.error.no_such_call", call=message.call))
            if leg.on_hold_request is None:  # answered, not joined to the call yet
                raise HoldRefused("not_talking", Text("softphone.error.not_talking"))
            leg.on_hold_request(leg, message.on_hold)
        except HoldRefused as exc:
            phone.send(error_message(exc.code, exc.text.render(phone.language)))
            return
        phone.send({"type": "held", "call": leg.call, "on_hold": leg.on_hold})

    def _refuse(self, phone: BrowserPhone, message: Decline | Hangup) -> None:
        offers = [phone.offers[message.ring]] if message.ring in phone.offers else (
            list(phone.offers.values()) if message.ring is None else [])
        for offer in offers:
            self._declined(offer)
        leg = phone.leg
        if isinstance(message, Hangup) and leg is not None and message.ring in (
                None, leg.ring_id):
            leg.gone()
        elif not offers:
            phone.send(error_message("no_such_ring", message.ring or ""))

    async def _answer(self, offer: BrowserOffer, sdp: str) -> None:
        try:
            await offer.rtc.accept_answer(sdp)
        except WebRtcSignallingError as exc:
            if offer.pending:
                offer.phone.send(error_message("bad_answer", str(exc)))
                self._declined(offer)
            return
        if offer.pending and offer.phone.connected:
            offer.on_answer(offer)

    async def _candidate(self, phone: BrowserPhone, message: Candidate) -> None:
        offer = phone.offers.get(message.ring)
        rtc = offer.rtc if offer is not None else (
            phone.leg.rtc if phone.leg is not None and phone.leg.ring_id == message.ring
            else None)
        if rtc is None:
            phone.send(error_message("no_such_ring", message.ring))
            return
        try:
            await rtc.add_ice_candidate(message.candidate, sdp_mid=message.sdp_mid)
        except WebRtcSignallingError as exc:
            phone.send(error_message("bad_candidate", str(exc)))

    # -- owned tasks -------------------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=what)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("%s failed", what, exc_info=t.exception())

        task.add_done_callback(done)

    async def aclose(self) -> None:
        """Every socket is closing: forget the phones, wait for the legs being closed."""
        # disconnect() takes each phone out of these lists: walk a copy of them all.
        for phone in [p for phones in self._phones.values() for p in phones]:
            self.disconnect(phone)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        for task in list(self._tasks):
            task.cancel()

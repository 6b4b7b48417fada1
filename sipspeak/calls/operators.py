"""Offering a call to an operator and putting the one who answers on the line.

The dialer's :class:`~sipspeak.dialer.ports.OperatorRinger` port and the bridge step of its
:class:`~sipspeak.dialer.ports.CallControl`: :meth:`OperatorSide.ring` offers the call to
every device of one operator at once — an INVITE per registered SIP phone
(:func:`~sipspeak.calls.ringing.start_ring`) and a WebRTC offer per connected browser
(:class:`~sipspeak.calls.browser.BrowserPhones`) — and the first answer wins
(:class:`~sipspeak.calls.ringing.Ring`).  :meth:`OperatorSide.join_operator` puts the answered
leg, SIP or browser, in the bridge in place of the hold player; when that leg's far end
leaves (a BYE, the browser hanging up or going away) :meth:`OperatorSide.operator_gone` ends
the call as the operator's hang-up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sipspeak.crm.phones import shown_phone
from sipspeak.dialer.ports import (
    CallOutcome,
    OperatorAnswered,
    OperatorDeclined,
    OperatorEvent,
)
from sipspeak.i18n import Text
from sipspeak.media.endpoint import RtpEndpoint
from sipspeak.media.listen import Listener
from sipspeak.media.player import play_dtmf
from sipspeak.media.portpool import PortPoolExhausted
from sipspeak.sip.session import InviteSession
from sipspeak.storage import NotFound

from .amd_tap import fan
from .browser import BrowserLeg, BrowserOffer, HoldRefused, RingInfo
from .call import Call, Listening
from .core import CallCore
from .legs import MediaOffer, SipLeg
from .ringing import Ring, start_ring

__all__ = ["ListenRefused", "OperatorSide"]


class ListenRefused(ValueError):
    """A call nobody may listen to now: a catalogue :class:`Text`."""

log = logging.getLogger("sipspeak.calls.service")


def _is(leg: object, what: SipLeg | BrowserLeg | InviteSession) -> bool:
    """``leg`` is ``what``, or the SIP leg of session ``what``."""
    return leg is what or (isinstance(leg, SipLeg) and leg.session is what)


class OperatorSide(CallCore):
    """See the module docstring."""

    # -- OperatorRinger ------------------------------------------------------------------------
    def ring_operator(self, ring_id: str, operator_id: int, call_id: str, *,
                      auto_answer: bool) -> None:
        call = self.calls.get(call_id)
        if call is None or not call.state.live:
            return
        self.starting_rings[ring_id] = False  # from now on stop_ringing can withdraw it
        self.spawn(self.ring(call, ring_id, operator_id, auto_answer=auto_answer),
                   f"ring {ring_id}")

    def stop_ringing(self, ring_id: str) -> None:
        if ring_id in self.starting_rings:
            self.starting_rings[ring_id] = True  # withdrawn before it rang: it never will
            return
        ring = self.rings.get(ring_id)
        if ring is None:
            return
        call = self.calls.get(ring.call_id)
        if call is not None and call.operator is ring.leg and ring.leg is not None:
            return  # already bridged: that leg belongs to the call now
        ring.stop(self.loop.time())
        self._drop_ring(ring)

    def start_hold_music(self, call_id: str) -> None:
        call = self.calls.get(call_id)
        if call is not None and call.player is not None and call.operator is None:
            call.player.start()

    def operator_online(self, operator_id: int, extension: str | None, now: float) -> bool:
        """A registered SIP phone or a connected browser softphone."""
        return bool(extension and self.phones.is_online(extension, now)) or bool(
            self.browsers is not None and self.browsers.is_online(operator_id))

    async def ring(self, call: Call, ring_id: str, operator_id: int, *, auto_answer: bool,
                   timeout_s: float | None = None,
                   hook: Callable[[Ring, OperatorEvent], None] | None = None,
                   listen: bool = False) -> Ring | None:
        self.starting_rings.setdefault(ring_id, False)
        try:
            return await self._ring(call, ring_id, operator_id, auto_answer=auto_answer,
                                    timeout_s=timeout_s, hook=hook, listen=listen)
        finally:
            self.starting_rings.pop(ring_id, None)

    async def _ring(self, call: Call, ring_id: str, operator_id: int, *, auto_answer: bool,
                    timeout_s: float | None,
                    hook: Callable[[Ring, OperatorEvent], None] | None,
                    listen: bool) -> Ring | None:
        try:
            user = await self.db.users.get(operator_id)
            extension, role = user.extension or "", user.role
        except NotFound:
            extension, role = "", "operator"  # a removed operator: declined below
        targets = self.phones.targets(extension, self.loop.time()) if extension else []
        phones = self.browsers.of(operator_id) if self.browsers is not None else []
        project, show_numbers = await self._project_of(call)
        endpoint: RtpEndpoint | None = None
        sdp: MediaOffer | None = None
        offers: list[BrowserOffer] = []
        try:
            if targets or not phones:
                endpoint, sdp = await self.open_media(call, "operator")
            if phones and self.browsers is not None:
                offers = await self.browsers.make_offers(phones, ring_id, call.id)
        except (PortPoolExhausted, OSError) as exc:
            call.log.error("no RTP port to ring operator %s: %s", operator_id, exc)
            declined = OperatorDeclined(ring_id, operator_id, self.clock())
            if hook is None and self._on_operator is not None:
                self._on_operator(declined)
            elif hook is not None:
                self.loop.call_soon(hook, Ring(
                    ring_id=ring_id, operator_id=operator_id, call_id=call.id,
                    endpoint=None, sdp=None, on_result=self._ring_result, now_ms=self.clock,
                    done=True), declined)
            return None

        taken = call.operator is not None and hook is not None and not listen
        if self.starting_rings.get(ring_id) or taken:
            # Withdrawn while its media and offers were being made (the queue gave the call
            # to another operator, or ring-all's caller was already taken): ring nobody.
            if endpoint is not None:
                endpoint.close("ring withdrawn")
            for offer in offers:
                self.spawn(offer.rtc.close(), f"close offer {ring_id}")
            if hook is not None:
                self.loop.call_soon(hook, Ring(
                    ring_id=ring_id, operator_id=operator_id, call_id=call.id,
                    endpoint=None, sdp=None, on_result=self._ring_result, now_ms=self.clock,
                    done=True), OperatorDeclined(ring_id, operator_id, self.clock()))
            return None
        ring = Ring(ring_id=ring_id, operator_id=operator_id, call_id=call.id,
                    endpoint=endpoint, sdp=sdp, on_result=self._ring_result, now_ms=self.clock,
                    browsers=self.browsers, spawn=self.spawn, loop_time=self.loop.time)
        self.rings[ring_id] = ring
        call.ring_ids.add(ring_id)
        call.operators_offered = True
        if hook is not None:
            self._ring_hooks[ring_id] = hook
        if not call.state.live or not (targets or offers):
            for offer in offers:
                self.spawn(offer.rtc.close(), f"close offer {ring_id}")
            self.loop.call_soon(ring._maybe_declined)
            return ring
        # «Показывать номера» off: his phone's display and his browser show it masked.
        caller = shown_phone(call.phone, show_numbers=show_numbers, role=role)
        info = RingInfo(ring_id=ring_id, call_id=call.id, caller=caller, project=project,
                        contact_id=call.contact_id, auto_answer=auto_answer)
        start_ring(ring, self.ua, targets, extension=extension,
                   caller=caller, local_host=self.public_host, auto_answer=auto_answer,
                   now=self.loop.time())
        for fork in ring.forks:
            self._forks[fork] = ring
        for offer in offers:  # at the same moment as the INVITEs
            if offer.phone.connected and self.browsers is not None:
                ring.add_offer(offer)
                self.browsers.ring(offer, info)
            else:
                self.spawn(offer.rtc.close(), f"close offer {ring_id}")
        if not ring.forks and not ring.offers:  # every browser went away meanwhile
            self.loop.call_soon(ring._maybe_declined)
        if not ring.done:
            ring.timer = self.loop.call_later(timeout_s or call.operator_timeout_s,
                                              lambda: ring.timed_out(self.loop.time()))
            # His workspace pops the caller's card up now, not at its next refresh.
            self.bus.publish("call.offered", call_id=call.id, ring_id=ring_id,
                             user_id=operator_id, contact_id=call.contact_id, at=self.clock())
        return ring

    async def _project_of(self, call: Call) -> tuple[str, bool]:
        """The call's project name and its «Показывать номера» for the browser's ring."""
        if call.project_id is None:
            return "", True
        try:
            project = await self.db.projects.get(call.project_id, include_deleted=True)
        except NotFound:
            return "", False  # a project gone: hide the number rather than show it
        return project.name, project.show_numbers

    def _ring_result(self, ring: Ring, event: OperatorEvent) -> None:
        hook = self._ring_hooks.pop(ring.ring_id, None)
        if not isinstance(event, OperatorAnswered):
            self._drop_ring(ring)
        else:
            call = self.calls.get(ring.call_id)
            if ring.leg is not None and call is not None:
                self.track_leg(ring.leg, call, "ring")
            if isinstance(ring.leg, BrowserLeg) and ring.endpoint is not None:
                ring.endpoint.close("a browser answered")  # the phones' media is not needed
                ring.endpoint = None
        if hook is not None:
            hook(ring, event)
        elif self._on_operator is not None:
            try:
                self._on_operator(event)
            except Exception:
                log.exception("dialer operator listener failed")

    # -- a supervisor listening in ------------------------------------------------------------
    async def listen(self, call_id: str, user_id: int) -> None:
        """Ring ``user_id``'s phone or browser (auto-answer); once he answers he hears the
        customer and the operator mixed, and neither hears him.  Until he hangs up or the
        call ends.  :class:`ListenRefused` when the call is not a conversation now or someone
        already listens."""
        call = self.calls.get(call_id)
        if (call is None or not call.state.live or call.operator is None
                or call.bridge is None):
            raise ListenRefused(Text("calls.error.not_talking"))
        if call.listening is not None:
            raise ListenRefused(Text("calls.error.listened"))
        ring_id = f"{call.id}-listen-{user_id}"
        call.listening = Listening(ring_id=ring_id, user_id=user_id)

        def answered(ring: Ring, event: OperatorEvent) -> None:
            listening = call.listening
            if listening is None or listening.ring_id != ring.ring_id:
                return
            if not isinstance(event, OperatorAnswered) or ring.leg is None:
                call.listening = None  # he did not take it: someone else may listen
                return
            bridge = call.bridge
            if not call.state.live or bridge is None or call.operator is None:
                self.stop_listening(call, hang_up=True)
                return
            listener = Listener(ring.leg.media_leg)
            listening.listener = listener
            for side in ("customer", "operator"):
                listening.taps[side] = bridge.tap_of(side)
                bridge.set_tap(side, fan(listening.taps[side], listener.tap(side)))
            listener.start()
            call.log.info("user %s listens in", listening.user_id)
            self._publish("call.listening", call, listener_id=listening.user_id)

        await self.ring(call, ring_id, user_id, auto_answer=True, hook=answered, listen=True)
        if call.listening is not None and call.listening.ring_id == ring_id \
                and ring_id not in self.rings and call.listening.listener is None:
            call.listening = None  # the ring could not even start

    def stop_listening(self, call: Call, *, hang_up: bool) -> None:
        """The listener's leg goes (hung up when ``hang_up``), his taps are taken off."""
        listening, call.listening = call.listening, None
        if listening is None:
            return
        self._unhook_listener(call, listening)
        ring = self.rings.get(listening.ring_id)
        if ring is not None:
            leg = ring.leg
            if hang_up and leg is not None:
                leg.hangup(self.loop.time())
            ring.leg = None
            ring.stop(self.loop.time())
            self._drop_ring(ring)

    def _unhook_listener(self, call: Call, listening: Listening) -> None:
        if listening.listener is None:
            return
        self.spawn(listening.listener.stop(), f"listener off {call.id}")
        if call.bridge is not None:
            for side, tap in listening.taps.items():
                call.bridge.set_tap(side, tap)  # type: ignore[arg-type]
        self._publish("call.listening_ended", call, listener_id=listening.user_id)

    def _drop_ring(self, ring: Ring) -> None:
        call = self.calls.get(ring.call_id)
        if (call is not None and call.listening is not None
                and call.listening.ring_id == ring.ring_id):
            # The listener's ring goes (he hung up, or the call ended): so does his listening.
            listening, call.listening = call.listening, None
            self._unhook_listener(call, listening)
        if self.rings.pop(ring.ring_id, None) is not None:
            self.bus.publish("call.offer_ended", call_id=ring.call_id, ring_id=ring.ring_id,
                             user_id=ring.operator_id, at=self.clock())
        leg = ring.leg
        if isinstance(leg, SipLeg) and self._legs.get(leg.session, (None, ""))[1] == "ring":
            del self._legs[leg.session]
        self._ring_hooks.pop(ring.ring_id, None)
        for fork in list(self._forks):
            if self._forks[fork] is ring:
                del self._forks[fork]
        call = self.calls.get(ring.call_id)
        if call is not None:
            call.ring_ids.discard(ring.ring_id)
        operator = call.operator if call is not None else None
        if ring.endpoint is not None and not (
                isinstance(operator, SipLeg) and operator.endpoint is ring.endpoint):
            ring.endpoint.close("ring over")

    # -- the operator on the line ------------------------------------------------------------
    def bridge(self, call_id: str, operator_id: int) -> None:
        call = self.calls.get(call_id)
        if call is None or not call.state.live:
            log.info("bridge: call %s is gone", call_id)
            return
        for ring_id in list(call.ring_ids):
            ring = self.rings.get(ring_id)
            if ring is not None and ring.operator_id == operator_id and ring.leg is not None:
                self.join_operator(call, ring)
                return
        call.log.warning("bridge: operator %s has no answered leg", operator_id)

    def join_operator(self, call: Call, ring: Ring) -> None:
        """Put the operator's answered leg in place of the hold player."""
        leg = ring.leg
        if leg is None or call.bridge is None:
            return
        call.operator = leg
        call.operator_id = ring.operator_id
        self.track_leg(leg, call, "operator")
        call.bridge.replace("operator", leg.media_leg)
        if call.player is not None:
            self.spawn(call.player.stop(), f"hold music off {call.id}")
        for other in list(call.ring_ids):
            if other != ring.ring_id and other in self.rings:
                self.stop_ringing(other)
        self._operator_on(call, self.clock())

    def _operator_on(self, call: Call, now: int) -> None:
        call.state.bridge(now)
        call.log.info("bridged with operator %s", call.operator_id)
        self._publish("call.bridged", call)
        if call.cdr_id is not None:
            self.spawn(self.db.calls.update(call.cdr_id, operator_id=call.operator_id,
                                            bridged_at=call.state.bridged_ms),
                       f"cdr bridged {call.id}")

    def operator_gone(self, call: Call, leg: SipLeg | BrowserLeg | InviteSession) -> None:
        """The far end of an operator leg left (BYE, a browser's hang-up or departure)."""
        if call.operator is not None and _is(call.operator, leg):
            if call.state.bridged_ms is not None:
                self.end(call, call.state.hung_up(self.clock()))
            else:
                self.operator_left_early(call)
        # A ring leg that answered and then hung up before the bridge: forget it.
        for ring_id in list(call.ring_ids):
            ring = self.rings.get(ring_id)
            if ring is not None and ring.leg is not None and _is(ring.leg, leg):
                ring.leg = None
                self._drop_ring(ring)

    def operator_left_early(self, call: Call) -> None:
        """The operator's own leg ended before the customer answered (manual, click)."""
        if call.customer is not None:
            call.customer.session.hangup(self.loop.time())
        else:
            self.end(call, CallOutcome.NO_ANSWER)

    def operator_hold(self, call: Call, leg: BrowserLeg, on_hold: bool) -> None:
        """His browser holds the call or resumes it: what his desk phone's re-INVITE does
        (:meth:`~sipspeak.calls.core.CallCore.hold_switched`).  Only while that leg is the
        call's operator and the call a live conversation; asking for what already is
        changes nothing."""
        if (call.operator is not leg or not call.state.live or call.bridge is None
                or call.state.bridged_ms is None):
            raise HoldRefused("not_talking", Text("softphone.error.not_talking"))
        if leg.on_hold == on_hold:
            return
        leg.on_hold = on_hold
        call.log.info("the operator's browser %s the call", "holds" if on_hold else "resumes")
        self.hold_switched(call, leg)

    def operator_dtmf(self, call: Call, digits: str) -> None:
        """Keys pressed in the browser: on the bus, and to the customer as RFC 4733 events."""
        self._publish("call.dtmf", call, side="operator", digit=digits, duration_ms=100)
        customer = call.customer
        if call.bridge is not None and customer is not None and \
                customer.endpoint.dtmf_payload_type is not None:
            self.spawn(play_dtmf(call.bridge, "customer", digits), f"dtmf {call.id}")

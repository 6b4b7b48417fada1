"""How calls enter: INVITEs from trunks and operators' phones, and click-to-call.

* An INVITE from a trunk (its provider's address, or another address of the provider's host
  name calling the trunk's account; the request user picks among trunks on one provider;
  see ``TrunkDirectory.match_inbound``) is answered and goes to the queue of the trunk's project (manual §4.4.2):
  ``call.inbound`` is published for the dialer's ACD; with no ACD attached the project's
  operators are rung all at once, so the path works on its own.
* An INVITE from an operator's phone (its From user is an operator's extension) is
  challenged with 407 (RFC 3261 §22.3) and, once authenticated, is his manual call: it goes
  out through *his* trunk (``users.trunk_id``) with early media passed back to him.
* Anything else gets 403: no open relay, no toll fraud.
* ``click_to_call``: the operator's phone or browser softphone rings first (auto-answer
  asked), then the customer is dialled through the operator's trunk and bridged from the
  first ringback.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sipspeak.dialer.ports import CallOutcome, OperatorAnswered, OperatorEvent
from sipspeak.i18n import Text
from sipspeak.sip import session as sip
from sipspeak.sip.errors import NotAcceptableHere
from sipspeak.sip.message import SipResponse
from sipspeak.sip.session import InviteSession, SessionState
from sipspeak.sip.uri import SipUri
from sipspeak.storage import NotFound
from sipspeak.storage.models import Trunk, User

from .call import Call
from .contacts import inbound_contact, manual_call_contact
from .legs import SipLeg
from .ringing import Ring
from .service import CallService

__all__ = ["CallCenter", "ClickToCallError"]

log = logging.getLogger(__name__)
DEFAULT_DIAL_TIMEOUT_MS = 60_000


class ClickToCallError(ValueError):
    """A click-to-call request that cannot be placed; its argument is a catalogue
    :class:`~sipspeak.i18n.Text` (the API answers 422 with it in the reader's language)."""


def _user_part(uri: object) -> str:
    return (uri.user_unescaped or "") if isinstance(uri, SipUri) else ""


class CallCenter(CallService):
    """:class:`CallService` plus the ways calls enter (see the module docstring)."""

    # -- inbound INVITEs --------------------------------------------------------------------
    def incoming(self, event: sip.IncomingCall) -> None:
        if self.closing:
            event.session.reject(503, self.loop.time())
            return
        self.spawn(self._incoming(event.session, event), f"incoming {event.session.call_id}")

    async def _incoming(self, session: InviteSession, event: sip.IncomingCall) -> None:
        request = event.request
        trunk = await self.trunks.match_inbound(session.peer, _user_part(request.uri))
        if trunk is not None:
            await self._from_trunk(session, event, trunk)
            return
        extension = _user_part(request.from_.uri)
        operator = await self.phones.operator(extension) if extension else None
        if operator is None:
            log.warning("%s: INVITE from %s (%s) is neither a trunk nor an operator: 403",
                        session.call_id, session.peer.host, extension or "-")
            session.reject(403, self.loop.time())
            return
        verdict = await self.phones.authenticate_invite(request, session.peer, self.loop.time())
        if isinstance(verdict, SipResponse):
            session.reject(verdict.status, self.loop.time(), headers=list(verdict.headers))
            return
        await self._manual_call(session, event, verdict)

    async def _answer_leg(self, call: Call, session: InviteSession, request: Any,
                          role: str) -> SipLeg | None:
        endpoint, sdp = await self.open_media(call, role)
        leg = SipLeg(session=session, endpoint=endpoint, sdp=sdp, role=role)
        try:
            leg.answer_offer(request.headers.get("Content-Type"), request.body)
        except NotAcceptableHere:
            session.reject(488, self.loop.time())
            endpoint.close("no common codec")
            return None
        if session.state is SessionState.TERMINATED:  # CANCELled meanwhile
            endpoint.close("cancelled")
            return None
        return leg

    async def _from_trunk(self, session: InviteSession, event: sip.IncomingCall,
                          trunk: Trunk) -> None:
        request = event.request
        if trunk.inbound_project_id is None:
            log.info("%s: trunk %s has no inbound queue: 480", session.call_id, trunk.name)
            session.reject(480, self.loop.time())
            return
        project = await self.db.projects.get(trunk.inbound_project_id)
        phone = _user_part(request.from_.uri)
        contact_id = await inbound_contact(self.db, project.id, phone)  # his card pops up
        call = self.new_call(kind="inbound", direction="inbound", project_id=project.id,
                             trunk_id=trunk.id, phone=phone, caller_id=phone,
                             contact_id=contact_id,
                             abandon_message=await self.abandon_message_of(project),
                             dialer=self.acd_attached, music_on_hold=project.music_on_hold,
                             auto_answer=project.operator_auto_answer,
                             operator_timeout_s=project.operator_timeout_s)
        if project.global_timeout_enabled:
            call.state.global_timeout_ms = project.global_timeout_s * 1000
        leg = await self._answer_leg(call, session, request, "customer")
        if leg is None:
            self.calls.pop(call.id, None)
            return
        call.customer = leg
        self.track(session, call, "customer")
        await self.open_cdr(call, to_number=_user_part(request.uri) or trunk.username,
                            from_number=phone)
        if session.state is SessionState.TERMINATED:
            self.end(call, CallOutcome.LOST, reason="caller left before the answer")
            return
        session.answer(leg.local_sdp, self.loop.time())
        self.customer_answered(call)
        self.arm(call)
        self._publish("call.inbound", call, trunk_id=trunk.id)
        if call.music_on_hold and call.player is not None:
            call.player.start()
        if not self.acd_attached:
            await self.ring_all(call, timeout_s=project.queue_timeout_s or 60)

    async def ring_all(self, call: Call, *, timeout_s: float) -> None:
        """Ring every online operator of the call's project; the first to answer is bridged."""
        assert call.project_id is not None
        now = self.loop.time()
        operators: list[User] = []
        for user_id in await self.db.projects.operator_ids(call.project_id):
            try:
                user = await self.db.users.get(user_id)
            except NotFound:
                continue
            if self.operator_online(user.id, user.extension, now):
                operators.append(user)
        pending = {f"{call.id}-all-{u.id}" for u in operators}
        if not pending:
            call.log.info("no operator of project %s is online", call.project_id)
            self._nobody_took(call, "no operator online")
            return

        def result(ring: Ring, ev: OperatorEvent) -> None:
            pending.discard(ring.ring_id)
            if isinstance(ev, OperatorAnswered) and call.state.live and call.operator is None:
                self.join_operator(call, ring)
            elif isinstance(ev, OperatorAnswered):
                self.stop_ringing(ring.ring_id)
            elif not pending and call.operator is None:
                self._nobody_took(call, "no operator answered")

        # All at once: a browser's offer takes a moment to make, the others need not wait.
        outcomes = await asyncio.gather(
            *(self.ring(call, f"{call.id}-all-{user.id}", user.id, auto_answer=call.auto_answer,
                        timeout_s=timeout_s, hook=result) for user in operators),
            return_exceptions=True)
        failed = False
        for user, outcome in zip(operators, outcomes, strict=True):
            if isinstance(outcome, BaseException):  # that ring never started: not waited for
                call.log.error("ringing operator %s failed: %r", user.id, outcome)
                pending.discard(f"{call.id}-all-{user.id}")
                failed = True
        if failed and not pending and call.operator is None and call.state.live:
            self._nobody_took(call, "no operator could be rung")

    def _nobody_took(self, call: Call, reason: str) -> None:
        """Ring-all found nobody: the project's message to the caller, or the release now."""
        if call.abandon_message is not None:
            call.log.info("%s", reason)
            self.abandon(call.id)
        else:
            self.end(call, CallOutcome.ABANDONED, reason=reason)

    # -- an operator's manual call ------------------------------------------------------------
    async def _manual_call(self, session: InviteSession, event: sip.IncomingCall,
                           operator: User) -> None:
        request = event.request
        number = _user_part(request.uri)
        if not number or operator.trunk_id is None:
            log.info("%s: operator %s has no trunk or dialled nothing: 403",
                     session.call_id, operator.id)
            session.reject(403, self.loop.time())
            return
        # His card pops up as for any call: the contact of the number in his projects.
        linked = await manual_call_contact(self.db, operator.id, number)
        project = None
        if linked is not None:
            try:
                project = await self.db.projects.get(linked[0])
            except NotFound:  # deleted meanwhile
                linked = None
        call = self.new_call(kind="manual", direction="outbound", operator_id=operator.id,
                             trunk_id=operator.trunk_id, phone=number,
                             project_id=None if project is None else project.id,
                             contact_id=None if linked is None else linked[1],
                             caller_id=project.caller_id if project else "",
                             music_on_hold=project.music_on_hold if project else True)
        call.state.dial_timeout_ms = (project.dial_timeout_s * 1000 if project
                                      and project.dial_timeout_s else DEFAULT_DIAL_TIMEOUT_MS)
        leg = await self._answer_leg(call, session, request, "operator")
        if leg is None:
            self.calls.pop(call.id, None)
            return
        call.operator = leg
        self.track(session, call, "operator")
        session.ring(self.loop.time(), 183, leg.local_sdp)  # early media from the customer
        await self.dial(call)

    def customer_answered(self, call: Call) -> None:
        operator = call.operator
        if (call.kind == "manual" and isinstance(operator, SipLeg)
                and operator.session.state is SessionState.EARLY):
            operator.session.answer(operator.local_sdp, self.loop.time())
        super().customer_answered(call)

    # -- click-to-call ---------------------------------------------------------------------------
    async def click_to_call(self, *, operator_id: int, phone: str | None = None,
                            contact_id: int | None = None) -> Call:
        """Ring the operator, then dial ``phone`` (or the contact's) through his trunk."""
        try:
            operator = await self.db.users.get(operator_id)
        except NotFound:
            raise ClickToCallError(Text("calls.error.no_operator", id=operator_id)) from None
        reachable = operator.extension or (
            self.browsers is not None and self.browsers.is_online(operator.id))
        if not reachable or operator.trunk_id is None:
            raise ClickToCallError(Text("calls.error.operator_unrouted"))
        project = None
        if contact_id is not None:
            try:
                contact = await self.db.contacts.get(contact_id)
            except NotFound:
                raise ClickToCallError(Text("calls.error.no_contact", id=contact_id)) from None
            phone = contact.phone
            project = await self.db.projects.get(contact.project_id)
        number = (phone or "").strip().lstrip("+")
        if not number.isdigit():
            raise ClickToCallError(Text("calls.error.phone_digits"))
        call = self.new_call(kind="click", direction="outbound", operator_id=operator.id,
                             trunk_id=operator.trunk_id, contact_id=contact_id, phone=number,
                             project_id=project.id if project else None,
                             caller_id=project.caller_id if project else "",
                             music_on_hold=project.music_on_hold if project else True)
        call.state.dial_timeout_ms = (project.dial_timeout_s * 1000 if project
                                      and project.dial_timeout_s else DEFAULT_DIAL_TIMEOUT_MS)
        if project is not None and project.global_timeout_enabled:
            call.state.global_timeout_ms = project.global_timeout_s * 1000
        call.operators_offered = True

        def result(ring: Ring, ev: OperatorEvent) -> None:
            if isinstance(ev, OperatorAnswered) and call.state.live and ring.leg is not None:
                call.operator = ring.leg
                self.track_leg(ring.leg, call, "operator")
                self.spawn(self.dial(call), f"dial {call.id}")
            elif isinstance(ev, OperatorAnswered):
                self.stop_ringing(ring.ring_id)
            else:
                self.end(call, CallOutcome.NO_ANSWER, reason="the operator did not answer")

        self.spawn(self.ring(call, f"{call.id}-op", operator.id, auto_answer=True,
                             timeout_s=call.operator_timeout_s, hook=result),
                   f"click {call.id}")
        return call

    def snapshot(self, call: Call) -> dict[str, Any]:
        """What ``GET /api/v1/calls/{id}`` shows while the call lives."""
        return {"id": call.id, "cdr_id": call.cdr_id, "state": call.state.phase.value,
                "kind": call.kind, "direction": call.direction, "phone": call.phone,
                "operator_id": call.operator_id, "project_id": call.project_id,
                "sip_call_id": call.sip_call_id, "started_at": call.state.started_ms,
                "answered_at": call.state.answered_ms, "bridged_at": call.state.bridged_ms}

"""Call control: the asyncio service where SIP legs and the media engine meet.

``CallService`` implements the dialer's ports (:class:`~sipspeak.dialer.ports.CallControl`
and :class:`~sipspeak.dialer.ports.OperatorRinger`): ``originate`` places a customer call
through the project's trunk (digest auth on 401/407, the project's caller ID, our SDP),
``ring_operator`` forks an offer to an operator's phones, ``bridge`` joins the answered
operator to the customer through :class:`~sipspeak.media.bridge.Bridge`, ``hang_up`` ends
it.  The dialer hears back through :meth:`CallService.attach_dialer`; every step is also
published on the bus (``call.ringing``, ``call.answered``, ``call.amd``, ``call.bridged``,
``call.dtmf``, ``call.hold`` with the holding ``side``, ``call.ended``, ``call.inbound``).

Per call: a :class:`~sipspeak.calls.state.CallState` (sans-IO, ms) holds phases and
deadlines, one ``call_at`` is armed from its ``get_timer()``; a CDR row is opened when the
call starts and completed when it ends; the conversation is recorded as stereo WAV
(customer left, operator right).  Inbound INVITEs, operators' manual calls and
click-to-call live in :mod:`sipspeak.calls.entry`, which extends this class.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import numpy as np

from sipspeak.dialer.ports import (
    AmdResult,
    AmdVerdict,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallOutcome,
    CallRinging,
    DialContact,
    OperatorAnswered,
    OperatorDeclined,
    OperatorEvent,
    ProjectDialSettings,
)
from sipspeak.events import EventBus
from sipspeak.media.amd.detector import AmdResult as DetectorResult
from sipspeak.media.bridge import Bridge
from sipspeak.media.dtmf import DtmfDigit
from sipspeak.media.endpoint import RtpEndpoint, open_endpoint
from sipspeak.media.player import Player
from sipspeak.media.portpool import PortPool, PortPoolExhausted
from sipspeak.media.recorder import WavRecorder
from sipspeak.media.rtp import Codec
from sipspeak.sip import session as sip
from sipspeak.sip.headers import NameAddr
from sipspeak.sip.session import InviteSession, SessionState
from sipspeak.sip.uri import SipUri
from sipspeak.sip.useragent import UserAgent
from sipspeak.storage import Database, NotFound, now_ms

from .amd_tap import AmdTap, amd_params, fan, verdict_of
from .call import Call, CallLog
from .cdr import Tariff, completion_columns
from .hold import hold_changed, media_silence_expected
from .legs import MediaOffer, SipLeg
from .phones import PhoneDirectory
from .ringing import Ring, start_ring
from .state import CallState, Due
from .trunks import TrunkDirectory

__all__ = ["CallService", "failure_status"]

log = logging.getLogger(__name__)

CallListener = Callable[[CallEvent], None]
OperatorListener = Callable[[OperatorEvent], None]


def failure_status(outcome: CallOutcome, code: int | None) -> int:
    """The status to pass on to an operator's phone when his outgoing call failed."""
    if code is not None:
        return code
    return {CallOutcome.BUSY: 486, CallOutcome.NO_ANSWER: 480,
            CallOutcome.CONGESTION: 503}.get(outcome, 487)


class CallService:
    """See the module docstring."""

    def __init__(self, *, db: Database, bus: EventBus, ua: UserAgent, pool: PortPool,
                 trunks: TrunkDirectory, phones: PhoneDirectory, recordings_dir: Path,
                 media_host: str, public_host: str, inactivity_timeout: float = 30.0,
                 clock: Callable[[], int] = now_ms) -> None:
        self.db = db
        self.bus = bus
        self.ua = ua
        self.pool = pool
        self.trunks = trunks
        self.phones = phones
        self.recordings_dir = recordings_dir
        self.media_host = media_host
        self.public_host = public_host
        self.inactivity_timeout = inactivity_timeout
        self.clock = clock
        self.loop = asyncio.get_running_loop()
        self.calls: dict[str, Call] = {}
        self.rings: dict[str, Ring] = {}
        self.finished: dict[str, int] = {}  # call id -> CDR id, for calls that ended
        self._legs: dict[InviteSession, tuple[Call, str]] = {}
        self._forks: dict[InviteSession, Ring] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ids = itertools.count(1)
        self._on_call: CallListener | None = None
        self._on_operator: OperatorListener | None = None
        self._ring_hooks: dict[str, Callable[[Ring, OperatorEvent], None]] = {}
        self.closing = False

    # -- plumbing --------------------------------------------------------------------------
    def attach_dialer(self, on_call: CallListener | None,
                      on_operator: OperatorListener | None) -> None:
        """The dialer's listeners; with them attached its ACD takes inbound calls too."""
        self._on_call = on_call
        self._on_operator = on_operator

    @property
    def acd_attached(self) -> bool:
        return self._on_operator is not None

    def spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
        """An owned task: kept until done, cancelled by :meth:`aclose`, errors logged."""
        task = self.loop.create_task(coro, name=what)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("%s failed", what, exc_info=t.exception())

        task.add_done_callback(done)
        return task

    def new_call(self, *, kind: str, direction: str, **values: Any) -> Call:
        call_id = f"c{next(self._ids)}-{secrets.token_hex(4)}"
        call = Call(id=call_id, kind=kind, direction=direction,
                    state=CallState(started_ms=self.clock()),
                    log=CallLog(log, {"call": call_id}), **values)
        self.calls[call_id] = call
        return call

    def get(self, call_id: str) -> Call | None:
        return self.calls.get(call_id)

    def _publish(self, topic: str, call: Call, **data: Any) -> None:
        self.bus.publish(topic, call_id=call.id, cdr_id=call.cdr_id, project_id=call.project_id,
                         operator_id=call.operator_id, contact_id=call.contact_id,
                         phone=call.phone, direction=call.direction, kind=call.kind,
                         at=self.clock(), **data)

    def _to_dialer(self, call: Call, event: CallEvent) -> None:
        if call.dialer and self._on_call is not None:
            try:
                self._on_call(event)
            except Exception:
                call.log.exception("dialer listener failed on %s", type(event).__name__)

    async def open_media(self, call: Call, role: str) -> tuple[RtpEndpoint, MediaOffer]:
        def inactive(_: RtpEndpoint) -> None:
            self._media_timeout(call, role)

        def dtmf(digit: DtmfDigit) -> None:
            self._publish("call.dtmf", call, side=role, digit=digit.digit,
                          duration_ms=digit.duration_ms)

        endpoint = await open_endpoint(pool=self.pool, codec="PCMU", host=self.media_host,
                                       name=f"{call.id}-{role}",
                                       inactivity_timeout=self.inactivity_timeout,
                                       on_inactive=inactive, on_dtmf=dtmf)
        return endpoint, MediaOffer(address=self.public_host, port=endpoint.local_port)

    def track(self, session: InviteSession, call: Call, role: str) -> None:
        self._legs[session] = (call, role)

    # -- CallControl ------------------------------------------------------------------------
    def originate(self, contact: DialContact, settings: ProjectDialSettings) -> str:
        call = self.new_call(kind="auto", direction="outbound", dialer=True,
                             project_id=settings.project_id, trunk_id=settings.trunk_id,
                             contact_id=contact.contact_id, phone=contact.phone,
                             caller_id=settings.caller_id, amd_enabled=settings.amd_enabled)
        call.state.dial_timeout_ms = settings.dial_timeout_ms
        call.state.global_timeout_ms = settings.global_timeout_ms
        self.spawn(self._originate(call), f"originate {call.id}")
        return call.id

    async def _originate(self, call: Call) -> None:
        try:
            await self._originate_project(call)
        except Exception:
            call.log.exception("originate failed")
            if call.cdr_id is None:
                await self.open_cdr(call, to_number=call.phone)
            self.end(call, CallOutcome.FAILED, 500, reason="internal error")

    async def _originate_project(self, call: Call) -> None:
        if call.project_id is not None:
            project = await self.db.projects.get(call.project_id)
            call.amd_params = project.amd_params
            call.music_on_hold = project.music_on_hold
            call.auto_answer = project.operator_auto_answer
            call.operator_timeout_s = project.operator_timeout_s
            if project.robot:
                call.kind = "robot"
        await self.dial(call)

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

    def hang_up(self, call_id: str) -> None:
        call = self.calls.get(call_id)
        if call is None or not call.state.live:
            return
        call.hang_up_requested = True
        leg = call.customer
        if leg is None:
            self.end(call, CallOutcome.NO_ANSWER)  # not dialled yet: it never will be
            return
        if leg.session.state is SessionState.CONFIRMED:
            # The dialer hangs up a machine from inside its AmdResult listener: that verdict
            # is the outcome, not the release.
            machine = (call.amd_result or "").startswith(AmdVerdict.MACHINE.value)
            self.end(call, call.state.released(self.clock(), machine=machine))
        else:
            leg.session.hangup(self.loop.time())  # CANCEL: the 487 ends the call

    # -- OperatorRinger ------------------------------------------------------------------------
    def ring_operator(self, ring_id: str, operator_id: int, call_id: str, *,
                      auto_answer: bool) -> None:
        call = self.calls.get(call_id)
        if call is None or not call.state.live:
            return
        self.spawn(self.ring(call, ring_id, operator_id, auto_answer=auto_answer),
                   f"ring {ring_id}")

    def stop_ringing(self, ring_id: str) -> None:
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

    async def ring(self, call: Call, ring_id: str, operator_id: int, *, auto_answer: bool,
                   timeout_s: float | None = None,
                   hook: Callable[[Ring, OperatorEvent], None] | None = None) -> Ring | None:
        try:
            extension = (await self.db.users.get(operator_id)).extension or ""
        except NotFound:
            extension = ""  # a removed operator: declined below
        try:
            endpoint, sdp = await self.open_media(call, "operator")
        except (PortPoolExhausted, OSError) as exc:
            call.log.error("no RTP port to ring operator %s: %s", operator_id, exc)
            declined = OperatorDeclined(ring_id, operator_id, self.clock())
            if hook is None and self._on_operator is not None:
                self._on_operator(declined)
            elif hook is not None:
                self.loop.call_soon(hook, Ring(
                    ring_id=ring_id, operator_id=operator_id, call_id=call.id,
                    endpoint=None, sdp=MediaOffer(address=self.public_host, port=0),  # type: ignore[arg-type]
                    on_result=self._ring_result, now_ms=self.clock, done=True), declined)
            return None

        ring = Ring(ring_id=ring_id, operator_id=operator_id, call_id=call.id,
                    endpoint=endpoint, sdp=sdp, on_result=self._ring_result, now_ms=self.clock)
        self.rings[ring_id] = ring
        call.ring_ids.add(ring_id)
        call.operators_offered = True
        if hook is not None:
            self._ring_hooks[ring_id] = hook
        now = self.loop.time()
        targets = self.phones.targets(extension, now) if extension else []
        if not call.state.live or not targets:
            ring.forks.clear()
            self.loop.call_soon(ring._maybe_declined)
            return ring
        start_ring(ring, self.ua, targets, extension=extension,
                   caller=call.phone, local_host=self.public_host, auto_answer=auto_answer,
                   now=now)
        for fork in ring.forks:
            self._forks[fork] = ring
        ring.timer = self.loop.call_later(timeout_s or call.operator_timeout_s,
                                          lambda: ring.timed_out(self.loop.time()))
        return ring

    def _ring_result(self, ring: Ring, event: OperatorEvent) -> None:
        hook = self._ring_hooks.pop(ring.ring_id, None)
        if not isinstance(event, OperatorAnswered):
            self._drop_ring(ring)
        else:
            call = self.calls.get(ring.call_id)
            if ring.leg is not None and call is not None:
                self.track(ring.leg.session, call, "ring")
        if hook is not None:
            hook(ring, event)
        elif self._on_operator is not None:
            try:
                self._on_operator(event)
            except Exception:
                log.exception("dialer operator listener failed")

    def _drop_ring(self, ring: Ring) -> None:
        self.rings.pop(ring.ring_id, None)
        if ring.leg is not None and self._legs.get(ring.leg.session, (None, ""))[1] == "ring":
            del self._legs[ring.leg.session]
        self._ring_hooks.pop(ring.ring_id, None)
        for fork in list(self._forks):
            if self._forks[fork] is ring:
                del self._forks[fork]
        call = self.calls.get(ring.call_id)
        if call is not None:
            call.ring_ids.discard(ring.ring_id)
        if call is None or call.operator is None or call.operator.endpoint is not ring.endpoint:
            ring.endpoint.close("ring over")

    # -- dialling ------------------------------------------------------------------------------
    async def dial(self, call: Call) -> None:
        """Open the CDR and media, then send the INVITE through the call's trunk."""
        if not call.state.live:
            return
        call.state.started_ms = self.clock()
        if call.trunk_id is None:
            await self.open_cdr(call, to_number=call.phone)
            self.end(call, CallOutcome.FAILED, 500, reason="no trunk for the call")
            return
        try:
            route = await self.trunks.route(call.trunk_id)
        except LookupError as exc:
            await self.open_cdr(call, to_number=call.phone)
            self.end(call, CallOutcome.FAILED, 503 if "DNS" in str(exc) else 500,
                     reason=str(exc))
            return
        call.tariff = Tariff(route.trunk.price_per_minute_kopecks,
                             max(1, route.trunk.billing_increment_s))
        caller = call.caller_id or route.trunk.username or "sipspeak"
        call.caller_id = caller
        await self.open_cdr(call, to_number=call.phone, from_number=caller)
        if not call.state.live:  # ended while the row was being written
            call.finished = self.spawn(self._complete(call), f"cdr {call.id}")
            return
        if call.hang_up_requested:
            self.end(call, CallOutcome.NO_ANSWER)
            return
        try:
            endpoint, sdp = await self.open_media(call, "customer")
        except (PortPoolExhausted, OSError) as exc:
            self.end(call, CallOutcome.CONGESTION, 503, reason=f"no RTP port: {exc}")
            return
        target = route.config.target.registrar
        uri = SipUri(scheme=target.scheme, user=call.phone, host=target.host, port=target.port,
                     parameters=target.parameters)
        session = self.ua.invite(
            uri=uri, from_=NameAddr(uri=SipUri(user=caller, host=target.host)),
            destination=route.destination, now=self.loop.time(), body=sdp.make_offer(),
            authenticate=route.authenticate)
        call.customer = SipLeg(session=session, endpoint=endpoint, sdp=sdp, role="customer")
        call.log.extra = {"call": call.id, "sip_call_id": session.call_id}
        self.track(session, call, "customer")
        if call.operator is not None:
            # The operator is already on (click-to-call, manual call): early media reaches him.
            call.bridge = Bridge(customer=endpoint, operator=call.operator.endpoint)
        call.log.info("INVITE sip:%s@%s via trunk %s", call.phone, target.host, route.trunk.name)
        self.arm(call)

    async def open_cdr(self, call: Call, *, to_number: str, from_number: str = "") -> None:
        region = timezone = None
        tags = ""
        if call.contact_id is not None:
            try:
                contact = await self.db.contacts.get(call.contact_id)
            except NotFound:
                contact = None
            if contact is not None:
                region, timezone, tags = contact.region, contact.timezone, ", ".join(contact.tags)
        call.cdr_id = await self.db.calls.open(
            direction=call.direction, started_at=call.state.started_ms, kind=call.kind,
            project_id=call.project_id, contact_id=call.contact_id,
            operator_id=call.operator_id, trunk_id=call.trunk_id, contact_phone=call.phone,
            from_number=from_number, to_number=to_number, region=region, timezone=timezone,
            tags=tags)

    # -- timers -----------------------------------------------------------------------------
    def arm(self, call: Call) -> None:
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        deadline = call.state.get_timer()
        if deadline is None:
            return
        delay = max(0.0, (deadline - self.clock()) / 1000.0)
        call.timer = self.loop.call_later(delay, self._timer_due, call)

    def _timer_due(self, call: Call) -> None:
        call.timer = None
        for due in call.state.handle_timer(self.clock()):
            if due is Due.CANCEL_DIAL and call.customer is not None:
                call.log.info("dial timeout: CANCEL")
                call.customer.session.cancel(self.loop.time())
            elif due is Due.GLOBAL_TIMEOUT:
                call.log.info("global timeout")
                bridged = call.state.bridged_ms is not None
                self.end(call, CallOutcome.ANSWERED if bridged else
                         (CallOutcome.ABANDONED if call.state.answered_ms else
                          CallOutcome.NO_ANSWER))
        self.arm(call)

    def _media_timeout(self, call: Call, role: str) -> None:
        """An endpoint heard nothing for the inactivity timeout: the call is lost.

        Silence before the answer does not count (no RTP while ringing is normal): the
        inactivity must also have lasted that long since the answer.
        """
        if call.state.answered_ms is None or not call.state.live:
            return
        if role == "operator" and call.operator is None:
            return
        if media_silence_expected(call, role):
            return  # a holding leg sends nothing; its resume re-arms the check
        since = (self.clock() - call.state.answered_ms) / 1000.0
        if since < self.inactivity_timeout:
            self.loop.call_later(self.inactivity_timeout - since, self._media_recheck, call, role)
            return
        call.log.info("no RTP from the %s: the call is lost", role)
        self.end(call, call.state.hung_up(self.clock(), media_lost=True))

    def _media_recheck(self, call: Call, role: str) -> None:
        leg = call.customer if role == "customer" else call.operator
        if leg is not None and leg.endpoint.inactive and call.state.live:
            self._media_timeout(call, role)

    # -- SIP events -----------------------------------------------------------------------------
    def on_sip_event(self, event: object) -> None:
        """The SIP endpoint's ``on_event``: route each session event to its call or ring."""
        if isinstance(event, sip.IncomingCall):
            self.incoming(event)
            return
        session = getattr(event, "session", None)
        if not isinstance(session, InviteSession):
            return
        ring = self._forks.get(session)
        if ring is not None and (session not in self._legs):
            if isinstance(event, sip.CallAnswered):
                ring.answered(event, self.loop.time())
            elif isinstance(event, sip.CallFailed):
                ring.failed(event)
            return
        entry = self._legs.get(session)
        if entry is None:
            if isinstance(event, sip.ReinviteReceived):
                session.reject_reinvite(481, self.loop.time())
            return
        call, role = entry
        if isinstance(event, sip.ReinviteReceived):
            self._reinvite(call, session, event)
        elif role == "customer":
            self._customer_event(call, event)
        elif isinstance(event, (sip.CallEnded, sip.CallFailed)):
            self._operator_gone(call, session, role)

    def incoming(self, event: sip.IncomingCall) -> None:
        """Overridden by :class:`~sipspeak.calls.entry.CallCenter`; alone: 403."""
        event.session.reject(403, self.loop.time())

    def _customer_event(self, call: Call, event: object) -> None:
        leg = call.customer
        assert leg is not None  # tracked sessions of role "customer" are customer legs
        now = self.clock()
        if isinstance(event, sip.CallProgress):
            if event.response.body and leg.remote_answer(
                    event.response.headers.get("Content-Type"), event.response.body):
                if call.bridge is not None:
                    call.bridge.replace("customer", leg.endpoint)  # early media, its codec
            if call.state.progress(now):
                self._publish("call.ringing", call, status=event.response.status)
                self._to_dialer(call, CallRinging(call.id, now))
        elif isinstance(event, sip.CallAnswered):
            leg.remote_answer(event.response.headers.get("Content-Type"), event.response.body)
            self.customer_answered(call)
        elif isinstance(event, sip.CallFailed):
            self.end(call, call.state.failed(now, event.status), call.state.sip_code)
        elif isinstance(event, sip.CallEnded):
            self.end(call, call.state.hung_up(now))

    def customer_answered(self, call: Call) -> None:
        """200 OK (outbound) or our answer (inbound): media up, recording, AMD, events."""
        now = self.clock()
        call.state.answer(now)
        leg = call.customer
        assert leg is not None
        path = self.recordings_dir / f"{call.cdr_id or call.id}-{call.id}.wav"
        try:
            self.recordings_dir.mkdir(parents=True, exist_ok=True)
            call.recorder = WavRecorder(path=path)
            call.recording_path = str(path.resolve())  # absolute: the start-up dir may vary
        except OSError as exc:
            call.log.error("cannot record to %s: %s", path, exc)
        if call.bridge is None:
            silence = None if call.music_on_hold else np.zeros(160, dtype=np.int16)
            call.player = Player(codec=leg.endpoint.codec, audio=silence)
            call.bridge = Bridge(customer=leg.endpoint, operator=call.player)
        else:
            call.bridge.replace("customer", leg.endpoint)  # the codec is known now
        if call.amd_enabled and call.operator is None:
            call.amd = AmdTap(params=amd_params(call.amd_params),
                              on_result=lambda result: self._amd_result(call, result))
            self.loop.call_later(call.amd.deadline + 0.1, self._amd_deadline, call)
        rec = call.recorder
        call.bridge.set_tap("customer", fan(rec.tap("customer") if rec else None, call.amd))
        call.bridge.set_tap("operator", rec.tap("operator") if rec else None)
        self._publish("call.answered", call)
        self._to_dialer(call, CallAnswered(call.id, now))
        if call.operator is not None:
            self._operator_on(call, now)  # already on the line: no wait

    def _amd_deadline(self, call: Call) -> None:
        if call.amd is None or not call.state.live or call.state.answered_ms is None:
            return
        elapsed = (self.clock() - call.state.answered_ms) / 1000.0
        call.amd.check(elapsed)
        if call.amd.result is None:
            # Speech moved the detector's deadline on (to the greeting or the total analysis
            # time): check again then, so audio that stops mid-greeting still gets a verdict.
            self.loop.call_later(max(call.amd.deadline - elapsed, 0.0) + 0.1,
                                 self._amd_deadline, call)

    def _amd_result(self, call: Call, result: DetectorResult) -> None:
        verdict = verdict_of(result)
        call.amd_result = f"{verdict.value}:{result.reason.value}"
        call.log.info("AMD: %s (%s)", verdict.value, result.reason.value)
        self._publish("call.amd", call, verdict=verdict.value, reason=result.reason.value)
        self._to_dialer(call, AmdResult(call.id, self.clock(), verdict))
        if verdict is AmdVerdict.MACHINE and call.state.live:
            self.end(call, CallOutcome.ANSWERING_MACHINE)
            return
        if call.bridge is not None:
            # Decided: the customer's audio goes to the recorder alone again (with
            # the C relay loop, without a Python call per packet).
            rec = call.recorder
            call.bridge.set_tap("customer", rec.tap("customer") if rec else None)

    def join_operator(self, call: Call, ring: Ring) -> None:
        """Put the operator's answered leg in place of the hold player."""
        leg = ring.leg
        if leg is None or call.bridge is None:
            return
        call.operator = leg
        call.operator_id = ring.operator_id
        self.track(leg.session, call, "operator")
        call.bridge.replace("operator", leg.endpoint)
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

    def _operator_gone(self, call: Call, session: InviteSession, role: str) -> None:
        if call.operator is not None and call.operator.session is session:
            if call.state.bridged_ms is not None:
                self.end(call, call.state.hung_up(self.clock()))
            else:
                self.operator_left_early(call)
        # A ring leg that answered and then hung up before the bridge: forget it.
        for ring_id in list(call.ring_ids):
            ring = self.rings.get(ring_id)
            if ring is not None and ring.leg is not None and ring.leg.session is session:
                ring.leg = None
                self._drop_ring(ring)

    def operator_left_early(self, call: Call) -> None:
        """The operator's own leg ended before the customer answered (manual, click)."""
        if call.customer is not None:
            call.customer.session.hangup(self.loop.time())
        else:
            self.end(call, CallOutcome.NO_ANSWER)

    def _reinvite(self, call: Call, session: InviteSession, event: sip.ReinviteReceived) -> None:
        leg = call.customer if call.customer and call.customer.session is session else (
            call.operator if call.operator and call.operator.session is session else None)
        now = self.loop.time()
        if leg is None:
            session.reject_reinvite(488, now)
            return
        was_on_hold = leg.on_hold
        try:
            body = leg.answer_offer(event.request.headers.get("Content-Type"), event.request.body)
        except Exception as exc:
            call.log.info("re-INVITE refused: %s", exc)
            session.reject_reinvite(488, now)
            return
        session.accept_reinvite(body, now)
        if leg.on_hold != was_on_hold and call.bridge is not None:
            side = "customer" if leg is call.customer else "operator"
            self._publish("call.hold", call, on_hold=leg.on_hold, side=side)
            hold_changed(call, leg, self.spawn)
            if not leg.on_hold:  # its RTP should come back: check it did
                self.loop.call_later(self.inactivity_timeout, self._media_recheck, call, side)

    # -- the end -----------------------------------------------------------------------------
    def end(self, call: Call, outcome: CallOutcome, code: int | None = None, *,
            reason: str = "") -> None:
        """End the call once: release both legs and the media, report, complete the CDR."""
        if call.ended.is_set():
            return
        outcome = call.state.end(self.clock(), outcome, code)  # the first reason wins
        call.ended.set()
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        now = self.loop.time()
        status = failure_status(outcome, call.state.sip_code)
        for leg in (call.customer, call.operator):
            if leg is not None and leg.session.state is not SessionState.TERMINATED:
                leg.session.hangup(now, status)
        for ring_id in list(call.ring_ids):
            ring = self.rings.get(ring_id)
            if ring is not None:
                ring.stop(now)
                self._drop_ring(ring)
        if call.bridge is not None:
            call.bridge.close()
        for leg in (call.customer, call.operator):
            if leg is not None:
                leg.endpoint.close("call ended")
                self._legs.pop(leg.session, None)
        if call.recorder is not None:
            call.recorder.close(wait=False)
        call.log.info("ended: %s%s%s", outcome.value,
                      f" ({call.state.sip_code})" if call.state.sip_code else "",
                      f" - {reason}" if reason else "")
        self._publish("call.ended", call, outcome=outcome.value, sip_code=call.state.sip_code,
                      recording=call.recording_path)
        self._to_dialer(call, CallEnded(call.id, self.clock(), outcome, call.state.sip_code))
        call.finished = self.spawn(self._complete(call), f"cdr {call.id}")

    async def _complete(self, call: Call) -> None:
        for player in (call.player, call.operator_music):
            if player is not None:
                await player.stop()
        if call.cdr_id is None:
            self.calls.pop(call.id, None)
            return
        assert call.state.outcome is not None
        columns = completion_columns(
            call.state.times(), call.state.outcome, sip_code=call.state.sip_code,
            tariff=call.tariff, operator_offered=call.operators_offered,
            recording_path=call.recording_path, amd_result=call.amd_result)
        columns["operator_id"] = call.operator_id
        columns["sip_call_id"] = call.sip_call_id
        columns["from_number"] = call.caller_id
        try:
            await self.db.calls.update(call.cdr_id, **columns)
        finally:
            self.finished[call.id] = call.cdr_id
            while len(self.finished) > 10_000:
                self.finished.pop(next(iter(self.finished)))
            self.calls.pop(call.id, None)

    async def aclose(self) -> None:
        """End every call (BYE / CANCEL), complete their CDRs, cancel what is left."""
        self.closing = True
        for call in list(self.calls.values()):
            if call.state.live:
                self.end(call, CallOutcome.LOST, reason="shutting down")
        pending = [c.finished for c in self.calls.values() if c.finished is not None]
        if pending:
            await asyncio.wait(pending, timeout=5)
        for ring in list(self.rings.values()):
            ring.stop(self.loop.time())
            self._drop_ring(ring)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

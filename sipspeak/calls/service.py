"""Call control: the asyncio service where SIP legs and the media engine meet.

``CallService`` implements the dialer's ports (:class:`~sipspeak.dialer.ports.CallControl`
and :class:`~sipspeak.dialer.ports.OperatorRinger`): ``originate`` places a customer call
through the project's trunk (digest auth on 401/407, the project's caller ID, our SDP),
``ring_operator`` offers the call to an operator's phones and browsers
(:mod:`~sipspeak.calls.operators`), ``bridge`` joins the answered operator to the customer through :class:`~sipspeak.media.bridge.Bridge`, ``hang_up`` ends
it.  The dialer hears back through :meth:`CallService.attach_dialer`; every step is also
published on the bus (``call.ringing``, ``call.answered``, ``call.amd``, ``call.bridged``,
``call.dtmf``, ``call.hold`` with the holding ``side``, ``call.ended``, ``call.inbound``; an
operator being rung: ``call.offered`` / ``call.offer_ended`` with his ``user_id``).

Per call: a :class:`~sipspeak.calls.state.CallState` (sans-IO, ms) holds phases and
deadlines, one ``call_at`` is armed from its ``get_timer()``; a CDR row is opened when the
call starts and completed when it ends; the conversation is recorded as stereo WAV
(customer left, operator right).  Inbound INVITEs, operators' manual calls and
click-to-call live in :mod:`sipspeak.calls.entry`, which extends this class; a project's
robot in place of its operators in :mod:`sipspeak.calls.robot`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from pathlib import Path

import numpy as np

from sipspeak.dialer.ports import (
    AmdResult,
    AmdVerdict,
    CallAnswered,
    CallEnded,
    CallOutcome,
    CallRinging,
    DialContact,
    ProjectDialSettings,
)
from sipspeak.media.amd.detector import AmdResult as DetectorResult
from sipspeak.media.audio import RATE, Pcm, load_wav
from sipspeak.media.bridge import Bridge
from sipspeak.media.player import Player
from sipspeak.media.portpool import PortPoolExhausted
from sipspeak.media.recorder import WavRecorder
from sipspeak.sip import session as sip
from sipspeak.sip.headers import NameAddr
from sipspeak.sip.session import InviteSession, SessionState
from sipspeak.sip.uri import SipUri
from sipspeak.storage import NotFound
from sipspeak.storage.models import Project

from .amd_tap import AmdTap, amd_params, fan, verdict_of
from .call import Call
from .cdr import Tariff, completion_columns
from .legs import SipLeg
from .robot import RobotSide

__all__ = ["CallService", "failure_status"]

log = logging.getLogger(__name__)

MAX_ABANDON_MESSAGE_S = 60.0
"""A project's message to a person no operator took is cut off after this long."""


@functools.lru_cache(maxsize=8)
def _message_audio(path: str, mtime_ns: int) -> Pcm:
    """A project's message decoded once per file version (a burst of abandons reuses it),
    cut to what is ever played."""
    del mtime_ns  # part of the cache key only
    return load_wav(path)[: int(MAX_ABANDON_MESSAGE_S * RATE)]


def failure_status(outcome: CallOutcome, code: int | None) -> int:
    """The status to pass on to an operator's phone when his outgoing call failed."""
    if code is not None:
        return code
    return {CallOutcome.BUSY: 486, CallOutcome.NO_ANSWER: 480,
            CallOutcome.CONGESTION: 503}.get(outcome, 487)


class CallService(RobotSide):
    """See the module docstring; the state, timers, operators' and robot's side are inherited
    from :class:`~sipspeak.calls.core.CallCore`, :class:`~sipspeak.calls.operators.OperatorSide`
    and :class:`~sipspeak.calls.robot.RobotSide`."""

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
            call.abandon_message = await self.abandon_message_of(project)
            call.auto_answer = project.operator_auto_answer
            call.operator_timeout_s = project.operator_timeout_s
            if project.robot:
                call.kind = "robot"
        await self.dial(call)

    async def abandon_message_of(self, project: Project) -> Path | None:
        """The project's recording for a person no operator took, if it has one on disk."""
        file_id = project.abandon_message_file_id
        if file_id is None or self.files_dir is None:
            return None
        try:
            stored = await self.db.files.file(file_id)
        except NotFound:
            return None
        path = self.files_dir / stored.stored_name
        return path if path.is_file() else None

    def abandon(self, call_id: str) -> None:
        """A person no operator took within the queue timeout: the project's message is
        played to him first (if it has one), then the call is released as :meth:`hang_up`
        would — the customer may hang up meanwhile, nobody is bridged any more."""
        call = self.calls.get(call_id)
        if call is None or not call.state.live:
            return
        leg = call.customer
        if (call.abandon_message is None or leg is None or call.bridge is None
                or call.operator is not None or leg.session.state is not SessionState.CONFIRMED):
            self.hang_up(call_id)
            return
        message, call.abandon_message = call.abandon_message, None  # once
        self.spawn(self._play_then_release(call, message), f"abandon message {call.id}")

    async def _play_then_release(self, call: Call, message: Path) -> None:
        """Play the message, then release the caller — whatever fails on the way, he is
        released (never left on hold music with the queue gone)."""
        player: Player | None = None
        try:
            player = await self._play_message(call, message)
            if player is not None:
                ended = asyncio.ensure_future(call.ended.wait())
                played = asyncio.ensure_future(player.done.wait())
                try:
                    await asyncio.wait((ended, played), timeout=MAX_ABANDON_MESSAGE_S,
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    ended.cancel()
                    played.cancel()
        finally:
            self.hang_up(call.id)
            if player is not None:
                await player.stop()

    async def _play_message(self, call: Call, message: Path) -> Player | None:
        """Put the message in place of the hold music; None when it cannot play."""
        leg, bridge = call.customer, call.bridge
        assert leg is not None and bridge is not None
        try:
            stamp = message.stat().st_mtime_ns
            audio = await asyncio.to_thread(_message_audio, str(message), stamp)
        except Exception as exc:  # unreadable, truncated, too big: the caller is released
            call.log.error("abandon message %s unusable: %s", message, exc)
            return None
        if not call.state.live or call.operator is not None:
            return None
        player = Player(codec=leg.endpoint.codec, audio=audio, loop=False)
        previous = call.player
        if previous is not None:
            await previous.stop()
        if not call.state.live:  # gone meanwhile: nothing to start
            return None
        call.player = player
        bridge.replace("operator", player)
        player.start()
        call.log.info("no operator: playing %s before the release", message.name)
        return player

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
        self._publish("call.started", call)  # the INVITE is about to go out
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
            call.bridge = Bridge(customer=endpoint, operator=call.operator.media_leg)
        call.log.info("INVITE sip:%s@%s via trunk %s", call.phone, target.host, route.trunk.name)
        self.arm(call)

    async def open_cdr(self, call: Call, *, to_number: str, from_number: str = "") -> None:
        region = timezone = None
        tags = ""
        if call.contact_id is not None:
            try:
                contact = await self.db.contacts.get(call.contact_id)
            except NotFound:  # deleted since it was looked up: the call goes on without it
                contact = None
                call.contact_id = None
            if contact is not None:
                region, timezone, tags = contact.region, contact.timezone, ", ".join(contact.tags)
        call.cdr_id = await self.db.calls.open(
            direction=call.direction, started_at=call.state.started_ms, kind=call.kind,
            project_id=call.project_id, contact_id=call.contact_id,
            operator_id=call.operator_id, trunk_id=call.trunk_id, contact_phone=call.phone,
            from_number=from_number, to_number=to_number, region=region, timezone=timezone,
            tags=tags)

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
        elif role == "robot":
            self.robot_event(call, session, event)
        elif isinstance(event, (sip.CallEnded, sip.CallFailed)):
            self.operator_gone(call, session)

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
        elif call.amd is None:
            self.connect_robot(call)  # «Робот»: the person is the robot's (AMD off)

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
        self.connect_robot(call)  # «Робот»: not a machine, so the robot's
        if call.bridge is not None:
            # Decided: the customer's audio goes to the recorder alone again (with
            # the C relay loop, without a Python call per packet).
            rec = call.recorder
            call.bridge.set_tap("customer", rec.tap("customer") if rec else None)

    def _reinvite(self, call: Call, session: InviteSession, event: sip.ReinviteReceived) -> None:
        leg = call.customer if call.customer and call.customer.session is session else (
            call.operator if isinstance(call.operator, SipLeg) and call.operator.session is session
            else None)
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
            self.hold_switched(call, leg)

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
            if leg is not None:
                leg.hangup(now, status)
        self.drop_robot_ring(call)  # a robot still being rung
        self.stop_listening(call, hang_up=True)  # a supervisor listening in is let go
        for ring_id in list(call.ring_ids):
            ring = self.rings.get(ring_id)
            if ring is not None:
                ring.stop(now)
                self._drop_ring(ring)
        if call.bridge is not None:
            call.bridge.close()
        for leg in (call.customer, call.operator):
            if leg is not None:
                leg.close_media("call ended")
            if isinstance(leg, SipLeg):
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

"""The call service's core: its state, owned tasks, events, media endpoints and timers.

:class:`CallCore` holds what every part of call control shares — the calls by id, the rings,
the SIP sessions tracked per call, the owned tasks, the listeners of the dialer — and the
per-call timers: one ``call_at`` armed from :meth:`~sipspeak.calls.state.CallState.get_timer`
(dial timeout → CANCEL, global timeout) and the RTP inactivity check of each endpoint.
:mod:`~sipspeak.calls.operators` (offering the call to operators) and
:mod:`~sipspeak.calls.service` (customer legs, the end of a call) build on it.
"""

from __future__ import annotations

import abc
import asyncio
import itertools
import logging
import secrets
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from sipspeak.dialer.ports import CallEvent, CallOutcome, OperatorEvent
from sipspeak.events import EventBus
from sipspeak.media.dtmf import DtmfDigit
from sipspeak.media.endpoint import RtpEndpoint, open_endpoint
from sipspeak.media.portpool import PortPool
from sipspeak.sip.session import InviteSession
from sipspeak.sip.useragent import UserAgent
from sipspeak.storage import Database, now_ms

from .browser import BrowserLeg, BrowserPhones
from .call import Call, CallLog, OperatorLeg
from .hold import hold_changed, media_silence_expected
from .legs import MediaOffer, SipLeg
from .phones import PhoneDirectory
from .ringing import Ring
from .state import CallState, Due
from .trunks import TrunkDirectory

__all__ = ["CallCore"]

log = logging.getLogger("sipspeak.calls.service")

CallListener = Callable[[CallEvent], None]
OperatorListener = Callable[[OperatorEvent], None]


class CallCore(abc.ABC):
    """See the module docstring."""

    def __init__(self, *, db: Database, bus: EventBus, ua: UserAgent, pool: PortPool,
                 trunks: TrunkDirectory, phones: PhoneDirectory, recordings_dir: Path,
                 media_host: str, public_host: str, inactivity_timeout: float = 30.0,
                 clock: Callable[[], int] = now_ms,
                 browsers: BrowserPhones | None = None,
                 files_dir: Path | None = None) -> None:
        self.db = db
        self.bus = bus
        self.ua = ua
        self.pool = pool
        self.trunks = trunks
        self.phones = phones
        self.browsers = browsers
        self.recordings_dir = recordings_dir
        self.files_dir = files_dir  # the file manager's: the projects' recorded messages
        self.media_host = media_host
        self.public_host = public_host
        self.inactivity_timeout = inactivity_timeout
        self.clock = clock
        self.loop = asyncio.get_running_loop()
        self.calls: dict[str, Call] = {}
        self.rings: dict[str, Ring] = {}
        #: Rings being set up (media, browser offers): True once withdrawn meanwhile.
        self.starting_rings: dict[str, bool] = {}
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
        def inactive(endpoint: RtpEndpoint) -> None:
            leg = call.customer if role == "customer" else call.operator
            if isinstance(leg, SipLeg) and leg.endpoint is endpoint:
                self._media_timeout(call, role)
            # else: a ring's endpoint nobody uses (yet, or any more: a browser answered,
            # whose WebRTC leg watches its own media)

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

    def track_leg(self, leg: OperatorLeg, call: Call, role: str) -> None:
        """Hear when ``leg``'s far end leaves: a SIP session's BYE, a browser's hang-up."""
        if isinstance(leg, SipLeg):
            self.track(leg.session, call, role)
            return
        leg.on_gone = lambda gone: self.operator_gone(call, gone)
        leg.on_dtmf = lambda _, digits: self.operator_dtmf(call, digits)
        leg.on_hold_request = lambda held, on_hold: self.operator_hold(call, held, on_hold)

    def hold_switched(self, call: Call, leg: SipLeg | BrowserLeg) -> None:
        """``leg`` went on hold or came back (``leg.on_hold``), from a re-INVITE or the
        browser: published, the bridge rewired; after a resume its RTP must come back."""
        side = "customer" if leg is call.customer else "operator"
        # A repeated hold (a phone re-offering while held) keeps its first start.
        leg.hold_since_ms = (leg.hold_since_ms or self.clock()) if leg.on_hold else None
        self._publish("call.hold", call, on_hold=leg.on_hold, side=side)
        hold_changed(call, leg, self.spawn)
        if not leg.on_hold:
            self.loop.call_later(self.inactivity_timeout, self._media_recheck, call, side)

    @abc.abstractmethod
    def operator_gone(self, call: Call, leg: SipLeg | BrowserLeg | InviteSession) -> None:
        """The operator's leg ended (:class:`~sipspeak.calls.operators.OperatorSide`)."""

    @abc.abstractmethod
    def operator_dtmf(self, call: Call, digits: str) -> None:
        """Keys the operator pressed (:class:`~sipspeak.calls.operators.OperatorSide`)."""

    @abc.abstractmethod
    def operator_hold(self, call: Call, leg: BrowserLeg, on_hold: bool) -> None:
        """The browser holds or resumes (:class:`~sipspeak.calls.operators.OperatorSide`)."""

    @abc.abstractmethod
    def end(self, call: Call, outcome: CallOutcome, code: int | None = None, *,
            reason: str = "") -> None:
        """End the call once (:class:`~sipspeak.calls.service.CallService`)."""

    # -- timers -------------------------------------------------------------------------------
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
        if isinstance(leg, SipLeg) and leg.endpoint.inactive and call.state.live:
            self._media_timeout(call, role)


"""«Робот» (manual §5.2.1 «Связь CRM с внешней системой робота обзвона»): the person a
project's dialer reaches talks with the outside robot (voice bot) system, not an operator.

In a project with «Робот» on, every call the dialer originates is of kind ``robot``.  Once the
customer answers — and, with «Автоответчик» on, once the detector says it is not a machine —
:meth:`RobotSide.connect_robot` places a second leg through the robot trunk and the dialer
leaves the person out of its queue (:meth:`RobotSide.robot_takes`):

* the robot trunk is the first active trunk flagged «Робот» (in the trunks list's order);
* the Request-URI is ``sip:<number>@<the trunk's host>``, the number being the user part of
  the trunk's host (``sip:bot@robot.example``), else the trunk's user name, else the
  customer's number; From is the customer's number;
* ``X-Contact-Id`` and ``X-Project-Id`` name the contact and the project, so the robot can
  read the contact and write its «Статус робота» back (:mod:`sipspeak.web.robot_api`);
* the robot must answer within the project's «Таймаут оператора».

While it rings the robot's leg is the call's pending robot ring (:attr:`RobotSide.robot_rings`,
released with the call).  Once it answers it stands where an operator's would
(``call.operator``): the bridge relays the customer to it and back, the recording has it on
the operator's channel, the CDR says bridged (and «Оператор ответил», as the manual's robot
calls do), and its BYE ends the call as an operator's hang-up does.  A robot that refuses,
does not answer or cannot be reached leaves the customer to the abandon handling (the
project's message, then the release) as a queue timeout would.
"""

from __future__ import annotations

import abc
import logging
from typing import Any

from sipspeak.media.portpool import PortPoolExhausted
from sipspeak.sip import session as sip
from sipspeak.sip.headers import NameAddr
from sipspeak.sip.session import InviteSession
from sipspeak.sip.trunk import parse_trunk_host
from sipspeak.sip.uri import SipUri
from sipspeak.storage.models import Trunk

from .call import Call
from .legs import SipLeg
from .operators import OperatorSide

__all__ = ["RobotSide", "robot_headers", "robot_number"]

log = logging.getLogger("sipspeak.calls.service")

ROBOT_KIND = "robot"


def robot_number(trunk: Trunk, customer_phone: str) -> str:
    """Whom to ask for at the robot system: the user part of the trunk's host, else its user
    name, else the customer's number (raises ``ValueError`` on a host that does not parse)."""
    user = parse_trunk_host(trunk.host, trunk.username or customer_phone).aor.user
    return user or customer_phone


def robot_headers(call: Call) -> list[tuple[str, str]]:
    """What the robot is told about the person it gets: his contact and project."""
    headers: list[tuple[str, str]] = []
    if call.contact_id is not None:
        headers.append(("X-Contact-Id", str(call.contact_id)))
    if call.project_id is not None:
        headers.append(("X-Project-Id", str(call.project_id)))
    return headers


class RobotSide(OperatorSide):
    """See the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: Robot legs being rung, per call id (not yet the call's operator leg).
        self.robot_rings: dict[str, SipLeg] = {}

    @abc.abstractmethod
    def abandon(self, call_id: str) -> None:
        """Release a person nobody took (:class:`~sipspeak.calls.service.CallService`)."""

    def robot_takes(self, call_id: str) -> bool:
        """Is this call's person the robot's?  The dialer's queue then never sees him."""
        call = self.calls.get(call_id)
        return call is not None and call.kind == ROBOT_KIND

    def connect_robot(self, call: Call) -> None:
        """Ring the robot for the answered person (once; nothing when the call is over)."""
        if call.kind != ROBOT_KIND or not call.state.live or call.operators_offered:
            return
        call.operators_offered = True  # «Статус оператора»: the robot answered or did not
        if call.player is not None and call.music_on_hold:
            call.player.start()  # the wait music while the robot picks up
        self.spawn(self._ring_robot(call), f"robot {call.id}")

    async def _robot_trunk(self) -> Trunk | None:
        trunks = [t for t in await self.db.trunks.list(only_active=True) if t.robot]
        return trunks[0] if trunks else None

    async def _ring_robot(self, call: Call) -> None:
        try:
            trunk = await self._robot_trunk()
            if trunk is None:
                self.robot_failed(call, "no active trunk is flagged «Робот»")
                return
            route = await self.trunks.route(trunk.id)
            number = robot_number(trunk, call.phone)
        except (LookupError, ValueError) as exc:
            self.robot_failed(call, f"robot trunk: {exc}")
            return
        if not call.state.live:
            return
        try:
            endpoint, sdp = await self.open_media(call, "operator")
        except (PortPoolExhausted, OSError) as exc:
            self.robot_failed(call, f"no RTP port for the robot: {exc}")
            return
        if not call.state.live:
            endpoint.close("call ended")
            return
        target = route.config.target.registrar
        uri = SipUri(scheme=target.scheme, user=number, host=target.host, port=target.port,
                     parameters=target.parameters)
        session = self.ua.invite(
            uri=uri, from_=NameAddr(uri=SipUri(user=call.phone, host=target.host)),
            destination=route.destination, now=self.loop.time(), body=sdp.make_offer(),
            headers=robot_headers(call), authenticate=route.authenticate,
            ring_timeout=float(call.operator_timeout_s))
        self.robot_rings[call.id] = SipLeg(session=session, endpoint=endpoint, sdp=sdp,
                                           role="operator")
        self.track(session, call, ROBOT_KIND)
        call.log.info("robot: INVITE sip:%s@%s via trunk %s", number, target.host, trunk.name)

    def robot_event(self, call: Call, session: InviteSession, event: object) -> None:
        """A SIP event of the robot's leg while it is being rung."""
        leg = self.robot_rings.get(call.id)
        if leg is None or leg.session is not session:
            return
        if isinstance(event, sip.CallAnswered):
            self._robot_answered(call, leg, event)
        elif isinstance(event, sip.CallFailed):
            self.robot_failed(call, f"the robot answered {event.status} {event.reason}")
        elif isinstance(event, sip.CallEnded):
            self.robot_failed(call, "the robot's leg ended")

    def _robot_answered(self, call: Call, leg: SipLeg, event: sip.CallAnswered) -> None:
        if not leg.remote_answer(event.response.headers.get("Content-Type"),
                                 event.response.body):
            self.robot_failed(call, "the robot's answer has no usable SDP")  # BYE, abandoned
            return
        if not call.state.live or call.bridge is None:
            self.drop_robot_ring(call)
            return
        del self.robot_rings[call.id]
        call.operator = leg
        self.track(leg.session, call, "operator")  # from now on its BYE ends the call
        call.bridge.replace("operator", leg.endpoint)
        # Its RTP must come now: a robot that answers and stays mute loses the call.
        self.loop.call_later(self.inactivity_timeout, self._media_recheck, call, "operator")
        if call.player is not None:
            self.spawn(call.player.stop(), f"hold music off {call.id}")
        now = self.clock()
        call.state.bridge(now)
        call.log.info("bridged with the robot")
        self._publish("call.bridged", call, robot=True)
        if call.cdr_id is not None:
            self.spawn(self.db.calls.update(call.cdr_id, bridged_at=call.state.bridged_ms),
                       f"cdr bridged {call.id}")

    def drop_robot_ring(self, call: Call) -> None:
        """The robot's leg still ringing goes: CANCEL (or BYE), its media closed."""
        leg = self.robot_rings.pop(call.id, None)
        if leg is None:
            return
        leg.hangup(self.loop.time())
        leg.close_media("robot ring over")
        self._legs.pop(leg.session, None)

    def robot_failed(self, call: Call, reason: str) -> None:
        """The robot could not be reached: its leg goes, the person is abandoned."""
        self.drop_robot_ring(call)
        if not call.state.live:
            return
        call.log.warning("robot: %s; the person is abandoned", reason)
        self.abandon(call.id)

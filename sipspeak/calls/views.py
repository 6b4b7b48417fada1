"""Read-only views of live calls: what the operator's workspace and «Мониторинг» show.

:func:`operator_calls` looks at the call service's live calls at one instant — the ones
bridged to the operator, and the ones ringing him (a dialer or ring-all offer, click-to-call
ringing his phone first) — without changing anything.  Times are the service's epoch
milliseconds, so a page can count the call's duration on by itself.

A call is on hold while one of its legs holds it (``on_hold``: a desk phone's re-INVITE or
the softphone's «Удержать», :mod:`~sipspeak.calls.hold`).  The legs know that, not since
when: :class:`HoldClock` follows the ``call.hold`` events of the bus for the moment each hold
began, and :meth:`HoldClock.holds` joins both into one :class:`Hold` per call on hold.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sipspeak.events import EventBus, Subscription

from .state import CallPhase

if TYPE_CHECKING:
    from .call import Call
    from .service import CallService

__all__ = ["Hold", "HoldClock", "OperatorCall", "operator_calls", "operator_holds"]

SIDES = ("customer", "operator")


@dataclass(frozen=True, slots=True)
class Hold:
    """A call on hold now."""

    sides: tuple[str, ...]
    """Who holds it: ``"customer"``, ``"operator"`` or both."""
    since_ms: int | None
    """When the earliest of those holds began (the service's epoch ms); None when its event
    was not seen (a hold before the call was bridged, before the web service started)."""


class HoldClock:
    """Since when each call is on hold, from the call layer's ``call.hold`` events.

    From :meth:`start` on, the bus subscription is drained whenever the holds are read, so
    no task of its own runs; an event is in it as soon as it is published, so a read right
    after a hold sees it.
    """

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._events: Subscription | None = None
        self._began: dict[tuple[str, str], int] = {}  # (call id, side) -> hold start

    def start(self) -> None:
        if self._events is None:
            self._events = self._bus.subscribe("call.hold")

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
            self._events = None

    def _catch_up(self) -> None:
        while self._events is not None:
            try:
                event = self._events.queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            data = event.data
            key = (str(data.get("call_id")), str(data.get("side")))
            at = data.get("at")
            if data.get("on_hold") and isinstance(at, int):
                self._began.setdefault(key, at)  # a repeated hold keeps its first start
            else:
                self._began.pop(key, None)

    def holds(self, service: CallService) -> dict[str, Hold]:
        """The live calls on hold now, by call id."""
        self._catch_up()
        out: dict[str, Hold] = {}
        for call in service.calls.values():
            if call.state.phase is CallPhase.ENDED:
                continue
            sides = tuple(side for side in SIDES if _holding(call, side))
            if sides:
                starts = [self._began[(call.id, s)] for s in sides if (call.id, s) in self._began]
                out[call.id] = Hold(sides=sides, since_ms=min(starts) if starts else None)
        # Holds of calls that ended (or resumed unseen) are forgotten.
        for key in [k for k in self._began if k[0] not in out or k[1] not in out[k[0]].sides]:
            del self._began[key]
        return out


def _holding(call: Call, side: str) -> bool:
    leg = call.customer if side == "customer" else call.operator
    return leg is not None and leg.on_hold


@dataclass(frozen=True, slots=True)
class OperatorCall:
    call_id: str
    cdr_id: int | None
    phase: str
    """:class:`~sipspeak.calls.state.CallPhase` value of the customer's side."""
    offered: bool
    """The operator is being rung for it (not joined yet)."""
    direction: str
    kind: str
    phone: str
    project_id: int | None
    contact_id: int | None
    started_ms: int
    bridged_ms: int | None
    hold: Hold | None = None
    """Set while the call is on hold."""


def operator_calls(service: CallService, operator_id: int, *,
                   holds: Mapping[str, Hold] | None = None) -> list[OperatorCall]:
    """Live calls joined to ``operator_id`` first, then those ringing him, oldest first;
    ``holds`` (:meth:`HoldClock.holds`) tells which are on hold."""
    offered = {ring.call_id for ring in service.rings.values()
               if ring.operator_id == operator_id and not ring.done}
    joined: list[OperatorCall] = []
    ringing: list[OperatorCall] = []
    for call in service.calls.values():
        if call.state.phase is CallPhase.ENDED:
            continue
        mine = call.operator_id == operator_id and call.operator is not None
        if not mine and call.id not in offered:
            continue
        view = OperatorCall(
            call_id=call.id, cdr_id=call.cdr_id, phase=call.state.phase.value,
            offered=not mine, direction=call.direction, kind=call.kind, phone=call.phone,
            project_id=call.project_id, contact_id=call.contact_id,
            started_ms=call.state.started_ms, bridged_ms=call.state.bridged_ms,
            hold=(holds or {}).get(call.id) if mine else None)
        (joined if mine else ringing).append(view)
    key = lambda c: c.started_ms
    return sorted(joined, key=key) + sorted(ringing, key=key)


def operator_holds(service: CallService, holds: Mapping[str, Hold]) -> dict[int, Hold]:
    """The operators whose call (joined to them) is on hold now, with that hold."""
    out: dict[int, Hold] = {}
    for call_id, hold in holds.items():
        call = service.calls.get(call_id)
        if call is not None and call.operator_id is not None and call.operator is not None:
            out[call.operator_id] = hold
    return out

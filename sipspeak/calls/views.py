"""Read-only views of live calls: what the operator's workspace and «Мониторинг» show.

:func:`operator_calls` looks at the call service's live calls at one instant — the ones
bridged to the operator, and the ones ringing him (a dialer or ring-all offer, click-to-call
ringing his phone first) — without changing anything.  Times are the service's epoch
milliseconds, so a page can count the call's duration on by itself.

A call is on hold while one of its legs holds it (``on_hold``: a desk phone's re-INVITE or
the softphone's «Удержать», :mod:`~sipspeak.calls.hold`), since the leg's ``hold_since_ms``;
:func:`holds` joins both legs into one :class:`Hold` per call on hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .state import CallPhase

if TYPE_CHECKING:
    from .call import Call, OperatorLeg
    from .service import CallService

__all__ = ["Hold", "OperatorCall", "holds", "operator_calls", "operator_holds"]

SIDES = ("customer", "operator")


@dataclass(frozen=True, slots=True)
class Hold:
    """A call on hold now."""

    sides: tuple[str, ...]
    """Who holds it: ``"customer"``, ``"operator"`` or both."""
    since_ms: int | None
    """When the earliest of those holds began (the service's epoch ms)."""


def holds(service: CallService) -> dict[str, Hold]:
    """The live calls on hold now, by call id."""
    out: dict[str, Hold] = {}
    for call in service.calls.values():
        if call.state.phase is CallPhase.ENDED:
            continue
        sides = tuple(side for side in SIDES if _holding(call, side))
        if sides:
            starts = [leg.hold_since_ms for leg in (_leg(call, side) for side in sides)
                      if leg is not None and leg.hold_since_ms is not None]
            out[call.id] = Hold(sides=sides, since_ms=min(starts) if starts else None)
    return out


def _leg(call: Call, side: str) -> OperatorLeg | None:
    return call.customer if side == "customer" else call.operator


def _holding(call: Call, side: str) -> bool:
    leg = _leg(call, side)
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
    ``holds`` (:func:`holds`) tells which are on hold."""
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

"""Read-only views of live calls for one operator: what his workspace shows.

:func:`operator_calls` looks at the call service's live calls at one instant — the ones
bridged to the operator, and the ones ringing him (a dialer or ring-all offer, click-to-call
ringing his phone first) — without changing anything.  Times are the service's epoch
milliseconds, so a page can count the call's duration on by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .state import CallPhase

if TYPE_CHECKING:
    from .service import CallService

__all__ = ["OperatorCall", "operator_calls"]


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


def operator_calls(service: CallService, operator_id: int) -> list[OperatorCall]:
    """Live calls joined to ``operator_id`` first, then those ringing him, oldest first."""
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
            started_ms=call.state.started_ms, bridged_ms=call.state.bridged_ms)
        (joined if mine else ringing).append(view)
    key = lambda c: c.started_ms
    return sorted(joined, key=key) + sorted(ringing, key=key)

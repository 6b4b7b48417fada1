"""How many outbound calls to place now: the three «Тип автонабора» of manual §5.2.5.

Sans-IO: a pacer gets a :class:`PacingInput` (the time, the project's operators, the calls in
flight) and answers with a count; the campaign runtime picks that many due contacts and
originates them. Pacers are consulted on a short tick (about a second) and whenever an operator
becomes free.

* :class:`UnlimitedPacer` — «Не ограничено»: keep exactly ``lines`` outbound legs alive.
* :class:`ProgressivePacer` — «Прогрессивный набор»: one call per available operator, counting
  calls already placed for them.
* :class:`PredictivePacer` — «Предиктивный набор»: dials ahead of operators who will soon be free,
  from measured answer rate, ring/AMD delays, talk and wrap-up times, held under a target
  abandonment rate by feedback on the measured rate.

The predictive pacer lives in :mod:`sipspeak.dialer.predictive`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sipspeak.dialer.agents import AgentState


class OperatorView(Protocol):
    """What a pacer reads of an operator: :class:`~sipspeak.dialer.agents.AgentStateMachine`
    satisfies it."""

    @property
    def state(self) -> AgentState: ...

    @property
    def since_ms(self) -> int: ...


@dataclass(frozen=True, slots=True)
class PacingInput:
    """The project's situation at ``now_ms``.

    ``dial_started_ms`` holds the start time of each outbound call not yet resolved (ringing,
    or answered and still in AMD); ``waiting_persons`` counts persons handed to the queue and
    not yet with an operator; ``lines_in_use`` counts every live outbound customer leg.
    ``withdrawable`` lists positions in ``dial_started_ms`` of the dials that may be withdrawn
    now: not answered, and ringing at least the project's minimum ring time.
    """

    now_ms: int
    operators: Sequence[OperatorView]
    dial_started_ms: Sequence[int]
    waiting_persons: int
    lines_in_use: int
    withdrawable: Sequence[int] = ()


class Pacer(Protocol):
    def calls_to_place(self, inp: PacingInput) -> int: ...


class UnlimitedPacer:
    """«Не ограничено»: the number of lines is the only limit; operators are not counted."""

    def __init__(self, *, lines: int) -> None:
        if lines <= 0:
            raise ValueError(f"lines must be positive, got {lines}")
        self.lines = lines

    def calls_to_place(self, inp: PacingInput) -> int:
        return max(0, self.lines - inp.lines_in_use)


class ProgressivePacer:
    """«Прогрессивный набор»: a call as soon as an operator is free, never more calls in flight
    than available operators."""

    def calls_to_place(self, inp: PacingInput) -> int:
        available = sum(1 for op in inp.operators if op.state is AgentState.AVAILABLE)
        return max(0, available - len(inp.dial_started_ms) - inp.waiting_persons)

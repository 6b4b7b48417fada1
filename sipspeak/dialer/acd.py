"""The ACD queue of one project (manual §5.2.4 «Очередь»), sans-IO with deadlines.

Answered customers — outbound calls that passed AMD and inbound calls routed to the project —
wait here for an operator. Inputs are method calls with ``now_ms``; outputs are
:data:`QueueAction` values that the shell carries out through
:class:`~sipspeak.dialer.ports.OperatorRinger` and :class:`~sipspeak.dialer.ports.CallControl`.
:meth:`AcdQueue.get_timer` returns the earliest deadline; the shell calls
:meth:`AcdQueue.handle_timer` at that time.

Manual settings and their meaning here:

* «Таймаут очереди» (``queue_timeout_ms``): how long the customer waits for an operator; when it
  passes the customer is dropped and the call counts as abandoned.
* «Таймаут оператора» (``operator_timeout_ms``): how long one operator's leg rings; then it is
  cancelled and the call goes back to the group (the next operator by the strategy; an operator
  who let it ring out or declined is tried again only after every other candidate was tried).
* «Автоответ оператора» (``auto_answer``): passed to the ringer; the device picks up itself.
* «Музыка на ожидании» (``music_on_hold``): hold music starts when the customer enters the queue.
* «Стратегия»: :class:`QueueStrategy`.

Operators come from the project's groups (``operator_ids``, in list order). State lives in the
shared :class:`~sipspeak.dialer.agents.AgentRoster`: ringing an operator moves them to RINGING,
so no other project's queue offers them a call at the same time.

Directed offers (manual §5.2.4 «Задача на оператора», §6.1.1 «Совершать звонок
автоматически»): a call the dialer places for one operator's task goes to that operator only,
never by the strategy. The runtime first reserves the operator (:meth:`AcdQueue.reserve`: an
available operator moves to «Слушает гудки», so neither this queue nor another project's offers
him a call while his contact rings), then dials; when the contact answers and passes AMD,
:meth:`AcdQueue.enqueue` rings him at once. A reservation the dial will not use (busy, no
answer, a machine) is given back with :meth:`AcdQueue.release`. A directed call whose operator
declines or lets it ring out waits for *him* again, until the queue timeout.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from sipspeak.dialer.agents import (
    AgentRoster,
    AgentState,
    AgentTrigger,
    IllegalAgentTransition,
)
from sipspeak.dialer.ports import OperatorAnswered, OperatorEvent


class QueueStrategy(enum.Enum):
    RING_ALL = "ring_all"
    """«Вызываются все операторы одновременно»."""
    ROUND_ROBIN = "round_robin"
    """«По кругу, после того, кто ответил последним»."""
    LONGEST_IDLE = "longest_idle"
    """«Вызвать того оператора, который дольше всех не принимал звонки»."""
    FEWEST_CALLS = "fewest_calls"
    """«Вызвать того оператора, который принял меньше всех звонков»."""
    LINEAR = "linear"
    """«Вызываются все операторы по списку»: always the first free one in list order."""


@dataclass(frozen=True, slots=True)
class QueueSettings:
    strategy: QueueStrategy
    queue_timeout_ms: int
    operator_timeout_ms: int
    operator_ids: tuple[int, ...]
    auto_answer: bool = False
    music_on_hold: bool = False

    def __post_init__(self) -> None:
        if self.queue_timeout_ms <= 0 or self.operator_timeout_ms <= 0:
            raise ValueError("queue and operator timeouts must be positive")
        if len(set(self.operator_ids)) != len(self.operator_ids):
            raise ValueError("an operator is listed twice in the queue")


@dataclass(frozen=True, slots=True)
class RingOperator:
    ring_id: str
    operator_id: int
    call_id: str
    auto_answer: bool


@dataclass(frozen=True, slots=True)
class StopRinging:
    ring_id: str
    operator_id: int


@dataclass(frozen=True, slots=True)
class StartHoldMusic:
    call_id: str


@dataclass(frozen=True, slots=True)
class BridgeCall:
    """The operator answered: bridge the customer leg to them."""

    call_id: str
    operator_id: int
    waited_ms: int


@dataclass(frozen=True, slots=True)
class AbandonCall:
    """The queue timeout passed (or the customer hung up): drop it; outcome ABANDONED."""

    call_id: str
    waited_ms: int


QueueAction = RingOperator | StopRinging | StartHoldMusic | BridgeCall | AbandonCall


@dataclass(slots=True)
class _Ring:
    ring_id: str
    operator_id: int
    deadline_ms: int


@dataclass(slots=True)
class _WaitingCall:
    call_id: str
    entered_ms: int
    deadline_ms: int
    rings: dict[str, _Ring] = field(default_factory=dict)
    tried: set[int] = field(default_factory=set)
    operator_id: int | None = None
    """A directed call: only this operator is offered it."""


class AcdQueue:
    """Waiting customers of one project and the operators being rung for them."""

    def __init__(self, *, settings: QueueSettings, roster: AgentRoster) -> None:
        self.settings = settings
        self._roster = roster
        self._waiting: dict[str, _WaitingCall] = {}
        self._ring_owner: dict[str, str] = {}
        self._ring_seq = 0
        self._answered_count: dict[int, int] = dict.fromkeys(settings.operator_ids, 0)
        self._last_answered_ms: dict[int, int] = {}
        self._last_answerer: int | None = None
        self._reserved: dict[str, int] = {}  # call id -> operator held for it

    # --- observation -------------------------------------------------------------------------

    @property
    def waiting_count(self) -> int:
        return len(self._waiting)

    @property
    def directed_waiting_count(self) -> int:
        """Waiting calls that only their own operator may take (not the pool's demand)."""
        return sum(1 for c in self._waiting.values() if c.operator_id is not None)

    @property
    def oldest_entered_ms(self) -> int | None:
        """When the longest-waiting customer entered the queue (None: nobody waits)."""
        return min((c.entered_ms for c in self._waiting.values()), default=None)

    def reserved_operator(self, call_id: str) -> int | None:
        """The operator held for ``call_id`` while it is dialled, if any."""
        return self._reserved.get(call_id)

    def is_waiting(self, call_id: str) -> bool:
        return call_id in self._waiting

    def answered_count(self, operator_id: int) -> int:
        return self._answered_count.get(operator_id, 0)

    def get_timer(self) -> int | None:
        deadlines = [c.deadline_ms for c in self._waiting.values()]
        deadlines += [
            r.deadline_ms for c in self._waiting.values() for r in c.rings.values()
        ]
        return min(deadlines, default=None)

    # --- inputs ------------------------------------------------------------------------------

    def reserve(self, call_id: str, operator_id: int, now_ms: int) -> None:
        """Hold an available operator for the call about to be dialled for his task: he moves
        to «Слушает гудки» until :meth:`enqueue` offers him the answered call or
        :meth:`release` gives him back. Raises
        :class:`~sipspeak.dialer.agents.IllegalAgentTransition` if he is not available."""
        if call_id in self._reserved or call_id in self._waiting:
            raise ValueError(f"call {call_id} already has an operator or waits in the queue")
        if operator_id not in self.settings.operator_ids:
            raise ValueError(f"operator {operator_id} does not work in this queue")
        if operator_id not in self._roster:
            raise ValueError(f"operator {operator_id} is not on the roster")
        state = self._roster.state(operator_id)
        if state is not AgentState.AVAILABLE:
            # «Не беспокоить» may dial out himself, but takes no call the dialer places.
            raise IllegalAgentTransition(operator_id, state, AgentTrigger.DIAL_OUT)
        self._roster.fire(operator_id, AgentTrigger.DIAL_OUT, now_ms)
        self._reserved[call_id] = operator_id

    def release(self, call_id: str, now_ms: int) -> list[QueueAction]:
        """The reserved call will not reach a person: its operator resumes his status."""
        operator_id = self._reserved.pop(call_id, None)
        if operator_id is None:
            return []
        if self._roster.state(operator_id) is AgentState.RINGBACK:
            self._roster.fire(operator_id, AgentTrigger.DIAL_FAILED, now_ms)
        return self.dispatch(now_ms)

    def enqueue(
        self, call_id: str, now_ms: int, *, operator_id: int | None = None
    ) -> list[QueueAction]:
        """A customer (answered outbound, or inbound) starts waiting for an operator.

        A call reserved with :meth:`reserve`, or given ``operator_id``, is directed: it is
        offered to that operator only (see the module docstring)."""
        if call_id in self._waiting:
            raise ValueError(f"call {call_id} is already waiting in the queue")
        reserved = self._reserved.pop(call_id, None)
        directed = reserved if reserved is not None else operator_id
        call = self._waiting[call_id] = _WaitingCall(
            call_id, now_ms, now_ms + self.settings.queue_timeout_ms, operator_id=directed
        )
        actions: list[QueueAction] = []
        if self.settings.music_on_hold:
            actions.append(StartHoldMusic(call_id))
        if reserved is not None and self._roster.state(reserved) is AgentState.RINGBACK:
            actions.append(self._ring(call, reserved, now_ms))
        actions += self.dispatch(now_ms)
        return actions

    def customer_left(self, call_id: str, now_ms: int) -> list[QueueAction]:
        """The customer hung up while waiting."""
        call = self._waiting.pop(call_id, None)
        if call is None:
            return []
        actions: list[QueueAction] = self._cancel_rings(call, now_ms)
        actions.append(AbandonCall(call_id, now_ms - call.entered_ms))
        return actions + self.dispatch(now_ms)

    def on_operator_event(self, event: OperatorEvent) -> list[QueueAction]:
        """The call layer reports on an operator leg this queue rang."""
        call_id = self._ring_owner.pop(event.ring_id, None)
        if call_id is None:
            return []  # a ring already cancelled: the event crossed our StopRinging
        call = self._waiting[call_id]
        ring = call.rings.pop(event.ring_id)
        now_ms = event.at_ms
        if isinstance(event, OperatorAnswered):
            self._roster.fire(ring.operator_id, AgentTrigger.OPERATOR_ANSWERED, now_ms)
            del self._waiting[call_id]
            self._answered_count[ring.operator_id] = (
                self.answered_count(ring.operator_id) + 1
            )
            self._last_answered_ms[ring.operator_id] = now_ms
            self._last_answerer = ring.operator_id
            actions: list[QueueAction] = self._cancel_rings(call, now_ms)
            actions.append(
                BridgeCall(call_id, ring.operator_id, now_ms - call.entered_ms)
            )
            return actions + self.dispatch(now_ms)
        # Declined, or rang out on the phone's side: back to the group.
        self._roster.fire(ring.operator_id, AgentTrigger.OFFER_WITHDRAWN, now_ms)
        return self.dispatch(now_ms)

    def handle_timer(self, now_ms: int) -> list[QueueAction]:
        actions: list[QueueAction] = []
        for call in list(self._waiting.values()):
            if call.deadline_ms <= now_ms:
                del self._waiting[call.call_id]
                actions += self._cancel_rings(call, now_ms)
                actions.append(AbandonCall(call.call_id, now_ms - call.entered_ms))
                continue
            for ring in list(call.rings.values()):
                if ring.deadline_ms <= now_ms:
                    actions += self._cancel_ring(call, ring, now_ms)
        return actions + self.dispatch(now_ms)

    def dispatch(self, now_ms: int) -> list[QueueAction]:
        """Offer waiting calls to free operators. Call it whenever an operator becomes available
        (in any project they work in)."""
        actions: list[QueueAction] = []
        roster = self._roster
        # Directed calls first: their operator is theirs before the pool's.
        for call in self._waiting.values():
            op = call.operator_id
            if (op is not None and not call.rings and op in roster
                    and roster.state(op) is AgentState.AVAILABLE):
                actions.append(self._ring(call, op, now_ms))
        for call in self._waiting.values():
            if call.operator_id is not None:
                continue
            if call.rings and self.settings.strategy is not QueueStrategy.RING_ALL:
                continue
            free = self._free_operators()
            if not free:
                break
            untried = [op for op in free if op not in call.tried]
            if not untried:
                call.tried.clear()
                untried = free
            chosen = (
                untried
                if self.settings.strategy is QueueStrategy.RING_ALL
                else [self._pick(untried)]
            )
            for operator_id in chosen:
                actions.append(self._ring(call, operator_id, now_ms))
        return actions

    # --- strategies --------------------------------------------------------------------------

    def _free_operators(self) -> list[int]:
        roster = self._roster
        return [
            op
            for op in self.settings.operator_ids
            if op in roster and roster.state(op) is AgentState.AVAILABLE
        ]

    def _pick(self, candidates: Sequence[int]) -> int:
        """One operator out of ``candidates`` (free, in list order) by the strategy."""
        strategy = self.settings.strategy
        if strategy is QueueStrategy.LINEAR or strategy is QueueStrategy.RING_ALL:
            return candidates[0]
        if strategy is QueueStrategy.FEWEST_CALLS:
            return min(candidates, key=self.answered_count)
        if strategy is QueueStrategy.LONGEST_IDLE:
            # Never answered sorts first; ties keep list order (min is stable).
            return min(candidates, key=lambda op: self._last_answered_ms.get(op, -1))
        order = self.settings.operator_ids
        last = self._last_answerer
        start = order.index(last) + 1 if last in order else 0
        position = {op: (order.index(op) - start) % len(order) for op in candidates}
        return min(candidates, key=position.__getitem__)

    # --- rings -------------------------------------------------------------------------------

    def _ring(self, call: _WaitingCall, operator_id: int, now_ms: int) -> RingOperator:
        self._ring_seq += 1
        ring_id = f"{call.call_id}/ring-{self._ring_seq}"
        self._roster.fire(operator_id, AgentTrigger.OFFER_CALL, now_ms)
        call.rings[ring_id] = _Ring(
            ring_id, operator_id, now_ms + self.settings.operator_timeout_ms
        )
        call.tried.add(operator_id)
        self._ring_owner[ring_id] = call.call_id
        return RingOperator(
            ring_id, operator_id, call.call_id, self.settings.auto_answer
        )

    def _cancel_ring(
        self, call: _WaitingCall, ring: _Ring, now_ms: int
    ) -> list[QueueAction]:
        del call.rings[ring.ring_id]
        del self._ring_owner[ring.ring_id]
        self._roster.fire(ring.operator_id, AgentTrigger.OFFER_WITHDRAWN, now_ms)
        return [StopRinging(ring.ring_id, ring.operator_id)]

    def _cancel_rings(self, call: _WaitingCall, now_ms: int) -> list[QueueAction]:
        actions: list[QueueAction] = []
        for ring in list(call.rings.values()):
            actions += self._cancel_ring(call, ring, now_ms)
        return actions

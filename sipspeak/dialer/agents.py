"""Operator (agent) states: one machine per operator, every state kept as a logged interval.

The states are the ones manual §6.3 «Статистика операторов» reports on. Every transition is in
:data:`TRANSITIONS`; anything else raises :class:`IllegalAgentTransition`. Each transition closes
the interval of the state being left and returns it as an :class:`AgentStateInterval`, which
storage writes as the operator's status history (the CSV/XLSX export of §6.3) and from which
:mod:`sipspeak.dialer.agent_stats` computes the report columns.

Wrap-up («В карточке») ends when the operator saves the card, or when the project's wrap-up limit
passes: the limit is a deadline held as data (:meth:`AgentStateMachine.get_timer`), fired by
:meth:`AgentStateMachine.handle_timer` with the caller's clock.

After a call (or an offered call that was not taken) the operator goes back to the state the call
found them in: an operator in «Не беспокоить» who dialled out returns to «Не беспокоить», not to
«Доступен».
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final


class AgentState(enum.Enum):
    """An operator's state. Values are stable identifiers for storage."""

    OFFLINE = "offline"
    """Logged out of the workspace. Logged for completeness; no report column counts it."""
    ONLINE = "online"
    """Signed in to the workspace but not on the line: the status the UI shows as «Не в сети»;
    §6.3 reports it as «Неактивен»."""
    AVAILABLE = "available"
    """«Доступен» / «Активно»: waiting for the queue to hand over a call."""
    PAUSED = "paused"
    """«Пауза»: takes no calls."""
    DO_NOT_DISTURB = "do_not_disturb"
    """«Не беспокоить»: takes no queue calls but may dial out."""
    WRAP_UP = "wrap_up"
    """«В карточке»: after-call work until the card is saved or the limit passes."""
    TALKING = "talking"
    """«В разговоре»."""
    RINGING = "ringing"
    """«Ожидание ответа»: a queue call is offered and the operator has not pressed «Ответить»."""
    RINGBACK = "ringback"
    """«Слушает гудки»: the operator dialled out and hears ringback until the customer answers."""


class AgentTrigger(enum.Enum):
    LOG_IN = "log_in"
    LOG_OUT = "log_out"
    GO_OFF_LINE = "go_off_line"
    SET_AVAILABLE = "set_available"
    SET_PAUSED = "set_paused"
    SET_DO_NOT_DISTURB = "set_do_not_disturb"
    OFFER_CALL = "offer_call"
    OPERATOR_ANSWERED = "operator_answered"
    OFFER_WITHDRAWN = "offer_withdrawn"
    DIAL_OUT = "dial_out"
    CUSTOMER_ANSWERED = "customer_answered"
    DIAL_FAILED = "dial_failed"
    CALL_ENDED = "call_ended"
    CARD_SAVED = "card_saved"
    WRAP_UP_EXPIRED = "wrap_up_expired"


RESUME: Final = "resume"
"""Transition target meaning: back to the state the call found the operator in."""

_S = AgentState
_T = AgentTrigger
_IDLE_STATES = (_S.AVAILABLE, _S.PAUSED, _S.DO_NOT_DISTURB)

TRANSITIONS: Final[dict[tuple[AgentState, AgentTrigger], AgentState | str]] = {
    (_S.OFFLINE, _T.LOG_IN): _S.ONLINE,
    **{(s, _T.LOG_OUT): _S.OFFLINE for s in (_S.ONLINE, *_IDLE_STATES)},
    **{(s, _T.GO_OFF_LINE): _S.ONLINE for s in _IDLE_STATES},
    **{
        (s, _T.SET_AVAILABLE): _S.AVAILABLE
        for s in (_S.ONLINE, _S.PAUSED, _S.DO_NOT_DISTURB)
    },
    **{
        (s, _T.SET_PAUSED): _S.PAUSED
        for s in (_S.ONLINE, _S.AVAILABLE, _S.DO_NOT_DISTURB)
    },
    **{
        (s, _T.SET_DO_NOT_DISTURB): _S.DO_NOT_DISTURB
        for s in (_S.ONLINE, _S.AVAILABLE, _S.PAUSED)
    },
    # Queue calls are offered to available operators only.
    (_S.AVAILABLE, _T.OFFER_CALL): _S.RINGING,
    (_S.RINGING, _T.OPERATOR_ANSWERED): _S.TALKING,
    (_S.RINGING, _T.OFFER_WITHDRAWN): RESUME,
    # «Не беспокоить»: no queue calls, but the operator may dial out.
    (_S.AVAILABLE, _T.DIAL_OUT): _S.RINGBACK,
    (_S.DO_NOT_DISTURB, _T.DIAL_OUT): _S.RINGBACK,
    (_S.RINGBACK, _T.CUSTOMER_ANSWERED): _S.TALKING,
    # An operator task («Совершать звонок автоматически»): the dialer holds the operator in
    # «Слушает гудки» while it dials his contact, then offers him the answered call.
    (_S.RINGBACK, _T.OFFER_CALL): _S.RINGING,
    (_S.RINGBACK, _T.DIAL_FAILED): RESUME,
    (_S.TALKING, _T.CALL_ENDED): _S.WRAP_UP,
    (_S.WRAP_UP, _T.CARD_SAVED): RESUME,
    (_S.WRAP_UP, _T.WRAP_UP_EXPIRED): RESUME,
}


class IllegalAgentTransition(Exception):
    """The trigger is not allowed in the operator's current state."""

    def __init__(self, agent_id: int, state: AgentState, trigger: AgentTrigger) -> None:
        allowed = sorted(t.value for (s, t) in TRANSITIONS if s is state)
        super().__init__(
            f"operator {agent_id}: {trigger.value!r} is not allowed in state {state.value!r}"
            f" (allowed: {', '.join(allowed) or 'none'})"
        )
        self.agent_id = agent_id
        self.state = state
        self.trigger = trigger


@dataclass(frozen=True, slots=True)
class AgentStateInterval:
    """One closed interval of one state, ``[start_ms, end_ms)``: a row of the status history."""

    agent_id: int
    state: AgentState
    start_ms: int
    end_ms: int

    def __post_init__(self) -> None:
        if self.end_ms < self.start_ms:
            raise ValueError(
                f"interval ends before it starts: {self.start_ms}..{self.end_ms}"
            )

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


class AgentStateMachine:
    """One operator's state, the start of the current interval, and the wrap-up deadline."""

    def __init__(
        self,
        *,
        agent_id: int,
        now_ms: int,
        state: AgentState = AgentState.OFFLINE,
        wrap_up_limit_ms: int | None = None,
    ) -> None:
        if wrap_up_limit_ms is not None and wrap_up_limit_ms <= 0:
            raise ValueError(
                f"wrap-up limit must be positive, got {wrap_up_limit_ms} ms"
            )
        self.agent_id = agent_id
        self.wrap_up_limit_ms = wrap_up_limit_ms
        self._state = state
        self._since_ms = now_ms
        self._resume_state = AgentState.AVAILABLE
        self._wrap_up_deadline_ms: int | None = None

    @property
    def state(self) -> AgentState:
        return self._state

    @property
    def since_ms(self) -> int:
        """When the current state began."""
        return self._since_ms

    def can(self, trigger: AgentTrigger) -> bool:
        return (self._state, trigger) in TRANSITIONS

    def fire(self, trigger: AgentTrigger, now_ms: int) -> AgentStateInterval:
        """Apply ``trigger`` at ``now_ms``; return the interval of the state just left."""
        target = TRANSITIONS.get((self._state, trigger))
        if target is None:
            raise IllegalAgentTransition(self.agent_id, self._state, trigger)
        if now_ms < self._since_ms:
            raise ValueError(
                f"operator {self.agent_id}: time went back from {self._since_ms} to {now_ms} ms"
            )
        new_state = self._resume_state if target == RESUME else target
        assert isinstance(new_state, AgentState)
        if self._state in (
            AgentState.AVAILABLE,
            AgentState.DO_NOT_DISTURB,
        ) and trigger in (
            AgentTrigger.OFFER_CALL,
            AgentTrigger.DIAL_OUT,
        ):
            self._resume_state = self._state
        closed = AgentStateInterval(self.agent_id, self._state, self._since_ms, now_ms)
        self._state = new_state
        self._since_ms = now_ms
        if new_state is AgentState.WRAP_UP and self.wrap_up_limit_ms is not None:
            self._wrap_up_deadline_ms = now_ms + self.wrap_up_limit_ms
        else:
            self._wrap_up_deadline_ms = None
        return closed

    def open_interval(self, now_ms: int) -> AgentStateInterval:
        """The current state as an interval ending at ``now_ms`` (for live reports)."""
        return AgentStateInterval(self.agent_id, self._state, self._since_ms, now_ms)

    def get_timer(self) -> int | None:
        """The earliest deadline this machine needs to be woken at, if any."""
        return self._wrap_up_deadline_ms

    def handle_timer(self, now_ms: int) -> AgentStateInterval | None:
        """Fire the wrap-up limit if it has passed; otherwise do nothing."""
        deadline = self._wrap_up_deadline_ms
        if deadline is None or now_ms < deadline:
            return None
        return self.fire(AgentTrigger.WRAP_UP_EXPIRED, now_ms)


class AgentRoster:
    """Every operator's machine in one place, shared by all projects' queues and pacers.

    An operator may work in several projects; because there is one machine per operator, an
    operator taken by one project's queue is no longer available to another. Closed intervals
    pile up in an outbox that the owner drains (:meth:`drain_intervals`) into storage.
    """

    def __init__(self, *, wrap_up_limit_ms: int | None = None) -> None:
        self._machines: dict[int, AgentStateMachine] = {}
        self._outbox: list[AgentStateInterval] = []
        self._wrap_up_limit_ms = wrap_up_limit_ms

    def add(
        self, agent_id: int, now_ms: int, state: AgentState = AgentState.OFFLINE
    ) -> AgentStateMachine:
        if agent_id in self._machines:
            raise ValueError(f"operator {agent_id} is already on the roster")
        machine = AgentStateMachine(
            agent_id=agent_id,
            now_ms=now_ms,
            state=state,
            wrap_up_limit_ms=self._wrap_up_limit_ms,
        )
        self._machines[agent_id] = machine
        return machine

    @property
    def wrap_up_limit_ms(self) -> int | None:
        """The wrap-up limit every operator works under (``None``: none)."""
        return self._wrap_up_limit_ms

    def __contains__(self, agent_id: int) -> bool:
        return agent_id in self._machines

    def __getitem__(self, agent_id: int) -> AgentStateMachine:
        return self._machines[agent_id]

    def machines(self) -> list[AgentStateMachine]:
        return list(self._machines.values())

    def state(self, agent_id: int) -> AgentState:
        return self._machines[agent_id].state

    def fire(self, agent_id: int, trigger: AgentTrigger, now_ms: int) -> None:
        self._outbox.append(self._machines[agent_id].fire(trigger, now_ms))

    def get_timer(self) -> int | None:
        deadlines = [
            d for m in self._machines.values() if (d := m.get_timer()) is not None
        ]
        return min(deadlines, default=None)

    def handle_timer(self, now_ms: int) -> list[int]:
        """Fire due wrap-up limits; return the operators that left wrap-up."""
        freed = []
        for machine in self._machines.values():
            closed = machine.handle_timer(now_ms)
            if closed is not None:
                self._outbox.append(closed)
                freed.append(machine.agent_id)
        return freed

    def drain_intervals(self) -> list[AgentStateInterval]:
        out, self._outbox = self._outbox, []
        return out

"""The status an operator chose in his workspace, and his own calls, on the agent roster.

Sans-IO (time comes in as ``now``). The workspace publishes the operator's choice
(«Доступен», «Перерыв», «Не беспокоить», «Не в сети»; ``agent.state`` on the bus) and his
«Сохранить» on the card; :class:`OperatorStatuses` turns them into roster triggers — at once
while he is idle, after his call and wrap-up while he is on one (the choice waits, pending).
His own calls (from his phone, or click-to-call) move him through «Слушает гудки» and «В
разговоре», so that no queue offers him a call meanwhile.
"""

from __future__ import annotations

from typing import Final

from sipspeak.dialer.agents import AgentRoster, AgentState, AgentTrigger

__all__ = ["STATUS_TRIGGERS", "OperatorStatuses"]

STATUS_TRIGGERS: Final[dict[str, AgentTrigger]] = {
    "available": AgentTrigger.SET_AVAILABLE,
    "pause": AgentTrigger.SET_PAUSED,
    "dnd": AgentTrigger.SET_DO_NOT_DISTURB,
    "offline": AgentTrigger.GO_OFF_LINE,
    "logged_out": AgentTrigger.LOG_OUT,
    "card_saved": AgentTrigger.CARD_SAVED,
}
"""``agent.state`` values the workspace publishes → roster triggers."""

_STATUS_OF_TRIGGER: Final[dict[AgentTrigger, str]] = {
    trigger: status for status, trigger in STATUS_TRIGGERS.items()
    if status in ("available", "pause", "dnd", "offline")
}
_STATUS_OF_STATE: Final[dict[AgentState, str]] = {
    AgentState.AVAILABLE: "available", AgentState.PAUSED: "pause",
    AgentState.DO_NOT_DISTURB: "dnd", AgentState.ONLINE: "offline", AgentState.OFFLINE: "offline",
}
_IDLE = (AgentState.ONLINE, AgentState.AVAILABLE, AgentState.PAUSED, AgentState.DO_NOT_DISTURB)


class OperatorStatuses:
    """Chosen statuses (pending while on a call) and operators' own calls, on ``roster``."""

    def __init__(self, roster: AgentRoster) -> None:
        self.roster = roster
        self._pending: dict[int, AgentTrigger] = {}
        self._own_calls: dict[int, str] = {}

    def choose(self, operator_id: int, status: str, now: int) -> bool:
        """The workspace changed the operator's status; ``False`` for an unknown status."""
        trigger = STATUS_TRIGGERS.get(status)
        if trigger is None:
            return False
        roster = self.roster
        if operator_id not in roster:
            roster.add(operator_id, now, AgentState.ONLINE)
        machine = roster[operator_id]
        if trigger is AgentTrigger.CARD_SAVED:
            # A status chosen during the call (pending) applies right after.
            if machine.can(trigger):
                roster.fire(operator_id, trigger, now)
        elif machine.state in _IDLE:
            self._pending.pop(operator_id, None)
            if machine.can(trigger):
                roster.fire(operator_id, trigger, now)
        else:
            # On a call: the new status applies when the call (and wrap-up) is over.
            self._pending[operator_id] = trigger
        return True

    def shown(self, operator_id: int) -> str:
        """The status the workspace shows: the one he chose (``available`` / ``pause`` /
        ``dnd`` / ``offline``), the pending one while he is on a call."""
        pending = self._pending.get(operator_id)
        if pending is not None:
            return _STATUS_OF_TRIGGER.get(pending, "available")
        if operator_id not in self.roster:
            return "offline"
        return _STATUS_OF_STATE.get(self.roster.state(operator_id), "available")

    def apply_pending(self, now: int) -> None:
        """Pending choices of operators who are idle again take effect."""
        for operator_id, trigger in list(self._pending.items()):
            machine = self.roster[operator_id]
            if machine.state in _IDLE:
                del self._pending[operator_id]
                if machine.can(trigger):
                    self.roster.fire(operator_id, trigger, now)

    def own_call(self, topic: str, operator_id: int, call_id: str, now: int) -> bool:
        """A ``call.*`` event of the operator's own call; ``True`` when his state changed
        (or may have)."""
        if operator_id not in self.roster:
            return False
        roster, machine = self.roster, self.roster[operator_id]
        own = self._own_calls.get(operator_id)
        if topic == "call.ended":
            if own != call_id:
                return False
            del self._own_calls[operator_id]
            if machine.state is AgentState.RINGBACK:
                roster.fire(operator_id, AgentTrigger.DIAL_FAILED, now)
            elif machine.state is AgentState.TALKING:
                roster.fire(operator_id, AgentTrigger.CALL_ENDED, now)
            return True
        if topic not in ("call.ringing", "call.answered", "call.bridged"):
            return False
        if own is None and machine.can(AgentTrigger.DIAL_OUT):
            self._own_calls[operator_id] = call_id
            roster.fire(operator_id, AgentTrigger.DIAL_OUT, now)
            own = call_id
        if (own == call_id and topic != "call.ringing"
                and machine.state is AgentState.RINGBACK):
            roster.fire(operator_id, AgentTrigger.CUSTOMER_ANSWERED, now)
        return True

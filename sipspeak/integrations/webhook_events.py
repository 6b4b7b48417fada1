"""The bus's call events as webhook events (sans-IO).

Call control publishes each step of a call on the bus (``call.answered``, ``call.bridged``,
``call.ended`` …, see :mod:`sipspeak.calls.service`) with the call's id, project, operator,
contact and number.  :class:`CallTracker` follows every call from its first event to its
end, so that each webhook event carries what is known of the call by then (``call.offered``
alone names only the operator rung), the start time and, at the end, the durations as the
calls report counts them (:mod:`sipspeak.calls.cdr`: duration = ended - started, talk =
ended - bridged).  A call's first event on the bus brings a ``call.started`` before it, at
the time the call's record says it started (outbound: the INVITE; inbound: its arrival).

:func:`event_data` then says it for one endpoint: names of the project and operator, and the
customer's number masked where the project hides numbers (:func:`~sipspeak.crm.phones.
shown_phone`, as an operator sees it) unless the endpoint may have it whole.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sipspeak.crm.phones import shown_phone
from sipspeak.storage.models import Project

from .webhooks import EVENT_TYPES

__all__ = ["CallTracker", "Occurrence", "event_data"]

MAX_CALLS = 20_000
"""Calls followed at once; beyond, the oldest is forgotten (its end then comes without its
start time).  Far above the calls one process carries."""

_EXTRA: dict[str, tuple[tuple[str, str], ...]] = {
    # bus name → webhook name, per event type
    "call.inbound": (("trunk_id", "trunk_id"),),
    "call.ringing": (("status", "sip_status"),),
    "call.amd": (("verdict", "verdict"), ("reason", "reason")),
    "call.offered": (("ring_id", "ring_id"),),
    "call.offer_ended": (("ring_id", "ring_id"),),
    "call.hold": (("side", "side"), ("on_hold", "on_hold")),
    "call.dtmf": (("side", "side"), ("digit", "digit"), ("duration_ms", "duration_ms")),
    "call.listening": (("listener_id", "listener_id"),),
    "call.listening_ended": (("listener_id", "listener_id"),),
    "call.ended": (("outcome", "outcome"), ("sip_code", "sip_code")),
}
_CALL_KEYS = ("cdr_id", "project_id", "operator_id", "contact_id", "phone", "direction", "kind")


@dataclass(slots=True)
class _Call:
    """What is known of one call so far."""

    call_id: str
    cdr_id: int | None = None
    project_id: int | None = None
    operator_id: int | None = None
    contact_id: int | None = None
    phone: str = ""
    direction: str = ""
    kind: str = ""
    started_at: int | None = None
    answered_at: int | None = None
    bridged_at: int | None = None


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One webhook event, before it is said for an endpoint."""

    type: str
    at: int
    project_id: int | None
    operator_id: int | None
    """The operator the event is about (for an offer: the one being rung)."""
    phone: str
    data: dict[str, Any] = field(default_factory=dict)
    """Everything but the names and the number."""


class CallTracker:
    """See the module docstring.  ``take`` each bus event in the order published."""

    def __init__(self, *, max_calls: int = MAX_CALLS) -> None:
        self._calls: OrderedDict[str, _Call] = OrderedDict()
        self._max = max_calls

    def known(self, call_id: str) -> bool:
        """Whether the call's ``call.started`` was made already."""
        return call_id in self._calls

    def take(self, topic: str, data: Mapping[str, Any], *, now: int,
             started_at: int | None = None) -> list[Occurrence]:
        """The webhook events of one bus event (none for a topic that is not a call's).

        ``started_at``: when the call began by its record, for a call not :meth:`known` yet
        (its ``call.started`` then says so; else the event's own time)."""
        call_id = data.get("call_id")
        if topic not in EVENT_TYPES or not isinstance(call_id, str):
            return []
        if topic in ("call.offered", "call.offer_ended") and \
                "-listen-" in str(data.get("ring_id", "")):
            return []  # a supervisor rung to listen in: that is call.listening
        at = _int(data.get("at"))
        at = now if at is None else at
        call = self._calls.get(call_id)
        out: list[Occurrence] = []
        if call is None:
            call = self._remember(call_id)
        else:
            self._calls.move_to_end(call_id)
        for key in _CALL_KEYS:
            value = data.get(key)
            if value is not None:
                setattr(call, key, value)
        if call.started_at is None:
            call.started_at = at if topic == "call.started" else (
                started_at if started_at is not None else at)
            if topic != "call.started":
                out.append(self._occurrence("call.started", call.started_at, call, {}))
        if topic == "call.answered" and call.answered_at is None:
            call.answered_at = at
        elif topic == "call.bridged":
            call.bridged_at = at
        extra = {name: data.get(key) for key, name in _EXTRA.get(topic, ())}
        operator = call.operator_id
        if topic in ("call.offered", "call.offer_ended"):
            operator = _int(data.get("user_id"))
        if topic == "call.ended":
            self._calls.pop(call_id, None)
            extra.update(_durations(call, at, bool(data.get("recording"))))
        out.append(self._occurrence(topic, at, call, extra, operator=operator))
        return out

    def _remember(self, call_id: str) -> _Call:
        call = self._calls[call_id] = _Call(call_id)
        while len(self._calls) > self._max:
            self._calls.popitem(last=False)
        return call

    @staticmethod
    def _occurrence(topic: str, at: int, call: _Call, extra: dict[str, Any], *,
                    operator: int | None = None) -> Occurrence:
        data: dict[str, Any] = {"call_id": call.call_id, "cdr_id": call.cdr_id,
                                "direction": call.direction, "kind": call.kind,
                                "contact_id": call.contact_id}
        if topic == "call.started":
            data["started_at"] = at
        elif topic == "call.answered":
            data["answered_at"] = call.answered_at
        elif topic == "call.bridged":
            data["bridged_at"] = call.bridged_at
        data.update(extra)
        return Occurrence(type=topic, at=at, project_id=call.project_id,
                          operator_id=operator if operator is not None else call.operator_id,
                          phone=call.phone, data=data)


def _durations(call: _Call, ended_at: int, recorded: bool) -> dict[str, Any]:
    started = call.started_at if call.started_at is not None else ended_at
    return {"started_at": started, "answered_at": call.answered_at,
            "bridged_at": call.bridged_at, "ended_at": ended_at,
            "duration_ms": max(0, ended_at - started),
            "talk_ms": max(0, ended_at - call.bridged_at) if call.bridged_at is not None else 0,
            "recorded": recorded}


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def event_data(occurrence: Occurrence, *, project: Project | None, operator_name: str,
               full_numbers: bool) -> dict[str, Any]:
    """The event's ``data`` for one endpoint.  The number is shown as an operator of the
    project would see it (masked where «Показывать номера» is off; a call without a project
    has nothing to hide, a project that is gone hides it) unless ``full_numbers``."""
    if project is not None:
        visible = project.show_numbers
    else:
        visible = occurrence.project_id is None
    phone = occurrence.phone
    shown = shown_phone(phone, show_numbers=visible,
                        role="admin" if full_numbers else "operator") if phone else ""
    data = dict(occurrence.data)
    contact = data.pop("contact_id", None)
    return {"call_id": data.pop("call_id"), "cdr_id": data.pop("cdr_id"),
            "direction": data.pop("direction"), "kind": data.pop("kind"),
            "project_id": occurrence.project_id,
            "project_name": project.name if project is not None else "",
            "operator_id": occurrence.operator_id, "operator_name": operator_name,
            "contact_id": contact, "phone": shown, "phone_masked": shown != phone,
            **data}

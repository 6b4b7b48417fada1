"""«Рабочее место» оператора: his state, his calls and the client card that pops up with them.

``GET /workspace`` is the page; ``GET /api/v1/workspace`` answers the operator's picture as
JSON or, as a WebSocket, pushes it whenever something of his changes (his state, a call
joined to him or ringing him, his phone): the page then shows the call and mounts the client
card of its contact, keeps the card of the last call open during wrap-up («В карточке») and
ends the wrap-up when the card is saved.  A call on hold (he or the customer holds it: his
desk phone, the softphone's «Удержать») says so, with the hold's start (``hold_since_ms``) for
the page to count on.  The picture is built from the dialer's runtime (the
fine state and since when), the call service's live calls
(:func:`~sipspeak.calls.views.operator_calls`) and the operator's last CDR row; every part
says so when its service does not run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..calls.views import OperatorCall, operator_calls
from ..crm.phones import shown_phone
from ..events import Event
from ..i18n import translate
from ..storage import NotFound, now_ms
from ..storage.models import Call, Contact, Project, Task, User
from .auth import ALL_ROLES, current_user, route
from .layout import current_agent_state, language_of, render
from .monitoring import script_json
from .pages import services_of
from .push import holds_now, live_picture, setup_push

if TYPE_CHECKING:
    from ..app import Services

__all__ = ["setup_routes", "workspace_picture"]

_TOPICS = ("agent.", "call.", "phone.", "task.")
TASKS_SHOWN = 20
"""His open tasks shown at most, earliest due first."""
STATIC = Path(__file__).parent / "static"
#: The chosen status when the dialer does not run, as its finer state.
_STATE_OF_STATUS = {"available": "available", "pause": "paused", "dnd": "do_not_disturb",
                    "offline": "offline"}

CALL_OUT: dict[str, Any] = {"type": "object", "properties": {
    "id": {"type": "string"}, "cdr_id": {"type": ["integer", "null"]},
    "phase": {"type": "string"}, "phase_label": {"type": "string"},
    "offered": {"type": "boolean"}, "direction": {"type": "string"},
    "kind": {"type": "string"}, "phone": {"type": "string"},
    "project_id": {"type": ["integer", "null"]}, "project": {"type": "string"},
    "contact_id": {"type": ["integer", "null"]}, "started_ms": {"type": "integer"},
    "bridged_ms": {"type": ["integer", "null"]},
    "on_hold": {"type": "boolean"},
    "held_by": {"type": "array", "items": {"type": "string", "enum": ["customer", "operator"]}},
    "hold_since_ms": {"type": ["integer", "null"],
                      "description": "when the hold began; null when not on hold or unknown"}}}
LAST_CALL_OUT: dict[str, Any] = {"type": ["object", "null"], "properties": {
    "cdr_id": {"type": "integer"}, "phone": {"type": "string"},
    "project_id": {"type": ["integer", "null"]}, "project": {"type": "string"},
    "contact_id": {"type": ["integer", "null"]}, "direction": {"type": "string"},
    "result": {"type": "string"}, "started_at": {"type": "integer"},
    "ended_at": {"type": ["integer", "null"]}}}
TASK_OUT: dict[str, Any] = {"type": "object", "properties": {
    "id": {"type": "integer"}, "contact_id": {"type": "integer"}, "phone": {"type": "string"},
    "name": {"type": ["string", "null"]}, "text": {"type": "string"},
    "due_at": {"type": "integer"}, "auto_call": {"type": "boolean"},
    "due": {"type": "boolean"}}}
PICTURE_OUT: dict[str, Any] = {"type": "object", "properties": {
    "now_ms": {"type": "integer"}, "user_id": {"type": "integer"},
    "status": {"type": "string"}, "state": {"type": "string"},
    "state_label": {"type": "string"}, "since_ms": {"type": ["integer", "null"]},
    "wrap_up_ends_ms": {"type": ["integer", "null"],
                        "description": "when «В карточке» ends by itself (the wrap-up limit)"},
    "phone": {"type": "string", "enum": ["online", "offline", "none"]},
    "telephony": {"type": "boolean"}, "dialer": {"type": "boolean"},
    "calls": {"type": "array", "items": CALL_OUT}, "last_call": LAST_CALL_OUT,
    "tasks": {"type": "array", "items": TASK_OUT}}}


async def workspace_picture(request: web.Request) -> dict[str, Any]:
    """The signed-in user's state, live calls and last call, labelled in his language."""
    services = services_of(request)
    user = current_user(request)
    lang = language_of(request)
    campaigns = getattr(services, "campaigns", None)
    center = services.calls
    status = await current_agent_state(services, user.id)
    wrap_up_ends: int | None = None
    if campaigns is not None:
        line = campaigns.agent_line(user.id)
        state, since, now = line.state.value, line.since_ms, campaigns.now_ms()
        limit = campaigns.roster.wrap_up_limit_ms
        if state == "wrap_up" and since is not None and limit is not None:
            wrap_up_ends = since + limit  # «В карточке» ends by itself then
    else:
        state, since, now = _STATE_OF_STATUS.get(status, "offline"), None, now_ms()
    calls = (operator_calls(center, user.id, holds=holds_now(request))
             if center is not None else [])
    last = await services.db.calls.list(operator_id=user.id, limit=1)
    tasks = await _open_tasks(services, user.id)
    projects = await _projects(services, calls, last, [c for _, c in tasks])

    def phone(number: str, project_id: int | None) -> str:
        # «Показывать номера» off: an operator sees the customer's number masked.
        if project_id is None:  # not a project's call (his own manual one): his to see
            return number
        project = projects.get(project_id)  # a project gone: hidden rather than shown
        return shown_phone(number, show_numbers=project is not None and project.show_numbers,
                           role=user.role)

    names = {pid: p.name for pid, p in projects.items()}
    return {
        "now_ms": now, "user_id": user.id, "status": status, "state": state,
        "state_label": translate(f"monitoring.state.{state}", lang), "since_ms": since,
        "wrap_up_ends_ms": wrap_up_ends,
        "phone": _phone(services, user), "telephony": center is not None,
        "dialer": campaigns is not None,
        "calls": [_call_json(c, names, lang, phone) for c in calls],
        "last_call": _last_json(last[0], names, phone) if last else None,
        "tasks": [{"id": t.id, "contact_id": t.contact_id,
                   "phone": phone(c.phone, c.project_id), "name": c.full_name,
                   "text": t.text, "due_at": t.due_at, "auto_call": t.auto_call,
                   "due": t.due_at <= now_ms()} for t, c in tasks],
    }


async def _open_tasks(services: Services, user_id: int) -> list[tuple[Task, Contact]]:
    """His open tasks («Задачи» of the client cards assigned to him), earliest due first."""
    out = []
    for task in await services.db.tasks.list(operator_id=user_id, open_only=True,
                                             limit=TASKS_SHOWN):
        try:
            out.append((task, await services.db.contacts.get(task.contact_id)))
        except NotFound:
            continue
    return out


async def _projects(services: Services, calls: list[OperatorCall], last: list[Call],
                    contacts: list[Contact]) -> dict[int, Project]:
    wanted = ({c.project_id for c in calls} | {c.project_id for c in last}
              | {c.project_id for c in contacts})
    wanted.discard(None)
    if not wanted:
        return {}
    return {p.id: p for p in await services.db.projects.list() if p.id in wanted}


def _phone(services: Services, user: User) -> str:
    if not user.extension:
        return "none"
    phones = getattr(services.call_runtime, "phones", None)
    if phones is None:
        return "offline"
    online = phones.is_online(user.extension, asyncio.get_running_loop().time())
    return "online" if online else "offline"


def _call_json(call: OperatorCall, names: dict[int, str], lang: str,
               phone: Callable[[str, int | None], str]) -> dict[str, Any]:
    return {
        "id": call.call_id, "cdr_id": call.cdr_id, "phase": call.phase,
        "phase_label": translate(f"workspace.phase.{call.phase}", lang),
        "offered": call.offered, "direction": call.direction, "kind": call.kind,
        "phone": phone(call.phone, call.project_id), "project_id": call.project_id,
        "project": names.get(call.project_id, "") if call.project_id is not None else "",
        "contact_id": call.contact_id, "started_ms": call.started_ms,
        "bridged_ms": call.bridged_ms, "on_hold": call.hold is not None,
        "held_by": list(call.hold.sides) if call.hold else [],
        "hold_since_ms": call.hold.since_ms if call.hold else None,
    }


def _last_json(row: Call, names: dict[int, str],
               phone: Callable[[str, int | None], str]) -> dict[str, Any]:
    number = row.contact_phone or (row.from_number if row.direction == "inbound"
                                   else row.to_number)
    return {
        "cdr_id": row.id,
        "phone": phone(number, row.project_id),
        "project_id": row.project_id,
        "project": names.get(row.project_id, "") if row.project_id is not None else "",
        "contact_id": row.contact_id, "direction": row.direction, "result": row.result,
        "started_at": row.started_at, "ended_at": row.ended_at,
    }


def _concerns(request: web.Request, user_id: int) -> Any:
    """Which bus events may change this operator's picture: his own, and calls joined to
    him or ringing him."""
    offered: set[object] = set()  # calls seen ringing him: their end concerns him too

    def relevant(event: Event) -> bool:
        data = event.data
        if data.get("user_id") == user_id or data.get("operator_id") == user_id:
            return True
        if not event.topic.startswith("call."):
            return False
        call_id = data.get("call_id")
        if call_id in offered:
            return True
        center = services_of(request).calls
        if center is not None and any(ring.call_id == call_id and ring.operator_id == user_id
                                      for ring in center.rings.values()):
            if len(offered) > 1000:
                offered.clear()
            offered.add(call_id)
            return True
        return False
    return relevant


async def workspace_page(request: web.Request) -> web.Response:
    """Рабочее место оператора: состояние, звонок, карточка клиента."""
    return await render(request, "workspace.html", {
        "initial": script_json(await workspace_picture(request)),
        # The softphone and the client card are their own components: mounted when present.
        "has_softphone": (STATIC / "softphone.js").is_file(),
        "has_card": (STATIC / "card.js").is_file()})


async def api_workspace(request: web.Request) -> web.StreamResponse:
    """The operator's state and calls now; as a WebSocket, pushed whenever they change."""
    user = current_user(request)
    return await live_picture(request, workspace_picture, topics=_TOPICS,
                              may=lambda now: now.id == user.id,
                              relevant=_concerns(request, user.id))


def setup_routes(app: web.Application) -> None:
    setup_push(app)
    route(app, "GET", "/workspace", workspace_page, roles=ALL_ROLES, name="workspace")
    route(app, "GET", "/api/v1/workspace", api_workspace, roles=ALL_ROLES, api=True,
          response_schema=PICTURE_OUT)

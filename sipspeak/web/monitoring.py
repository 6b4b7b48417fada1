"""«Мониторинг» (manual §7): the queues and their operators, live.

``GET /monitoring`` is the page; ``GET /api/v1/monitoring`` answers the picture as JSON, and
upgrades to a WebSocket when asked: the picture is sent at once and again whenever it changes
(an operator's state, a call, a phone, a hold), at most every ``PUSH_MIN_INTERVAL_S``; the
page counts «Время» on by itself between pushes.  An operator whose call is on hold
(``on_hold``: he or the customer holds it) shows «На удержании», «Время» counted from the
hold's start (``hold_since_ms``).  An administrator sees every queue, a supervisor the
projects he supervises.  The picture comes from the dialer's runtime
(:meth:`~sipspeak.dialer.runtime.CampaignRuntime.board`); without it the API answers 503.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web

from ..calls.operators import ListenRefused
from ..calls.views import Hold, operator_holds
from ..dialer.monitoring import Board
from ..i18n import Text, message_of, translate
from .auth import STAFF, current_user, route, visible_project_ids
from .errors import ApiError, Invalid, json_ok
from .forms import Fields
from .layout import language_of, render
from .pages import services_of
from .push import holds_now, live_picture, setup_push

log = logging.getLogger(__name__)

_TOPICS = ("agent.", "call.", "phone.", "trunk.", "project.")

OPERATOR_OUT: dict[str, Any] = {"type": "object", "properties": {
    "id": {"type": "integer"}, "name": {"type": "string"}, "state": {"type": "string"},
    "state_label": {"type": "string"}, "since_ms": {"type": ["integer", "null"]},
    "phone_online": {"type": "boolean"},
    "on_hold": {"type": "boolean", "description": "his call is on hold (either side)"},
    "held_by": {"type": "array", "items": {"type": "string", "enum": ["customer", "operator"]}},
    "hold_since_ms": {"type": ["integer", "null"],
                      "description": "when the hold began; null when not on hold or unknown"}}}
QUEUE_OUT: dict[str, Any] = {"type": "object", "properties": {
    "project_id": {"type": "integer"}, "project": {"type": "string"},
    "strategy": {"type": "string"}, "strategy_label": {"type": "string"},
    "running": {"type": "boolean"}, "waiting": {"type": "integer"},
    "oldest_waiting_since_ms": {"type": ["integer", "null"]},
    "dial_mode": {"type": "string"}, "dial_mode_label": {"type": "string"},
    "dialling": {"type": "integer"}, "persons": {"type": "integer"},
    "abandoned": {"type": "integer"}, "abandon_rate": {"type": "number"},
    "withdrawn": {"type": "integer"},
    "phones_online": {"type": "integer"}, "phones_offline": {"type": "integer"},
    "operators": {"type": "array", "items": OPERATOR_OUT}}}
BOARD_OUT: dict[str, Any] = {"type": "object", "properties": {
    "now_ms": {"type": "integer"}, "queues": {"type": "array", "items": QUEUE_OUT}}}


def _board(request: web.Request) -> Board:
    campaigns = getattr(services_of(request), "campaigns", None)
    if campaigns is None:
        raise ApiError(503, "unavailable", Text("monitoring.error.unavailable"))
    board: Board = campaigns.board()
    return board


async def picture(request: web.Request) -> dict[str, Any]:
    """The board as the caller may see it, with names and labels in his language."""
    board = _board(request)
    services = services_of(request)
    visible = await visible_project_ids(request)
    lang = language_of(request)
    queues = [q for q in board.queues if visible is None or q.project_id in visible]
    names = {p.id: p.name for p in await services.db.projects.list()}
    users = {u.id: u for u in await services.db.users.list(include_deleted=True)}
    calls = services.calls
    now = asyncio.get_running_loop().time()
    holds = operator_holds(calls, holds_now(request)) if calls is not None else {}

    def online(operator_id: int) -> bool:
        """A registered SIP phone or a connected browser softphone."""
        user = users.get(operator_id)
        return bool(calls is not None and user is not None
                    and calls.operator_online(user.id, user.extension, now))

    out = []
    for queue in queues:
        operators = [{
            "id": line.operator_id,
            "name": users[line.operator_id].full_name if line.operator_id in users else "",
            "state": line.state.value,
            "state_label": translate(f"monitoring.state.{line.state.value}", lang),
            "since_ms": line.since_ms,
            "phone_online": online(line.operator_id),
            **_hold_json(holds.get(line.operator_id)),
        } for line in queue.operators]
        phones_online = sum(1 for o in operators if o["phone_online"])
        out.append({
            "project_id": queue.project_id, "project": names.get(queue.project_id, ""),
            "strategy": queue.strategy.value,
            "strategy_label": translate(f"projects.strategy.{queue.strategy.value}", lang),
            "running": queue.running, "waiting": queue.waiting,
            "oldest_waiting_since_ms": queue.oldest_waiting_since_ms,
            "dial_mode": queue.dial_mode,
            "dial_mode_label": translate(f"projects.dial_mode.{queue.dial_mode}", lang),
            "dialling": queue.dialling, "persons": queue.persons, "abandoned": queue.abandoned,
            "abandon_rate": queue.abandoned / queue.persons if queue.persons else 0.0,
            "withdrawn": queue.withdrawn,
            "phones_online": phones_online, "phones_offline": len(operators) - phones_online,
            "operators": operators,
        })
    return {"now_ms": board.now_ms, "queues": out}


def _hold_json(hold: Hold | None) -> dict[str, Any]:
    return {"on_hold": hold is not None, "held_by": list(hold.sides) if hold else [],
            "hold_since_ms": hold.since_ms if hold else None}


async def monitoring_page(request: web.Request) -> web.Response:
    """Операторы и очереди в реальном времени."""
    try:
        initial: dict[str, Any] | None = await picture(request)
    except ApiError:
        initial = None
    return await render(request, "monitoring.html", {"initial": script_json(initial)})


def script_json(value: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: ``<``, ``>`` and ``&`` as
    ``\\u`` escapes, so no text in it (a project named ``<!--<script>``) can change how the
    HTML parser ends the element."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


async def api_monitoring(request: web.Request) -> web.StreamResponse:
    """The queues and their operators now; as a WebSocket, pushed whenever they change."""
    return await live_picture(request, picture, topics=_TOPICS,
                              may=lambda user: user.role in STAFF)


LISTEN_IN = {"type": "object", "required": ["operator_id"], "properties": {
    "operator_id": {"type": "integer"}}}
LISTEN_OUT = {"type": "object", "properties": {"call_id": {"type": "string"}}}


async def api_listen(request: web.Request) -> web.Response:
    """«Слушать»: the caller's phone or softphone is rung and hears the operator's
    conversation (both sides; nobody hears him)."""
    fields = await Fields.read(request)
    operator_id = fields.optional_int("operator_id", low=1)
    if operator_id is None:
        raise Invalid(Text("calls.error.operator_id"), field="operator_id")
    board = _board(request)
    visible = await visible_project_ids(request)
    watched = {line.operator_id for q in board.queues
               if visible is None or q.project_id in visible for line in q.operators}
    if operator_id not in watched:  # not an operator of his queues: as if there were none
        raise ApiError(404, "not_found", Text("calls.error.no_operator", id=operator_id))
    calls = services_of(request).calls
    if calls is None:
        raise ApiError(503, "unavailable", Text("calls.error.unavailable"))
    call = next((c for c in calls.calls.values()
                 if c.operator_id == operator_id and c.operator is not None
                 and c.state.live and c.state.bridged_ms is not None), None)
    if call is None:
        raise ApiError(409, "not_talking", Text("calls.error.not_talking"))
    user = current_user(request)
    if not calls.operator_online(user.id, user.extension,
                                 asyncio.get_running_loop().time()):
        raise Invalid(Text("calls.error.no_device"))
    try:
        await calls.listen(call.id, user.id)
    except ListenRefused as exc:
        raise ApiError(409, "not_talking", message_of(exc)) from None
    return json_ok({"call_id": call.id}, status=202)


def setup_routes(app: web.Application) -> None:
    setup_push(app)
    route(app, "POST", "/api/v1/monitoring/listen", api_listen, roles=STAFF, api=True,
          request_schema=LISTEN_IN, response_schema=LISTEN_OUT)
    route(app, "GET", "/monitoring", monitoring_page, roles=STAFF, name="monitoring")
    route(app, "GET", "/api/v1/monitoring", api_monitoring, roles=STAFF, api=True,
          response_schema=BOARD_OUT)

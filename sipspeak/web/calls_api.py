"""Click-to-call over the REST API.

``POST /api/v1/calls`` with ``{operator_id, phone}`` or ``{operator_id, contact_id}``: the
operator's phone rings first (auto-answer asked), then the customer is dialled through the
operator's trunk and bridged.  ``GET /api/v1/calls/{id}`` shows a live call's state and, once
it ended, its row of the calls report.  An operator may only place calls for himself.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..calls.entry import ClickToCallError
from ..crm.phones import mask_phone, shown_phone
from ..i18n import Text, message_of
from ..storage import NotFound
from ..storage.models import Call
from .auth import ALL_ROLES, current_user, route, visible_project_ids
from .errors import ApiError, Forbidden, Invalid, json_ok
from .forms import Fields
from .pages import services_of

CALL_IN = {"type": "object", "properties": {
    "operator_id": {"type": "integer"}, "phone": {"type": "string"},
    "contact_id": {"type": "integer"}}, "required": ["operator_id"]}
CALL_OUT = {"type": "object", "properties": {
    "id": {"type": "string"}, "state": {"type": "string"}, "cdr": {"type": "object"}}}


def cdr_json(row: Call) -> dict[str, Any]:
    return {name: getattr(row, name) for name in Call.__dataclass_fields__}


def _calls(request: web.Request) -> Any:
    calls = services_of(request).calls
    if calls is None:
        raise ApiError(503, "unavailable", Text("calls.error.unavailable"))
    return calls


async def api_call_create(request: web.Request) -> web.Response:
    """Click-to-call: ring the operator, then dial the customer and bridge them."""
    fields = await Fields.read(request)
    operator_id = fields.optional_int("operator_id", low=1)
    if operator_id is None:
        raise Invalid(Text("calls.error.operator_id"), field="operator_id")
    user = current_user(request)
    if user.role == "operator" and user.id != operator_id:
        raise Forbidden(Text("calls.error.own_name"))
    contact_id = fields.optional_int("contact_id", low=1)
    phone = fields.optional_text("phone", max_len=32)
    if contact_id is None and not phone:
        raise Invalid(Text("calls.error.phone"), field="phone")
    try:
        call = await _calls(request).click_to_call(operator_id=operator_id, phone=phone,
                                                   contact_id=contact_id)
    except ClickToCallError as exc:
        raise Invalid(message_of(exc)) from None
    return json_ok(_calls(request).snapshot(call), status=201)


async def api_call(request: web.Request) -> web.Response:
    """A call: its live state, or its CDR once it ended.  An operator reads only his own
    calls (and one ringing him), a supervisor those of his projects; where «Показывать номера»
    is off an operator gets the customer's number masked."""
    calls = _calls(request)
    key = request.match_info["id"]
    user = current_user(request)
    live = calls.get(key)
    if live is not None and not live.ended.is_set():
        offered = any(r.call_id == live.id and r.operator_id == user.id
                      for r in calls.rings.values())
        await _may_read(request, live.project_id, live.operator_id, key, offered=offered)
        snapshot = calls.snapshot(live)
        snapshot["phone"] = await _shown(request, live.phone, live.project_id)
        return json_ok(snapshot)
    cdr_id = calls.finished.get(key)
    if cdr_id is None and live is not None:
        cdr_id = live.cdr_id
    if cdr_id is None and key.isdigit():
        cdr_id = int(key)
    if cdr_id is None:
        raise ApiError(404, "not_found", Text("storage.error.call_not_found", id=key))
    row = await services_of(request).db.calls.get(cdr_id)
    await _may_read(request, row.project_id, row.operator_id, key)
    cdr = cdr_json(row)
    customer = "from_number" if row.direction == "inbound" else "to_number"
    for name in ("contact_phone", customer):
        cdr[name] = await _shown(request, cdr[name], row.project_id)
    return json_ok({"id": key, "state": "ended" if row.ended_at else "live", "cdr": cdr})


async def _may_read(request: web.Request, project_id: int | None, operator_id: int | None,
                    key: str, *, offered: bool = False) -> None:
    user = current_user(request)
    if user.role == "operator":
        allowed = operator_id == user.id or offered
    else:
        visible = await visible_project_ids(request)
        allowed = visible is None or project_id in visible or operator_id == user.id
    if not allowed:  # someone else's call: as if there were none
        raise ApiError(404, "not_found", Text("storage.error.call_not_found", id=key))


async def _shown(request: web.Request, phone: str, project_id: int | None) -> str:
    """The customer's number as the caller may see it in the call's project."""
    user = current_user(request)
    if user.role != "operator" or project_id is None or not phone:
        return phone
    try:
        project = await services_of(request).db.projects.get(project_id, include_deleted=True)
    except NotFound:
        return mask_phone(phone)  # a project gone: hide rather than show
    return shown_phone(phone, show_numbers=project.show_numbers, role=user.role)


def setup_routes(app: web.Application) -> None:
    route(app, "POST", "/api/v1/calls", api_call_create, roles=ALL_ROLES, api=True,
          request_schema=CALL_IN, response_schema=CALL_OUT)
    route(app, "GET", "/api/v1/calls/{id:[A-Za-z0-9-]+}", api_call, roles=ALL_ROLES, api=True,
          response_schema=CALL_OUT)

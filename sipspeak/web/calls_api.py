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
from ..i18n import Text, message_of
from ..storage.models import Call
from .auth import ALL_ROLES, current_user, route
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
    """A call: its live state, or its CDR once it ended."""
    calls = _calls(request)
    key = request.match_info["id"]
    live = calls.get(key)
    if live is not None and not live.ended.is_set():
        return json_ok(calls.snapshot(live))
    cdr_id = calls.finished.get(key)
    if cdr_id is None and live is not None:
        cdr_id = live.cdr_id
    if cdr_id is None and key.isdigit():
        cdr_id = int(key)
    if cdr_id is None:
        raise ApiError(404, "not_found", Text("storage.error.call_not_found", id=key))
    row = await services_of(request).db.calls.get(cdr_id)
    user = current_user(request)
    if user.role == "operator" and row.operator_id != user.id:
        raise Forbidden()
    return json_ok({"id": key, "state": "ended" if row.ended_at else "live", "cdr": cdr_json(row)})


def setup_routes(app: web.Application) -> None:
    route(app, "POST", "/api/v1/calls", api_call_create, roles=ALL_ROLES, api=True,
          request_schema=CALL_IN, response_schema=CALL_OUT)
    route(app, "GET", "/api/v1/calls/{id:[A-Za-z0-9-]+}", api_call, roles=ALL_ROLES, api=True,
          response_schema=CALL_OUT)

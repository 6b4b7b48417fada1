"""The outside robot (voice bot) system's side of «Робот» (manual §5.2.1 «Связь CRM с внешней
системой робота обзвона»).

The robot system authenticates as every API client does: a bearer token
(``sipspeak token create``) of an administrator, or of a supervisor for the projects he
supervises; a contact of another project is not found.  It writes to the contacts of
projects with «Робот» on only (409 ``robot_off`` otherwise: the project's setting, not the
caller's rights, stands in the way); what it reads, the caller's reports show already:

* ``PUT /api/v1/robot/contacts/{id}/status`` ``{"robot_status": "100 дней"}`` — the
  contact's «Статус робота», read-only on the card (§5.2.2) and a column of the contacts and
  calls reports and their downloads (§6.1, §6.2); ``null`` or ``""`` clears it.  The same
  status goes on the contact's latest robot call.
* ``GET /api/v1/robot/contacts/{id}`` — the contact the robot talks with (a robot call
  carries its id in ``X-Contact-Id``).
* ``GET /api/v1/robot/projects/{id}/contacts?limit=`` — the project's contacts due for a call
  now, as the dialer picks them (read only: nothing is claimed).

A status is one line of at most :data:`MAX_ROBOT_STATUS` characters.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..i18n import Text
from ..storage import NotFound, now_ms
from ..storage.models import Contact, Project
from .auth import STAFF, route, visible_project_ids
from .errors import ApiError, BadRequest, Invalid, json_ok
from .forms import json_object
from .pages import path_id, services_of

__all__ = ["MAX_ROBOT_STATUS", "robot_status_value", "setup_routes"]

MAX_ROBOT_STATUS = 200
"""A status is a short result («100 дней», «Перезвонить»), not a transcript."""
MAX_DUE = 1000
DEFAULT_DUE = 100
_ID = r"{id:\d+}"

CONTACT_OUT: dict[str, Any] = {"type": "object", "properties": {
    "id": {"type": "integer"}, "project_id": {"type": "integer"}, "phone": {"type": "string"},
    "full_name": {"type": "string"}, "region": {"type": "string"},
    "timezone": {"type": "string"}, "robot_status": {"type": ["string", "null"]},
    "dial_state": {"type": "string"}, "attempts": {"type": "integer"}}}
STATUS_IN: dict[str, Any] = {"type": "object", "required": ["robot_status"], "properties": {
    "robot_status": {"type": ["string", "null"], "maxLength": MAX_ROBOT_STATUS,
                     "examples": ["100 дней"], "description": "one line; null or empty clears"}}}
STATUS_OUT: dict[str, Any] = {"type": "object", "properties": {
    "contact_id": {"type": "integer"}, "project_id": {"type": "integer"},
    "robot_status": {"type": ["string", "null"]},
    "call_id": {"type": ["integer", "null"],
                "description": "the contact's latest robot call, which took the status too"}}}
DUE_OUT: dict[str, Any] = {"type": "object", "properties": {
    "items": {"type": "array", "items": CONTACT_OUT}}}


def robot_status_value(data: dict[str, Any]) -> str | None:
    """The status a request body sets: a string of one line (stripped), ``None`` to clear."""
    if "robot_status" not in data:
        raise Invalid(Text("robot.error.status_missing"), field="robot_status")
    value = data["robot_status"]
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(Text("robot.error.status_type"), field="robot_status")
    text = value.strip()
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise Invalid(Text("robot.error.status_line"), field="robot_status")
    if len(text) > MAX_ROBOT_STATUS:
        raise Invalid(Text("robot.error.status_long", max=MAX_ROBOT_STATUS),
                      field="robot_status")
    return text or None


async def _project(request: web.Request, project_id: int, *, robot: bool) -> Project:
    """A project the caller may see (else 404, as if it did not exist); with ``robot`` one
    with «Робот» on (else 409)."""
    visible = await visible_project_ids(request)
    if visible is not None and project_id not in visible:
        raise NotFound(Text("storage.error.project_not_found", id=project_id))
    project = await services_of(request).db.projects.get(project_id)
    if robot and not project.robot:
        raise ApiError(409, "robot_off", Text("robot.error.project_off", project=project.name))
    return project


async def _contact(request: web.Request, contact_id: int, *, robot: bool) -> Contact:
    """A contact of a project the caller may see (else 404); with ``robot`` of a project
    with «Робот» on (else 409)."""
    contact = await services_of(request).db.contacts.get(contact_id)
    try:
        await _project(request, contact.project_id, robot=robot)
    except NotFound:
        raise NotFound(Text("storage.error.contact_not_found", id=contact_id)) from None
    return contact


def contact_json(contact: Contact) -> dict[str, Any]:
    return {"id": contact.id, "project_id": contact.project_id, "phone": contact.phone,
            "full_name": contact.full_name or "", "region": contact.region or "",
            "timezone": contact.timezone or "", "robot_status": contact.robot_status,
            "dial_state": contact.dial_state, "attempts": contact.attempts}


async def api_set_status(request: web.Request) -> web.Response:
    """The robot system sets a contact's «Статус робота» (``null`` or empty clears it)."""
    contact = await _contact(request, path_id(request), robot=True)
    status = robot_status_value(await json_object(request))
    call_id = await services_of(request).db.robot.set_status(contact.id, status)
    return json_ok({"contact_id": contact.id, "project_id": contact.project_id,
                    "robot_status": status, "call_id": call_id})


async def api_contact(request: web.Request) -> web.Response:
    """A contact, as the robot system sees it (a robot call names it in ``X-Contact-Id``)."""
    return json_ok(contact_json(await _contact(request, path_id(request), robot=False)))


def _limit(request: web.Request) -> int:
    text = request.query.get("limit", "")
    if not text:
        return DEFAULT_DUE
    if not text.isdigit() or not 1 <= int(text) <= MAX_DUE:
        raise BadRequest(Text("robot.error.limit", max=MAX_DUE), field="limit")
    return int(text)


async def api_due(request: web.Request) -> web.Response:
    """The project's contacts due for a call now (read only; nothing is claimed)."""
    limit = _limit(request)
    project = await _project(request, path_id(request), robot=False)
    due = await services_of(request).db.contacts.due_for_dialling(
        project_id=project.id, now=now_ms(), limit=limit)
    return json_ok({"items": [contact_json(c) for c in due]})


def setup_routes(app: web.Application) -> None:
    route(app, "PUT", f"/api/v1/robot/contacts/{_ID}/status", api_set_status, roles=STAFF,
          api=True, request_schema=STATUS_IN, response_schema=STATUS_OUT)
    route(app, "GET", f"/api/v1/robot/contacts/{_ID}", api_contact, roles=STAFF, api=True,
          response_schema=CONTACT_OUT)
    route(app, "GET", f"/api/v1/robot/projects/{_ID}/contacts", api_due, roles=STAFF,
          api=True, response_schema=DUE_OUT, query=("limit",))

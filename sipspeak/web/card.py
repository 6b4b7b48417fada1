"""The client card over the REST API (manual §5.2.2, §6.1.1) and the contacts' «Удалить» (§6.1).

``GET /api/v1/contacts/{id}/card`` the card; ``PATCH`` the same path saves it (fields, the
project's extra fields under ``custom``, ``tags``, ``status_id``, ``operator_id``; with
``"finish_wrap_up": true`` the operator's «В карточке» ends once the save went through);
``POST …/comments``, ``POST …/tasks``, ``POST …/tasks/{task_id}/done``; ``GET …/calls``
(«Показать звонки»); ``DELETE /api/v1/contacts`` with ``{"ids": [...]}`` (staff only): those
being dialled are left and counted, and the whole delete is refused (409, nothing deleted)
when one of the contacts is in a call or on the card of an operator in wrap-up — what the
duplicate check leaves alone too (:mod:`.in_use`).

Who may: an administrator every contact, a supervisor those of the projects he supervises,
an operator those of the projects of his groups; another's contact answers 404 like a missing
one.  The handlers only read input and render: :mod:`sipspeak.crm.card` decides.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from aiohttp import web

from ..crm.card import MAX_DELETE, Card, CardError, CardService, parse_edit
from ..i18n import Text, message_of
from ..storage import Database, NotFound, now_ms
from .auth import ALL_ROLES, STAFF, current_user, route, visible_project_ids
from .card_access import visible_card
from .errors import ApiError, Invalid, json_ok
from .forms import json_object
from .in_use import in_use_now
from .leads import send_on_status
from .pages import path_id, services_of
from .profile import CARD_SAVED, set_agent_state
from .reports import call_center_zone
from .sanitize import sanitize_html

if TYPE_CHECKING:
    from ..app import Services

_STRING = {"type": "string"}
_INT = {"type": "integer"}
_NULL_INT = {"type": ["integer", "null"]}
_CHOICES = {"type": "array", "items": {"type": "object", "properties": {
    "id": _INT, "name": _STRING}}}
COMMENT_OUT = {"type": "object", "properties": {
    "id": _INT, "text": _STRING, "author": _STRING, "created_at": _INT}}
TASK_OUT = {"type": "object", "properties": {
    "id": _INT, "text": _STRING, "due_at": _INT, "auto_call": {"type": "boolean"},
    "operator_id": _NULL_INT, "operator_name": _STRING, "done_at": _NULL_INT,
    "created_at": _INT}}
CARD_OUT: dict[str, Any] = {"type": "object", "properties": {
    "contact_id": _INT, "project_id": _INT, "project_name": _STRING, "phone": _STRING,
    "fields": {"type": "object", "additionalProperties": _STRING},
    "tags": {"type": "array", "items": _STRING}, "robot_status": _STRING,
    "timezone": _STRING, "local_time": {"type": ["string", "null"]},
    "custom": {"type": "array", "items": {"type": "object", "properties": {
        "name": _STRING, "value": _STRING}}},
    "status_id": _NULL_INT, "statuses": _CHOICES, "operator_id": _NULL_INT,
    "operators": _CHOICES, "script_html": _STRING,
    "comments": {"type": "array", "items": COMMENT_OUT},
    "tasks": {"type": "array", "items": TASK_OUT}, "dial_state": _STRING,
    "updated_at": _INT}}
CARD_IN: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": {
    **{name: {"type": ["string", "null"]} for name in (
        "full_name", "position", "email", "city", "birth_date", "address", "description")},
    "custom": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
    "tags": {"type": ["array", "string"], "items": _STRING},
    "status_id": _NULL_INT, "operator_id": _NULL_INT,
    "finish_wrap_up": {"type": "boolean"}}}
COMMENT_IN = {"type": "object", "required": ["text"], "properties": {"text": _STRING}}
TASK_IN = {"type": "object", "required": ["due_at"], "properties": {
    "text": _STRING, "due_at": {"type": "integer", "description": "epoch milliseconds"},
    "auto_call": {"type": "boolean"}, "operator_id": _NULL_INT}}
CALLS_OUT = {"type": "object", "properties": {"items": {"type": "array", "items": {
    "type": "object", "properties": {
        "id": _INT, "started_at": _INT, "started": _STRING, "direction": _STRING,
        "kind": _STRING, "phone": _STRING, "duration_ms": _INT, "talk_ms": _INT,
        "result": _STRING, "client_status": _STRING, "operator_status": _STRING,
        "project_name": _STRING, "operator_name": _STRING, "recording": {"type": "boolean"},
        "recording_url": {"type": ["string", "null"]}}}}}}
COMMENTS_OUT = {"type": "object", "properties": {
    "id": _INT, "comments": {"type": "array", "items": COMMENT_OUT}}}
TASKS_OUT = {"type": "object", "properties": {
    "id": _INT, "tasks": {"type": "array", "items": TASK_OUT}}}
DELETE_IN = {"type": "object", "required": ["ids"], "properties": {
    "ids": {"type": "array", "items": _INT}}}
DELETE_OUT = {"type": "object", "properties": {
    "deleted": _INT, "skipped": _INT, "dialing": _INT, "ids": {"type": "array", "items": _INT}}}


def _service(request: web.Request) -> CardService:
    return CardService(services_of(request).db)


def card_json(card: Card) -> dict[str, Any]:
    body = asdict(card)
    # Stored sanitised; cleaned again on the way out, as the operator's browser renders it.
    body["script_html"] = sanitize_html(card.script_html)
    return body


def _invalid(exc: CardError) -> Invalid:
    return Invalid(message_of(exc), field=exc.field)


async def _card(request: web.Request, contact_id: int) -> Card:
    return await visible_card(request, contact_id)


async def api_card(request: web.Request) -> web.Response:
    """The client card of a contact (§6.1.1)."""
    return json_ok(card_json(await _card(request, path_id(request))))


async def api_card_save(request: web.Request) -> web.Response:
    """«Сохранить»: the card's fields, extra fields, tags, status and operator."""
    data = await json_object(request)
    finish = data.pop("finish_wrap_up", False)
    if not isinstance(finish, bool):
        raise Invalid(Text("card.error.finish"), field="finish_wrap_up")
    contact_id = path_id(request)
    zone = ZoneInfo(call_center_zone(request))
    service, visible = _service(request), await visible_project_ids(request)
    await service.contact(contact_id, visible)  # someone else's: 404 whatever was sent
    try:
        before, written = await service.save(
            contact_id, parse_edit(data, today=datetime.now(zone).date()), visible=visible)
    except CardError as exc:
        raise _invalid(exc) from None
    if finish:
        await set_agent_state(services_of(request), current_user(request), CARD_SAVED)
    card = await _card(request, contact_id)
    await send_on_status(request, card, before, written)  # «Статус CRM»: the lead goes out
    return json_ok(card_json(card))


async def api_comment_add(request: web.Request) -> web.Response:
    """«Комментарии» → «Добавить»."""
    data = await json_object(request)
    contact_id = path_id(request)
    try:
        comment_id = await _service(request).add_comment(
            contact_id, data.get("text"), visible=await visible_project_ids(request),
            author=current_user(request))
    except CardError as exc:
        raise _invalid(exc) from None
    card = await _card(request, contact_id)
    return json_ok({"id": comment_id,
                    "comments": [asdict(c) for c in card.comments]}, status=201)


async def api_task_add(request: web.Request) -> web.Response:
    """«Задачи» → «Добавить»: text, reminder time, automatic call, operator."""
    data = await json_object(request)
    contact_id = path_id(request)
    try:
        task_id = await _service(request).add_task(
            contact_id, data, visible=await visible_project_ids(request),
            author=current_user(request), now_ms=now_ms())
    except CardError as exc:
        raise _invalid(exc) from None
    card = await _card(request, contact_id)
    return json_ok({"id": task_id, "tasks": [asdict(t) for t in card.tasks]}, status=201)


async def api_task_done(request: web.Request) -> web.Response:
    """Mark a task of the contact done."""
    contact_id = path_id(request)
    await _service(request).complete_task(contact_id, path_id(request, "task_id"),
                                          visible=await visible_project_ids(request))
    card = await _card(request, contact_id)
    return json_ok({"tasks": [asdict(t) for t in card.tasks]})


async def api_calls(request: web.Request) -> web.Response:
    """«Показать звонки»: the calls of the contact's number."""
    calls = await _service(request).calls(path_id(request),
                                          visible=await visible_project_ids(request),
                                          viewer=current_user(request))
    zone = ZoneInfo(call_center_zone(request))
    # Recordings are played where the calls report serves them: to staff.
    listens = current_user(request).role in STAFF
    return json_ok({"items": [
        {**asdict(c), "started": datetime.fromtimestamp(c.started_at / 1000, zone)
         .strftime("%d-%m-%Y %H:%M"),
         "recording_url": f"/reports/calls/{c.id}/recording" if c.recording and listens
         else None} for c in calls]})


async def api_delete(request: web.Request) -> web.Response:
    """«Удалить»: the chosen contacts, except those being dialled right now; none of them
    when one is in a call or on the card of an operator in wrap-up (409)."""
    data = await json_object(request)
    ids = data.get("ids")
    if not isinstance(ids, list) or any(
            isinstance(i, bool) or not isinstance(i, int) or i < 1 for i in ids):
        raise Invalid(Text("card.error.ids"), field="ids")
    services, visible = services_of(request), await visible_project_ids(request)
    async with services.db.transaction():
        # Asked once the write lock is taken: a call ending meanwhile cannot write its end
        # before the delete is done, so its row still shows it in progress.
        if len(set(ids)) <= MAX_DELETE:  # more: refused below without looking
            await _refuse_in_use(services, ids, visible)
        try:
            result = await _service(request).delete(ids, visible=visible)
        except CardError as exc:
            raise _invalid(exc) from None
    return json_ok(asdict(result))


async def _refuse_in_use(services: Services, ids: list[int],
                         visible: set[int] | None) -> None:
    """409 naming the first of the caller's contacts among ``ids`` that is in use as the
    duplicate check counts it (:meth:`~sipspeak.storage.repositories.contacts.ContactsRepo.in_use_among`):
    in a call, or on the card the workspace keeps open for an operator in wrap-up."""
    now = in_use_now(services)
    busy = await services.db.contacts.in_use_among(
        ids, in_use=now.contacts, wrap_up_operators=now.wrap_up_operators)
    for contact_id in dict.fromkeys(ids):
        why = busy.get(contact_id)
        if why is None or not await _theirs(services.db, contact_id, visible):
            continue
        if why == "card":
            raise ApiError(409, "in_use", Text("card.error.in_wrap_up", id=contact_id))
        raise ApiError(409, "in_use", Text("card.error.in_call", id=contact_id))


async def _theirs(db: Database, contact_id: int, visible: set[int] | None) -> bool:
    """Whether the caller may see the contact (another's is neither named nor deleted)."""
    if visible is None:
        return True
    try:
        return (await db.contacts.get(contact_id)).project_id in visible
    except NotFound:
        return False


def setup_routes(app: web.Application) -> None:
    card = r"/api/v1/contacts/{id:\d+}"
    route(app, "GET", f"{card}/card", api_card, roles=ALL_ROLES, api=True,
          response_schema=CARD_OUT)
    route(app, "PATCH", f"{card}/card", api_card_save, roles=ALL_ROLES, api=True,
          request_schema=CARD_IN, response_schema=CARD_OUT)
    route(app, "POST", f"{card}/comments", api_comment_add, roles=ALL_ROLES, api=True,
          request_schema=COMMENT_IN, response_schema=COMMENTS_OUT)
    route(app, "POST", f"{card}/tasks", api_task_add, roles=ALL_ROLES, api=True,
          request_schema=TASK_IN, response_schema=TASKS_OUT)
    route(app, "POST", card + r"/tasks/{task_id:\d+}/done", api_task_done, roles=ALL_ROLES,
          api=True, response_schema=TASKS_OUT)
    route(app, "GET", f"{card}/calls", api_calls, roles=ALL_ROLES, api=True,
          response_schema=CALLS_OUT)
    route(app, "DELETE", "/api/v1/contacts", api_delete, roles=STAFF, api=True,
          request_schema=DELETE_IN, response_schema=DELETE_OUT)

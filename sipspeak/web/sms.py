"""The client card's «SMS» tab: the project's SMS template filled in from the card, sent.

``GET /api/v1/contacts/{id}/sms`` is the draft (to, text; ``available`` tells whether
``[sms]`` is set up); ``POST`` the same path with ``{text}`` sends it to the contact's number
through :mod:`sipspeak.integrations.sms` and notes it in the card's comments.  Who may:
whoever may see the card; an operator who is not shown the project's numbers still sends to
the contact's number without seeing it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..i18n import Text, message_of
from ..integrations import sms
from ..integrations.placeholders import card_values, fill, with_phone
from .auth import ALL_ROLES, current_user, route
from .card_access import center_language, visible_card
from .errors import ApiError, Invalid, json_ok
from .forms import json_object
from .pages import services_of

__all__ = ["setup_routes"]

DRAFT_OUT: dict[str, Any] = {"type": "object", "properties": {
    "available": {"type": "boolean"}, "to": {"type": "string"}, "text": {"type": "string"}}}
SEND_IN: dict[str, Any] = {"type": "object", "required": ["text"], "properties": {
    "text": {"type": "string", "maxLength": sms.MAX_TEXT}}}


async def api_sms_draft(request: web.Request) -> web.Response:
    """The card's SMS from the project's template, to edit before sending."""
    card = await visible_card(request)
    project = await services_of(request).db.projects.get(card.project_id)
    text = fill(project.sms_template, card_values(card, operator=current_user(request).full_name))
    return json_ok({"available": sms.configured(services_of(request).config),
                    "to": card.phone, "text": text[:sms.MAX_TEXT]})


async def api_sms_send(request: web.Request) -> web.Response:
    """Send the SMS to the contact's number; it is noted in the card's comments."""
    data = await json_object(request)
    card = await visible_card(request)
    services = services_of(request)
    text = data.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > sms.MAX_TEXT:
        raise Invalid(Text("sms.error.text", limit=sms.MAX_TEXT), field="text")
    if not sms.configured(services.config):
        raise ApiError(503, "unavailable", Text("sms.error.unavailable"))
    contact = await services.db.contacts.get(card.contact_id)  # the number, even if masked
    try:
        await sms.send(services.config, to=contact.phone,
                       text=with_phone(text.strip(), contact.phone))
    except sms.SmsError as exc:
        raise ApiError(502, "sms_failed", message_of(exc)) from None
    language = center_language(request)
    await services.db.comments.add(
        contact_id=card.contact_id, user_id=current_user(request).id,
        text=Text("sms.comment.sent", to=card.phone, text=text.strip()).render(language))
    return json_ok({"sent": True})


def setup_routes(app: web.Application) -> None:
    path = r"/api/v1/contacts/{id:\d+}/sms"
    route(app, "GET", path, api_sms_draft, roles=ALL_ROLES, api=True, response_schema=DRAFT_OUT)
    route(app, "POST", path, api_sms_send, roles=ALL_ROLES, api=True, request_schema=SEND_IN)

"""The client card's «E-mail» tab: the project's template filled in from the card, sent.

``GET /api/v1/contacts/{id}/email`` is the draft (to, subject, body; ``available`` tells
whether ``[smtp]`` is set up); ``POST`` the same path with ``{subject, body}`` sends it to the
contact's e-mail address through :mod:`sipspeak.integrations.mail` and notes it in the card's
comments.  Who may: whoever may see the card.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..crm.card import Card
from ..i18n import Text, message_of
from ..integrations import mail
from ..integrations.placeholders import card_values, with_phone
from .auth import ALL_ROLES, current_user, route
from .card_access import center_language, visible_card
from .errors import ApiError, Invalid, json_ok
from .forms import json_object
from .pages import services_of

__all__ = ["setup_routes"]

DRAFT_OUT: dict[str, Any] = {"type": "object", "properties": {
    "available": {"type": "boolean"}, "to": {"type": "string"},
    "subject": {"type": "string"}, "body": {"type": "string"}}}
SEND_IN: dict[str, Any] = {"type": "object", "required": ["subject", "body"], "properties": {
    "subject": {"type": "string", "maxLength": mail.MAX_SUBJECT},
    "body": {"type": "string", "maxLength": mail.MAX_BODY}}}


async def _draft(request: web.Request, card: Card) -> mail.Draft:
    project = await services_of(request).db.projects.get(card.project_id)
    values = card_values(card, operator=current_user(request).full_name)
    return mail.render(project.email_template, values, default_subject=card.project_name)


async def api_email_draft(request: web.Request) -> web.Response:
    """The card's e-mail from the project's template, to edit before sending."""
    card = await visible_card(request)
    draft = await _draft(request, card)
    return json_ok({"available": mail.configured(services_of(request).config),
                    "to": card.fields.get("email", ""), "subject": draft.subject,
                    "body": draft.body})


async def api_email_send(request: web.Request) -> web.Response:
    """Send the e-mail to the contact; it is noted in the card's comments."""
    data = await json_object(request)
    card = await visible_card(request)
    services = services_of(request)
    subject, body = data.get("subject"), data.get("body")
    if (not isinstance(subject, str) or not subject.strip() or len(subject) > mail.MAX_SUBJECT
            or "\n" in subject or "\r" in subject):  # no header of one's own (Bcc: …)
        raise Invalid(Text("mail.error.subject"), field="subject")
    if not isinstance(body, str) or not body.strip() or len(body) > mail.MAX_BODY:
        raise Invalid(Text("mail.error.body"), field="body")
    to = card.fields.get("email", "")
    if not to or not mail.valid_address(to):
        raise Invalid(Text("mail.error.no_address"), field="email")
    if not mail.configured(services.config):
        raise ApiError(503, "unavailable", Text("mail.error.unavailable"))
    contact = await services.db.contacts.get(card.contact_id)  # the number, even if masked
    draft = mail.Draft(subject=with_phone(subject.strip(), contact.phone),
                       body=with_phone(body, contact.phone))
    try:
        await mail.send(services.config, mail.message(
            services.config, to=to, draft=draft, to_name=card.fields.get("full_name", "")))
    except mail.MailError as exc:
        raise ApiError(502, "mail_failed", message_of(exc)) from None
    user = current_user(request)
    language = center_language(request)
    await services.db.comments.add(
        contact_id=card.contact_id, user_id=user.id,
        text=Text("mail.comment.sent", to=to, subject=draft.subject).render(language))
    return json_ok({"sent": True, "to": to})


def setup_routes(app: web.Application) -> None:
    path = r"/api/v1/contacts/{id:\d+}/email"
    route(app, "GET", path, api_email_draft, roles=ALL_ROLES, api=True,
          response_schema=DRAFT_OUT)
    route(app, "POST", path, api_email_send, roles=ALL_ROLES, api=True,
          request_schema=SEND_IN)

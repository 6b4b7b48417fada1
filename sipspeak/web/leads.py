"""«Отправить заявку»: a client card as a lead for the project's CRM (manual §5.2.7).

``POST /api/v1/contacts/{id}/lead`` stores the card's lead in the outbox
(:class:`~sipspeak.integrations.outbox.LeadOutbox`), which delivers it; the answer is 202 with
the lead's id.  :func:`send_on_status` does the same by itself when a saved card takes the
project's «Статус CRM».  Who may: whoever may see the card.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..crm.card import Card
from ..i18n import Text, translate
from ..integrations.bitrix import configured
from ..storage.models import User
from .auth import ALL_ROLES, current_user, route
from .card_access import center_language, visible_card
from .errors import ApiError, Invalid, json_ok
from .pages import services_of

__all__ = ["lead_notes", "send_on_status", "setup_routes"]

LEAD_OUT: dict[str, Any] = {"type": "object", "properties": {"lead_id": {"type": "integer"}}}


def lead_notes(card: Card, language: str) -> list[tuple[str, str]]:
    """What of the card goes to the lead's comments: its extra fields, status, operator and
    latest comment, labelled in ``language``."""
    status = next((s.name for s in card.statuses if s.id == card.status_id), "")
    operator = next((o.name for o in card.operators if o.id == card.operator_id), "")
    notes = [(c.name, c.value) for c in card.custom]
    notes += [(translate("crm.label.status", language), status),
              (translate("crm.label.operator", language), operator)]
    if card.comments:
        latest = max(card.comments, key=lambda c: (c.created_at, c.id))
        notes.append((translate("crm.label.comment", language), latest.text))
    return notes


async def _submit(request: web.Request, card: Card, user: User) -> int:
    services = services_of(request)
    outbox = getattr(services, "leads", None)
    if outbox is None:
        raise ApiError(503, "unavailable", Text("crm.error.unavailable"))
    project = await services.db.projects.get(card.project_id)
    if not configured(project):
        raise Invalid(Text("crm.error.not_configured"), field="project")
    contact = await services.db.contacts.get(card.contact_id)
    language = center_language(request)
    lead_id: int = await outbox.submit(project, contact, user_id=user.id,
                                       notes=lead_notes(card, language))
    return lead_id


async def send_on_status(request: web.Request, card: Card, previous_status: int | None,
                         written_status: int | None) -> None:
    """After a card was saved: a lead when this save moved it to the project's «Статус
    CRM» (judged from what the save itself read and wrote, not from a later read another
    save may have changed).  Without CRM settings or a running outbox nothing is sent (the
    save itself stands)."""
    if written_status is None or written_status == previous_status:
        return
    services = services_of(request)
    project = await services.db.projects.get(card.project_id)
    if project.crm_status_id != written_status or not configured(project):
        return
    if getattr(services, "leads", None) is not None:
        await _submit(request, card, current_user(request))


async def api_send_lead(request: web.Request) -> web.Response:
    """«Отправить заявку»: the card as a lead for the project's CRM (delivered in turn)."""
    user = current_user(request)
    card = await visible_card(request)
    return json_ok({"lead_id": await _submit(request, card, user)}, status=202)


def setup_routes(app: web.Application) -> None:
    route(app, "POST", r"/api/v1/contacts/{id:\d+}/lead", api_send_lead, roles=ALL_ROLES,
          api=True, response_schema=LEAD_OUT)

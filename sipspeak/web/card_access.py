"""The client card as the signed-in user may see it, for every page and API that acts on one
(the card itself, «Отправить заявку», «E-mail», «SMS»)."""

from __future__ import annotations

from aiohttp import web

from ..crm.card import Card, CardService
from ..storage import now_ms
from .auth import current_user, visible_project_ids
from .pages import path_id, services_of

__all__ = ["center_language", "visible_card"]


async def visible_card(request: web.Request, contact_id: int | None = None) -> Card:
    """The card of ``contact_id`` (by default the path's ``{id}``); 404 for a contact the
    caller may not see, never a hint that it exists."""
    return await CardService(services_of(request).db).card(
        path_id(request) if contact_id is None else contact_id,
        visible=await visible_project_ids(request), viewer=current_user(request),
        now_ms=now_ms())


def center_language(request: web.Request) -> str:
    """The call center's language ([general] language): what goes into a card's history
    and to outside systems, whoever pressed the button."""
    return str(services_of(request).config.get("general", "language") or "ru")

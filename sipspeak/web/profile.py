"""Dashboard, the header's operator status and notifications, the profile menu pages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..i18n import LANGUAGES, Text
from ..security import new_api_token
from ..storage import NotFound, now_ms
from ..storage.models import User
from .auth import ALL_ROLES, current_user, redirect, route, safe_next
from .errors import Invalid, json_ok
from .forms import Fields
from .layout import AGENT_STATES, current_agent_state, render

if TYPE_CHECKING:
    from ..app import Services


def _services(request: web.Request) -> Services:
    from .app import SERVICES

    return request.app[SERVICES]


CARD_SAVED = "card_saved"
"""The state an operator posts when he is done with the client card: his wrap-up ends."""


async def set_agent_state(services: Services, user: User, state: str) -> dict[str, Any]:
    """Tell the dialer the operator's new state (``agent.state`` on the bus).

    With the campaign runtime running, it is the one writer of the status history (it also
    knows the states calls bring: ringing, talking, wrap-up); without it, the chosen state is
    recorded here so the history and the header still follow the operator's choice.
    """
    if state not in AGENT_STATES and state not in ("logged_out", CARD_SAVED):
        raise Invalid(Text("profile.error.state", states=", ".join(AGENT_STATES)), field="state")
    at = now_ms()
    if state == CARD_SAVED:
        # The end of «В карточке»: a fact for the dialer, not a status of its own.
        services.bus.publish("agent.state", user_id=user.id, state=state, at=at)
        return {"user_id": user.id, "state": await current_agent_state(services, user.id),
                "at": at}
    if getattr(services, "campaigns", None) is None:
        await services.db.intervals.start(user_id=user.id, state=state, at=at)
    services.bus.publish("agent.state", user_id=user.id, state=state, at=at)
    return {"user_id": user.id, "state": state, "at": at}


async def devices_page(request: web.Request) -> web.Response:
    """Device check: microphone and speaker."""
    return await render(request, "profile/devices.html", {})


async def language_submit(request: web.Request) -> web.Response:
    """Change the UI language of the signed-in user."""
    fields = await Fields.read(request)
    await _change_language(request, fields)
    referer = request.headers.get("Referer", "")
    origin = f"{request.scheme}://{request.host}"
    target = referer[len(origin):] if referer.startswith(origin + "/") else "/"
    return redirect(safe_next(target))


async def _change_language(request: web.Request, fields: Fields) -> str:
    language = fields.text("language")
    if language not in LANGUAGES:
        raise Invalid(Text("profile.error.language", languages=", ".join(LANGUAGES)),
                      field="language")
    await _services(request).db.users.update(current_user(request).id, language=language)
    return language


async def api_me(request: web.Request) -> web.Response:
    """The signed-in user."""
    user = current_user(request)
    services = _services(request)
    return json_ok({"id": user.id, "role": user.role, "full_name": user.full_name,
                    "email": user.email, "language": user.language,
                    "state": await current_agent_state(services, user.id)})


async def api_language(request: web.Request) -> web.Response:
    """Change the UI language of the signed-in user."""
    language = await _change_language(request, await Fields.read(request))
    return json_ok({"language": language})


async def api_agent_state_get(request: web.Request) -> web.Response:
    """The operator's current state."""
    user = current_user(request)
    return json_ok({"user_id": user.id,
                    "state": await current_agent_state(_services(request), user.id)})


async def api_agent_state_set(request: web.Request) -> web.Response:
    """Switch the operator's state (Не в сети / Доступен / Пауза / Не беспокоить)."""
    fields = await Fields.read(request)
    result = await set_agent_state(_services(request), current_user(request),
                                   fields.text("state", max_len=20))
    return json_ok(result)


async def api_notifications(request: web.Request) -> web.Response:
    """Unread notifications of the signed-in user."""
    items = await _services(request).db.notifications.unread(current_user(request).id)
    return json_ok({"items": [{"id": n.id, "level": n.level, "text": n.text,
                               "created_at": n.created_at} for n in items]})


async def api_notification_read(request: web.Request) -> web.Response:
    """Mark one notification read."""
    user = current_user(request)
    db = _services(request).db
    notification_id = int(request.match_info["id"])
    if notification_id not in {n.id for n in await db.notifications.unread(user.id)}:
        raise NotFound(Text("profile.error.notification"))
    await db.notifications.mark_read(notification_id)
    return json_ok({"id": notification_id, "read": True})


async def api_tokens(request: web.Request) -> web.Response:
    """The caller's API tokens (never the tokens themselves)."""
    tokens = await _services(request).db.tokens.list_for(current_user(request).id)
    return json_ok({"items": [{"id": t.id, "name": t.name, "created_at": t.created_at,
                               "last_used_at": t.last_used_at, "revoked": t.revoked_at is not None}
                              for t in tokens]})


async def api_token_create(request: web.Request) -> web.Response:
    """A new API token for the caller; the token is shown in this answer only."""
    name = (await Fields.read(request)).text("name", max_len=100)
    token, digest = new_api_token()
    token_id = await _services(request).db.tokens.create(user_id=current_user(request).id,
                                                         token_hash=digest, name=name)
    return json_ok({"id": token_id, "name": name, "token": token}, status=201)


async def api_token_revoke(request: web.Request) -> web.Response:
    """Revoke one of the caller's tokens."""
    db = _services(request).db
    token_id = int(request.match_info["id"])
    mine = {t.id for t in await db.tokens.list_for(current_user(request).id)}
    if token_id not in mine:
        raise NotFound(Text("profile.error.token"))
    await db.tokens.revoke(token_id)
    return json_ok({"id": token_id, "revoked": True})


_STATE_SCHEMA = {"type": "object", "required": ["state"],
                 "properties": {"state": {"type": "string", "enum": list(AGENT_STATES)}}}
_STATE_IN = {"type": "object", "required": ["state"], "properties": {
    "state": {"type": "string", "enum": [*AGENT_STATES, CARD_SAVED]}}}


def setup_routes(app: web.Application) -> None:
    route(app, "GET", "/profile/devices", devices_page, roles=ALL_ROLES, name="profile.devices")
    route(app, "POST", "/profile/language", language_submit, roles=ALL_ROLES)
    route(app, "GET", "/api/v1/me", api_me, roles=ALL_ROLES, api=True)
    route(app, "POST", "/api/v1/me/language", api_language, roles=ALL_ROLES, api=True,
          request_schema={"type": "object", "required": ["language"],
                          "properties": {"language": {"type": "string", "enum": list(LANGUAGES)}}})
    route(app, "GET", "/api/v1/agent/state", api_agent_state_get, roles=ALL_ROLES, api=True,
          response_schema=_STATE_SCHEMA)
    route(app, "POST", "/api/v1/agent/state", api_agent_state_set, roles=ALL_ROLES, api=True,
          request_schema=_STATE_IN, response_schema=_STATE_SCHEMA)
    route(app, "GET", "/api/v1/tokens", api_tokens, roles=ALL_ROLES, api=True)
    route(app, "POST", "/api/v1/tokens", api_token_create, roles=ALL_ROLES, api=True,
          request_schema={"type": "object", "properties": {"name": {"type": "string"}}},
          response_schema={"type": "object", "properties": {
              "id": {"type": "integer"}, "name": {"type": "string"}, "token": {"type": "string"}}})
    route(app, "DELETE", r"/api/v1/tokens/{id:\d+}", api_token_revoke, roles=ALL_ROLES, api=True)
    route(app, "GET", "/api/v1/notifications", api_notifications, roles=ALL_ROLES, api=True)
    route(app, "POST", r"/api/v1/notifications/{id:\d+}/read", api_notification_read,
          roles=ALL_ROLES, api=True)

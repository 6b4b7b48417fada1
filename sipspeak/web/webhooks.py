"""Settings → Вебхуки: the endpoints call events are POSTed to; pages and /api/v1/webhooks.

An endpoint has a name, an http(s) URL, the event types it takes, a secret the bodies are
signed with (HMAC-SHA256, :mod:`sipspeak.integrations.webhooks`), an active switch and
whether it may have the customer's number whole where a project hides numbers.  «Проверить»
sends a ``webhook.test`` event at once and shows what the receiver answered.  The secret is
never shown back (an empty one on save keeps it); the add form offers a random one.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from typing import Any

from aiohttp import web
from yarl import URL

from ..i18n import Text
from ..integrations.webhook_outbox import Answer, send_test
from ..integrations.webhooks import DEFAULT_EVENTS, EVENT_TYPES, SIGNATURE_HEADER
from ..storage.models import Webhook
from .auth import ADMIN, route
from .errors import ApiError, Invalid, json_ok
from .forms import Fields, json_object
from .layout import language_of, render
from .pages import error_text, form_post, notice, path_id, services_of

_ID = r"{id:\d+}"
MAX_NAME = 100
MAX_URL = 2000
MIN_SECRET = 16
MAX_SECRET = 256
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?$")

WEBHOOK_OUT: dict[str, Any] = {"type": "object", "properties": {
    "id": {"type": "integer"}, "name": {"type": "string"}, "url": {"type": "string"},
    "events": {"type": "array", "items": {"type": "string", "enum": list(EVENT_TYPES)}},
    "active": {"type": "boolean"}, "full_numbers": {"type": "boolean"},
    "failing_since": {"type": ["integer", "null"]}, "last_error": {"type": "string"},
    "pending": {"type": "integer"}}}
WEBHOOK_IN: dict[str, Any] = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": MAX_NAME},
    "url": {"type": "string", "maxLength": MAX_URL,
            "examples": ["https://crm.example.ru/hooks/sipspeak"]},
    "events": {"type": "array", "items": {"type": "string", "enum": list(EVENT_TYPES)}},
    "secret": {"type": "string", "minLength": MIN_SECRET, "maxLength": MAX_SECRET},
    "active": {"type": "boolean"}, "full_numbers": {"type": "boolean"}}}
ANSWER_OUT: dict[str, Any] = {"type": "object", "properties": {
    "ok": {"type": "boolean"}, "status": {"type": ["integer", "null"]},
    "body": {"type": "string"}, "error": {"type": "string"}}}
DELIVERY_OUT: dict[str, Any] = {"type": "object", "properties": {
    "id": {"type": "integer"}, "webhook_id": {"type": "integer"},
    "event_id": {"type": "string"}, "event_type": {"type": "string"},
    "state": {"type": "string", "enum": ["pending", "sent", "failed"]},
    "attempts": {"type": "integer"}, "next_attempt_at": {"type": "integer"},
    "last_status": {"type": ["integer", "null"]}, "error": {"type": "string"},
    "created_at": {"type": "integer"}, "sent_at": {"type": ["integer", "null"]}}}


# -- input ----------------------------------------------------------------------------------------


def check_url(text: str) -> str:
    """An absolute http(s) URL with a valid host, no login in it and no fragment."""
    value = text.strip()
    if not value:
        raise Invalid(Text("webhooks.error.url_empty"), field="url")
    if any(c.isspace() for c in value) or any(ord(c) < 32 for c in value):
        raise Invalid(Text("webhooks.error.url_invalid"), field="url")
    try:
        url = URL(value)
        port = url.port
    except (ValueError, TypeError):
        raise Invalid(Text("webhooks.error.url_invalid"), field="url") from None
    if url.scheme not in ("http", "https"):
        raise Invalid(Text("webhooks.error.url_scheme"), field="url")
    host = url.raw_host or ""
    if not host:
        raise Invalid(Text("webhooks.error.url_host"), field="url")
    if url.raw_user is not None or url.raw_password is not None:
        raise Invalid(Text("webhooks.error.url_credentials"), field="url")
    if url.raw_fragment:
        raise Invalid(Text("webhooks.error.url_fragment"), field="url")
    if port is None or not 1 <= port <= 65535:
        raise Invalid(Text("webhooks.error.url_port"), field="url")
    if not _valid_host(host):
        raise Invalid(Text("webhooks.error.url_host"), field="url")
    return value


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", host):
        return False  # digits and dots that are not an IPv4 address
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_host.rstrip(".").split(".")
    return len(ascii_host) <= 253 and all(_LABEL.match(label) for label in labels)


def _name(fields: Fields) -> str:
    name = fields.text("name", max_len=500)
    if not name:
        raise Invalid(Text("webhooks.error.name_empty"), field="name")
    if len(name) > MAX_NAME:
        raise Invalid(Text("people.error.name_long", max=MAX_NAME), field="name")
    return name


def _secret(fields: Fields, *, required: bool) -> str | None:
    """The secret as typed; None (keep the old one) when empty on a change."""
    secret = fields.secret("secret", max_len=10_000)
    if not secret:
        if required:
            raise Invalid(Text("webhooks.error.secret_short", min=MIN_SECRET), field="secret")
        return None
    if len(secret) < MIN_SECRET:
        raise Invalid(Text("webhooks.error.secret_short", min=MIN_SECRET), field="secret")
    if len(secret) > MAX_SECRET:
        raise Invalid(Text("webhooks.error.secret_long", max=MAX_SECRET), field="secret")
    if secret != secret.strip() or not secret.isprintable():
        raise Invalid(Text("webhooks.error.secret_chars"), field="secret")
    return secret


def event_list(value: object) -> list[str]:
    """Event types from a JSON list, a form's repeated field or a comma/space separated text:
    known ones only, at least one, each once, in the catalogue's order."""
    if isinstance(value, str):
        items: list[object] = [v for v in re.split(r"[\s,]+", value) if v]
    elif isinstance(value, list):
        items = list(value)
    else:
        raise Invalid(Text("webhooks.error.events_type"), field="events")
    for item in items:
        if not isinstance(item, str):
            raise Invalid(Text("webhooks.error.events_type"), field="events")
        if item not in EVENT_TYPES:
            raise Invalid(Text("webhooks.error.event_unknown", event=item[:60]), field="events")
    if not items:
        raise Invalid(Text("webhooks.error.events_empty"), field="events")
    return [e for e in EVENT_TYPES if e in items]


class WebhookInput:
    """A request's fields and its event types (None: not given, so not changed)."""

    def __init__(self, fields: Fields, events: list[str] | None) -> None:
        self.fields = fields
        self.events = events

    @classmethod
    async def read(cls, request: web.Request) -> WebhookInput:
        if request.content_type == "application/json":
            data = await json_object(request)
            events = event_list(data["events"]) if "events" in data else None
            return cls(Fields.of(data), events)
        fields = await Fields.read(request)
        form = await request.post()
        # Checkboxes: none ticked is absent from the form, which is "no events" (refused).
        return cls(fields, event_list([str(v) for v in form.getall("events", [])]))


async def create_webhook(request: web.Request, given: WebhookInput) -> int:
    fields = given.fields
    name = _name(fields)
    url = check_url(fields.text("url", max_len=MAX_URL))
    events = given.events if given.events is not None else list(DEFAULT_EVENTS)
    secret = _secret(fields, required=True)
    assert secret is not None
    return await services_of(request).db.webhooks.create(
        name=name, url=url, events=events, secret=secret,
        active=fields.flag("active", True), full_numbers=fields.flag("full_numbers", False))


async def update_webhook(request: web.Request, webhook_id: int, given: WebhookInput) -> Webhook:
    db = services_of(request).db
    await db.webhooks.get(webhook_id)
    fields = given.fields
    changes: dict[str, object] = {}
    if fields.has("name"):
        changes["name"] = _name(fields)
    if fields.has("url"):
        changes["url"] = check_url(fields.text("url", max_len=MAX_URL))
    if given.events is not None:
        changes["events"] = given.events
    secret = _secret(fields, required=False)
    if secret is not None:
        changes["secret"] = secret
    for flag in ("active", "full_numbers"):
        value = fields.optional_flag(flag)
        if value is not None:
            changes[flag] = value
    await db.webhooks.update(webhook_id, **changes)
    return await db.webhooks.get(webhook_id)


async def test_webhook(request: web.Request, webhook_id: int) -> Answer:
    services = services_of(request)
    hook = await services.db.webhooks.get(webhook_id)
    return await send_test(hook, timeout_s=float(services.config.get("webhooks", "timeout")))


def webhook_json(hook: Webhook, pending: int = 0) -> dict[str, Any]:
    return {"id": hook.id, "name": hook.name, "url": hook.url, "events": list(hook.event_types),
            "active": hook.active, "full_numbers": hook.full_numbers,
            "failing_since": hook.failing_since, "last_error": hook.last_error,
            "pending": pending}


def answer_json(answer: Answer) -> dict[str, Any]:
    return {"ok": answer.ok, "status": answer.status, "body": answer.body,
            "error": answer.error}


# -- pages ------------------------------------------------------------------------------------------


async def _context(request: web.Request) -> dict[str, Any]:
    db = services_of(request).db
    return {"webhooks": await db.webhooks.list(),
            "pending": await db.webhook_deliveries.pending_counts(),
            "event_types": EVENT_TYPES, "default_events": DEFAULT_EVENTS,
            "new_secret": secrets.token_urlsafe(24), "signature_header": SIGNATURE_HEADER,
            "notice": notice(request, "webhooks")}


async def webhooks_page(request: web.Request) -> web.Response:
    """Webhooks: add, edit, switch off, remove, test."""
    return await render(request, "settings/webhooks.html", await _context(request))


async def _failed(request: web.Request, error: ApiError) -> web.Response:
    context = await _context(request)
    context["error"] = error_text(request, error)
    return await render(request, "settings/webhooks.html", context, status=error.status)


async def webhook_create(request: web.Request) -> web.Response:
    async def run() -> str:
        await create_webhook(request, await WebhookInput.read(request))
        return "/settings/webhooks?ok=created"

    return await form_post(request, run, lambda e: _failed(request, e))


async def webhook_save(request: web.Request) -> web.Response:
    async def run() -> str:
        await update_webhook(request, path_id(request), await WebhookInput.read(request))
        return "/settings/webhooks?ok=saved"

    return await form_post(request, run, lambda e: _failed(request, e))


async def webhook_delete(request: web.Request) -> web.Response:
    async def run() -> str:
        await services_of(request).db.webhooks.delete(path_id(request))
        return "/settings/webhooks?ok=deleted"

    return await form_post(request, run, lambda e: _failed(request, e))


async def webhook_test(request: web.Request) -> web.Response:
    """«Проверить»: the page again, saying what the receiver answered."""
    webhook_id = path_id(request)
    answer = await test_webhook(request, webhook_id)
    context = await _context(request)
    hook = await services_of(request).db.webhooks.get(webhook_id)
    context["tested"] = webhook_id
    language = language_of(request)
    if answer.ok:
        context["notice"] = Text("webhooks.test_ok", name=hook.name, status=answer.status or 0,
                                 body=answer.body).render(language)
    else:
        context["error"] = Text("webhooks.test_failed", name=hook.name,
                                reason=answer.reason).render(language)
    return await render(request, "settings/webhooks.html", context)


# -- the API ----------------------------------------------------------------------------------------


async def api_webhooks(request: web.Request) -> web.Response:
    """List the webhook endpoints (secrets are never shown) with their deliveries to make."""
    db = services_of(request).db
    pending = await db.webhook_deliveries.pending_counts()
    return json_ok({"items": [webhook_json(h, pending.get(h.id, 0))
                              for h in await db.webhooks.list()]})


async def api_webhook_create(request: web.Request) -> web.Response:
    """Add a webhook endpoint (events: the call's life unless given)."""
    webhook_id = await create_webhook(request, await WebhookInput.read(request))
    hook = await services_of(request).db.webhooks.get(webhook_id)
    return json_ok(webhook_json(hook), status=201)


async def api_webhook_update(request: web.Request) -> web.Response:
    """Change an endpoint (only the fields given; an empty secret keeps the old one)."""
    hook = await update_webhook(request, path_id(request), await WebhookInput.read(request))
    pending = await services_of(request).db.webhook_deliveries.pending_counts()
    return json_ok(webhook_json(hook, pending.get(hook.id, 0)))


async def api_webhook_delete(request: web.Request) -> web.Response:
    """Remove an endpoint; what it had still to receive is dropped."""
    await services_of(request).db.webhooks.delete(path_id(request))
    return json_ok({"deleted": True})


async def api_webhook_test(request: web.Request) -> web.Response:
    """Send a ``webhook.test`` event now; the receiver's answer (or why there was none)."""
    return json_ok(answer_json(await test_webhook(request, path_id(request))))


async def api_deliveries(request: web.Request) -> web.Response:
    """The latest deliveries, newest first (query: webhook_id, state, limit ≤ 500)."""
    fields = await Fields.read(request)
    state = fields.text("state", max_len=20) or None
    if state not in (None, "pending", "sent", "failed"):
        raise Invalid(Text("webhooks.error.state"), field="state")
    rows = await services_of(request).db.webhook_deliveries.list(
        webhook_id=fields.optional_int("webhook_id", low=1), state=state,
        limit=fields.integer("limit", 100, low=1, high=500))
    return json_ok({"items": [{
        "id": d.id, "webhook_id": d.webhook_id, "event_id": d.event_id,
        "event_type": d.event_type, "state": d.state, "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at, "last_status": d.last_status, "error": d.error,
        "created_at": d.created_at, "sent_at": d.sent_at} for d in rows]})


def setup_routes(app: web.Application) -> None:
    route(app, "GET", "/settings/webhooks", webhooks_page, roles=ADMIN, name="settings.webhooks")
    route(app, "POST", "/settings/webhooks", webhook_create, roles=ADMIN)
    route(app, "POST", f"/settings/webhooks/{_ID}", webhook_save, roles=ADMIN)
    route(app, "POST", f"/settings/webhooks/{_ID}/delete", webhook_delete, roles=ADMIN)
    route(app, "POST", f"/settings/webhooks/{_ID}/test", webhook_test, roles=ADMIN)
    list_out = {"type": "object", "properties": {"items": {"type": "array",
                                                           "items": WEBHOOK_OUT}}}
    route(app, "GET", "/api/v1/webhooks", api_webhooks, roles=ADMIN, api=True,
          response_schema=list_out)
    route(app, "POST", "/api/v1/webhooks", api_webhook_create, roles=ADMIN, api=True,
          request_schema={**WEBHOOK_IN, "required": ["name", "url", "secret"]},
          response_schema=WEBHOOK_OUT)
    route(app, "PATCH", f"/api/v1/webhooks/{_ID}", api_webhook_update, roles=ADMIN, api=True,
          request_schema=WEBHOOK_IN, response_schema=WEBHOOK_OUT)
    route(app, "DELETE", f"/api/v1/webhooks/{_ID}", api_webhook_delete, roles=ADMIN, api=True)
    route(app, "POST", f"/api/v1/webhooks/{_ID}/test", api_webhook_test, roles=ADMIN, api=True,
          response_schema=ANSWER_OUT)
    deliveries_out = {"type": "object", "properties": {"items": {"type": "array",
                                                                 "items": DELIVERY_OUT}}}
    route(app, "GET", "/api/v1/webhooks/deliveries", api_deliveries, roles=ADMIN, api=True,
          query=("webhook_id", "state", "limit"), response_schema=deliveries_out)

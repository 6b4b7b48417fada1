"""Settings → Транки (§4.4): SIP trunks with inbound queue, active toggle, live registration,
tariff and balance.

The host is written as the manual shows it: ``sip:host``, ``sip:user@host``, with or without
``:port``; a bare ``host[:port]`` is accepted and stored with the ``sip:`` prefix.
«Контекст» says where the trunk's inbound calls go: ``inbound`` into the queue of its project,
or nowhere (an outbound-only trunk answers them 480).  «Робот» marks the trunk that leads to
the outside robot (voice bot) system: a project with «Робот» on hands the persons it reaches
to the robot through it instead of the operators' queue (:mod:`sipspeak.calls.robot`).  The tariff (price of a minute in
roubles, billing increment in seconds) prices each call's «Цена» (calls/cdr.py); the balance
of the trunk's account is recorded here too (:mod:`.trunk_money`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from aiohttp import web

from ..calls.cdr import MAX_BILLING_INCREMENT_S, MAX_PRICE_PER_MINUTE_KOPECKS
from ..calls.sources import MAX_SOURCES, SourceListError, format_sources, parse_sources
from ..i18n import Text
from ..storage import NotFound
from ..storage.models import Trunk, TrunkAccount
from . import trunk_money
from .auth import ADMIN, STAFF, current_user, route
from .errors import ApiError, Invalid, json_ok
from .forms import Fields
from .layout import render
from .pages import error_text, form_post, notice, path_id, services_of
from .trunk_money import MAX_BALANCE_KOPECKS, parse_kopecks, record_balance, roubles

_ID = r"{id:\d+}"
MAX_NAME = 100
_URI = re.compile(
    r"^(?:sip:)?(?:(?P<user>[A-Za-z0-9._~+\-!$&'*;=%]+)@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)(?::(?P<port>[0-9]{1,5}))?$",
    re.IGNORECASE)
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?$")

_ADMINS = "shown to administrators only"
TRUNK_OUT: dict[str, Any] = {"type": "object", "properties": {
    "id": {"type": "integer"}, "name": {"type": "string"}, "username": {"type": "string"},
    "host": {"type": "string"}, "inbound_project_id": {"type": ["integer", "null"]},
    "active": {"type": "boolean"}, "robot": {"type": "boolean"},
    "registration": {"type": ["string", "null"]},
    "inbound_sources": {"type": "string"}, "context": {"type": "string",
                                                      "enum": ["inbound", "outbound"]},
    # The provider's money (tariff, balance threshold): administrators only.
    "price_per_minute": {"type": "string", "examples": ["1.20"], "description": _ADMINS},
    "price_per_minute_kopecks": {"type": "integer", "description": _ADMINS},
    "billing_increment_s": {"type": "integer", "description": _ADMINS},
    "low_balance_kopecks": {"type": ["integer", "null"], "description": _ADMINS}}}
TRUNK_IN: dict[str, Any] = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": MAX_NAME}, "username": {"type": "string"},
    "password": {"type": "string"},
    "host": {"type": "string", "examples": ["sip:192.168.1.100", "sip:117049@zadarma.com:5060"]},
    "inbound_project_id": {"type": ["integer", "null"]}, "active": {"type": "boolean"},
    "robot": {"type": "boolean",
              "description": "the route to the outside robot system (projects with «Робот» on)"},
    "inbound_sources": {"type": "string", "examples": ["185.45.152.0/24, 195.122.19.9"]},
    "price_per_minute": {"type": ["string", "integer"], "examples": ["1.20", "0,60"],
                         "description": "roubles a minute, at most two digits after the point"},
    "billing_increment_s": {"type": "integer", "minimum": 1,
                            "maximum": MAX_BILLING_INCREMENT_S},
    "low_balance": {"type": ["string", "integer", "null"], "examples": ["500"],
                    "description": "roubles; below it the administrators are told; empty: never"}}}


def normalise_host(text: str) -> str:
    """``sip:[user@]host[:port]`` with a valid host name or IP address and port 1..65535."""
    value = text.strip()
    match = _URI.match(value)
    if not value or match is None:
        raise Invalid(Text("trunks.error.host"), field="host")
    host = match.group("host")
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise Invalid(Text("trunks.error.ipv6", host=host), field="host") from None
    elif re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise Invalid(Text("trunks.error.ip", host=host), field="host") from None
    else:
        labels = host.rstrip(".").split(".")
        if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
            raise Invalid(Text("trunks.error.hostname", host=host), field="host")
    port = match.group("port")
    if port is not None and not 1 <= int(port) <= 65535:
        raise Invalid(Text("trunks.error.port", port=port), field="host")
    user = match.group("user")
    return "sip:" + (f"{user}@" if user else "") + host.lower() + (f":{int(port)}" if port else "")


def normalise_sources(text: str) -> str:
    """The provider's networks as stored (``"185.45.152.0/24, 195.122.19.9"``)."""
    try:
        return format_sources(parse_sources(text))
    except SourceListError as exc:
        if exc.reason == "many":
            message = Text("trunks.error.sources_many", max=MAX_SOURCES)
        elif exc.reason == "wide":
            message = Text("trunks.error.sources_wide", entry=exc.entry)
        else:
            message = Text("trunks.error.sources_invalid", entry=exc.entry)
        raise Invalid(message, field="inbound_sources") from None


#: Last ``trunk.state`` event per trunk id, kept by :func:`_watch_trunk_states`.
TRUNK_BOARD: web.AppKey[dict[int, str]] = web.AppKey("trunk_board", dict)


def registration_state(request: web.Request, trunk_id: int) -> str | None:
    """The live registration state: call control's registry when it is wired into the
    services (``services.trunk_states``), else the last ``trunk.state`` event on the bus."""
    states = getattr(services_of(request), "trunk_states", None)
    value = states.get(trunk_id) if states is not None else None
    if value is None:
        value = request.app[TRUNK_BOARD].get(trunk_id)
    return None if value is None else str(getattr(value, "value", value))


async def _watch_trunk_states(app: web.Application) -> AsyncIterator[None]:
    """Follow ``trunk.state`` events (trunk_id, state) for the whole life of the app."""
    from .app import SERVICES

    board = app[TRUNK_BOARD]
    subscription = app[SERVICES].bus.subscribe("trunk.state")

    async def follow() -> None:
        while True:
            event = await subscription.get()
            trunk_id, state = event.data.get("trunk_id"), event.data.get("state")
            if isinstance(trunk_id, int) and isinstance(state, str):
                board[trunk_id] = state

    task = asyncio.create_task(follow(), name="web-trunk-states")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        subscription.close()


def context_of(trunk: Trunk) -> str:
    """«Контекст»: ``inbound`` when inbound calls go to a project's queue, else ``outbound``."""
    return "inbound" if trunk.inbound_project_id is not None else "outbound"


def sees_money(request: web.Request) -> bool:
    """The provider's money (tariffs, balances) is the administrators' (:mod:`.trunk_money`);
    a supervisor sees the trunks, not what they cost."""
    return current_user(request).role in ADMIN


def trunk_json(request: web.Request, trunk: Trunk,
               account: TrunkAccount | None = None) -> dict[str, Any]:
    """The trunk; with its tariff and balance threshold for an administrator only."""
    out: dict[str, Any] = {
        "id": trunk.id, "name": trunk.name, "username": trunk.username, "host": trunk.host,
        "inbound_project_id": trunk.inbound_project_id, "active": trunk.active,
        "robot": trunk.robot, "registration": registration_state(request, trunk.id),
        "inbound_sources": trunk.inbound_sources, "context": context_of(trunk)}
    if sees_money(request):
        out.update({
            "price_per_minute": roubles(trunk.price_per_minute_kopecks),
            "price_per_minute_kopecks": trunk.price_per_minute_kopecks,
            "billing_increment_s": trunk.billing_increment_s,
            "low_balance_kopecks": None if account is None else account.low_balance_kopecks})
    return out


async def _one_json(request: web.Request, trunk_id: int) -> dict[str, Any]:
    db = services_of(request).db
    trunk = await db.trunks.get(trunk_id)
    account = await db.money.account(trunk_id) if sees_money(request) else None
    return trunk_json(request, trunk, account)


async def _project(request: web.Request, project_id: int | None) -> int | None:
    if project_id is None:
        return None
    try:
        await services_of(request).db.projects.get(project_id)
    except NotFound:
        raise Invalid(Text("storage.error.project_not_found", id=project_id),
                      field="inbound_project_id") from None
    return project_id


def _name(fields: Fields) -> str:
    name = fields.text("name", max_len=500)
    if not name:
        raise Invalid(Text("trunks.error.name_empty"), field="name")
    if len(name) > MAX_NAME:
        raise Invalid(Text("people.error.name_long", max=MAX_NAME), field="name")
    return name


def _price(fields: Fields) -> int:
    price = parse_kopecks(fields, "price_per_minute", Text("trunks.price_per_minute"), low=0,
                          high=MAX_PRICE_PER_MINUTE_KOPECKS)
    return 0 if price is None else price


def _increment(fields: Fields) -> int:
    try:
        value = fields.text("billing_increment_s", max_len=20)
    except Invalid:
        value = "?"  # not a whole number: said below
    if not value:
        return 60
    if not value.isdigit() or not 1 <= int(value) <= MAX_BILLING_INCREMENT_S:
        raise Invalid(Text("money.error.increment", low=1, high=MAX_BILLING_INCREMENT_S),
                      field="billing_increment_s")
    return int(value)


def _low_balance(fields: Fields) -> int | None:
    return parse_kopecks(fields, "low_balance", Text("trunks.low_balance"), low=0,
                         high=MAX_BALANCE_KOPECKS)


async def create_trunk(request: web.Request, fields: Fields) -> int:
    db = services_of(request).db
    name = _name(fields)
    host = normalise_host(fields.text("host", max_len=300))
    project = await _project(request, fields.optional_int("inbound_project_id", low=1))
    sources = normalise_sources(fields.text("inbound_sources", max_len=4000))
    username, password = fields.text("username", max_len=100), fields.secret("password",
                                                                             max_len=100)
    active, robot = fields.flag("active", True), fields.flag("robot", False)
    price, increment, low = _price(fields), _increment(fields), _low_balance(fields)
    async with db.transaction():  # every value was checked above: all of it or nothing
        trunk_id = await db.trunks.create(
            name=name, host=host, username=username, password=password,
            inbound_project_id=project, active=active, robot=robot, inbound_sources=sources,
            price_per_minute_kopecks=price, billing_increment_s=increment)
        await db.money.set_low_balance(trunk_id, low)
    await _reload(request)
    return trunk_id


async def _reload(request: web.Request) -> None:
    """Tell call control the trunks changed (registrations start, restart or stop)."""
    reload = getattr(services_of(request), "reload_trunks", None)
    if reload is not None:
        await reload()


async def update_trunk(request: web.Request, trunk_id: int, fields: Fields) -> Trunk:
    db = services_of(request).db
    await db.trunks.get(trunk_id)
    changes: dict[str, object] = {}
    if fields.has("name"):
        changes["name"] = _name(fields)
    if fields.has("host"):
        changes["host"] = normalise_host(fields.text("host", max_len=300))
    if fields.has("username"):
        changes["username"] = fields.text("username", max_len=100)
    if fields.secret("password", max_len=100):
        changes["password"] = fields.secret("password", max_len=100)
    if fields.has("inbound_project_id"):
        changes["inbound_project_id"] = await _project(
            request, fields.optional_int("inbound_project_id", low=1))
    if fields.has("inbound_sources"):
        changes["inbound_sources"] = normalise_sources(
            fields.text("inbound_sources", max_len=4000))
    if fields.has("price_per_minute"):
        changes["price_per_minute_kopecks"] = _price(fields)
    if fields.has("billing_increment_s"):
        changes["billing_increment_s"] = _increment(fields)
    low = _low_balance(fields) if fields.has("low_balance") else None
    active = fields.optional_flag("active")
    if active is not None:
        changes["active"] = active
    robot = fields.optional_flag("robot")
    if robot is not None:
        changes["robot"] = robot
    async with db.transaction():  # every value was checked above: all of it or nothing
        await db.trunks.update(trunk_id, **changes)
        if fields.has("low_balance"):
            await db.money.set_low_balance(trunk_id, low)
    if fields.has("low_balance"):
        await trunk_money.notify_low_balances(db)
    await _reload(request)
    return await db.trunks.get(trunk_id)


async def _context(request: web.Request) -> dict[str, Any]:
    db = services_of(request).db
    trunks = await db.trunks.list()
    projects = await db.projects.list()
    money = await trunk_money.money_today(request)
    return {"trunks": trunks, "projects": projects,
            "project_names": {p.id: p.name for p in projects},
            "states": {t.id: registration_state(request, t.id) for t in trunks},
            "contexts": {t.id: context_of(t) for t in trunks},
            "accounts": {a["trunk_id"]: a for a in money["trunks"]},
            "histories": await db.money.histories(limit=trunk_money.HISTORY_SHOWN),
            "roubles": roubles, "notice": notice(request, "trunks"),
            "moment": partial(trunk_money.moment, trunk_money.call_center_zone(request))}


async def trunks_page(request: web.Request) -> web.Response:
    """Trunks: create, edit, inbound queue, registration state."""
    return await render(request, "settings/trunks.html", await _context(request))


async def _failed(request: web.Request, error: ApiError) -> web.Response:
    context = await _context(request)
    context["error"] = error_text(request, error)
    return await render(request, "settings/trunks.html", context, status=error.status)


async def trunk_create(request: web.Request) -> web.Response:
    fields = await Fields.read(request)

    async def run() -> str:
        await create_trunk(request, fields)
        return "/settings/trunks?ok=created"

    return await form_post(request, run, lambda e: _failed(request, e))


async def trunk_save(request: web.Request) -> web.Response:
    fields = await Fields.read(request)

    async def run() -> str:
        await update_trunk(request, path_id(request), fields)
        return "/settings/trunks?ok=saved"

    return await form_post(request, run, lambda e: _failed(request, e))


async def trunk_balance(request: web.Request) -> web.Response:
    fields = await Fields.read(request)

    async def run() -> str:
        trunk_id = path_id(request)
        await services_of(request).db.trunks.get(trunk_id)
        await record_balance(request, trunk_id, fields)
        return "/settings/trunks?ok=recorded"

    return await form_post(request, run, lambda e: _failed(request, e))


async def api_trunks(request: web.Request) -> web.Response:
    """List trunks with their live registration state and context (and, for an
    administrator, their tariff and balance threshold)."""
    db = services_of(request).db
    accounts = {a.trunk_id: a for a in await db.money.accounts()} if sees_money(request) else {}
    return json_ok({"items": [trunk_json(request, t, accounts.get(t.id))
                              for t in await db.trunks.list()]})


async def api_trunk_create(request: web.Request) -> web.Response:
    """Create a trunk."""
    trunk_id = await create_trunk(request, await Fields.read(request))
    return json_ok(await _one_json(request, trunk_id), status=201)


async def api_trunk(request: web.Request) -> web.Response:
    """One trunk (the password is never shown; its tariff to administrators only)."""
    return json_ok(await _one_json(request, path_id(request)))


async def api_trunk_update(request: web.Request) -> web.Response:
    """Change a trunk (only the fields given; an empty password keeps the old one)."""
    trunk = await update_trunk(request, path_id(request), await Fields.read(request))
    return json_ok(await _one_json(request, trunk.id))


def setup_routes(app: web.Application) -> None:
    app[TRUNK_BOARD] = {}
    app.cleanup_ctx.append(_watch_trunk_states)
    route(app, "GET", "/settings/trunks", trunks_page, roles=ADMIN, name="settings.trunks")
    route(app, "POST", "/settings/trunks", trunk_create, roles=ADMIN)
    route(app, "POST", f"/settings/trunks/{_ID}", trunk_save, roles=ADMIN)
    route(app, "POST", f"/settings/trunks/{_ID}/balance", trunk_balance, roles=ADMIN)
    list_out = {"type": "object", "properties": {"items": {"type": "array", "items": TRUNK_OUT}}}
    route(app, "GET", "/api/v1/trunks", api_trunks, roles=STAFF, api=True,
          response_schema=list_out)
    route(app, "POST", "/api/v1/trunks", api_trunk_create, roles=ADMIN, api=True,
          request_schema={**TRUNK_IN, "required": ["name", "host"]}, response_schema=TRUNK_OUT)
    route(app, "GET", f"/api/v1/trunks/{_ID}", api_trunk, roles=STAFF, api=True,
          response_schema=TRUNK_OUT)
    route(app, "PATCH", f"/api/v1/trunks/{_ID}", api_trunk_update, roles=ADMIN, api=True,
          request_schema=TRUNK_IN, response_schema=TRUNK_OUT)
    trunk_money.setup_routes(app)

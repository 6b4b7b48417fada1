"""Trunk money: tariffs as typed, recorded balances, today's spend, the header's figures.

An administrator records the balance of a trunk's account at the provider (set it, or top it
up); the balance shown is that less the prices of the trunk's calls priced since
(:class:`~sipspeak.storage.repositories.money.TrunkMoneyRepo`).  «Расход (день)» is the price
of the calls started today in the call center's time zone (``[general] timezone``), the same
calls the calls report (§6.2) lists for today.  The header shows both to administrators
(«Баланс: … ₽ / Расход (день): … ₽»): the money is the whole call center's, and a
supervisor's part of it is his projects, not the provider accounts.  The header's figures are
read when a page is rendered (:func:`header_context`, called by the layout), never for a form
post, a download or an API call; the day's spend is remembered between calls being priced
(:meth:`~sipspeak.storage.repositories.money.TrunkMoneyRepo.day_spend`).

A trunk whose balance falls below its threshold tells every administrator once (a
notification in his language); a balance brought back above the threshold arms it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from ..i18n import Text, translate
from ..storage import Database, StorageError, now_ms
from ..storage.models import BALANCE_KINDS, BalanceKind, BalanceRecord, TrunkAccount
from .auth import ADMIN, USER, current_user, route
from .errors import Invalid, json_ok
from .forms import Fields
from .layout import language_of
from .pages import path_id, services_of

log = logging.getLogger(__name__)

MAX_BALANCE_KOPECKS = 1_000_000_000
"""Ten million roubles either way: a balance or a top-up beyond it is a typing slip."""
MAX_COMMENT = 200
LOW_BALANCE_CHECK_S = 30.0
"""How often the balances are compared with their thresholds (calls are priced as they end)."""
HISTORY_SHOWN = 10

_MONEY = re.compile(r"^(?P<sign>-)?(?P<whole>\d{1,12})(?:[.,](?P<frac>\d{1,2}))?$")
_SPACES = re.compile(r"[\s\u00a0\u202f']")


def parse_kopecks(fields: Fields, name: str, label: Text, *, low: int,
                  high: int) -> int | None:
    """A sum in roubles as typed («1200», «1 200,50», «0.6»), in kopecks; None when empty.

    At most two digits after the point: money is exact, so JSON gives it as a string (or a
    whole number of roubles), never as a float."""
    try:
        text = fields.text(name, max_len=40)
    except Invalid:
        raise Invalid(Text("money.error.format", field=label), field=name) from None
    if not text:
        return None
    match = _MONEY.match(_SPACES.sub("", text))
    if match is None:
        raise Invalid(Text("money.error.format", field=label), field=name)
    kopecks = int(match["whole"]) * 100 + int((match["frac"] or "0").ljust(2, "0"))
    if match["sign"]:
        kopecks = -kopecks
    if not low <= kopecks <= high:
        raise Invalid(Text("money.error.range", field=label, low=roubles(low),
                           high=roubles(high)), field=name)
    return kopecks


def roubles(kopecks: int) -> str:
    """Kopecks as the report's «Цена» shows money: ``1234.50``, ``-0.40``."""
    sign = "-" if kopecks < 0 else ""
    whole, part = divmod(abs(kopecks), 100)
    return f"{sign}{whole}.{part:02d}"


def day_bounds(zone: ZoneInfo, at_ms: int) -> tuple[date, int, int]:
    """The day of ``at_ms`` in ``zone``: the date and its ``[start, end)`` in epoch ms."""
    day = datetime.fromtimestamp(at_ms / 1000, zone).date()

    def midnight(d: date) -> int:
        return int(datetime.combine(d, time(), zone).timestamp() * 1000)

    return day, midnight(day), midnight(day + timedelta(days=1))


def call_center_zone(request: web.Request) -> ZoneInfo:
    return ZoneInfo(services_of(request).config.get("general", "timezone"))


def moment(zone: ZoneInfo, at_ms: int) -> str:
    """A record's time as the calls report shows its dates."""
    return datetime.fromtimestamp(at_ms / 1000, zone).strftime("%d-%m-%Y %H:%M")


# -- the figures ----------------------------------------------------------------------------
async def money_today(request: web.Request) -> dict[str, Any]:
    """Every trunk's money and today's spend: one row per trunk, and the day's calls only
    when one was priced since they were last summed."""
    db = services_of(request).db
    zone = call_center_zone(request)
    day, start, end = day_bounds(zone, now_ms())
    accounts = await db.money.accounts()
    spent = await db.money.day_spend(start_ms=start, end_ms=end)
    recorded = [a.balance_kopecks for a in accounts if a.balance_kopecks is not None]
    return {"day": day.isoformat(), "zone": zone.key,
            "balance_kopecks": sum(recorded) if recorded else None,
            "spent_today_kopecks": sum(spent.values()),
            "trunks": [account_json(a, spent.get(a.trunk_id, 0)) for a in accounts]}


def account_json(account: TrunkAccount, spent_today: int) -> dict[str, Any]:
    return {"trunk_id": account.trunk_id, "name": account.trunk_name,
            "balance_kopecks": account.balance_kopecks,
            "recorded_at": None if account.last is None else account.last.created_at,
            "spent_since_kopecks": account.spent_since_kopecks,
            "spent_today_kopecks": spent_today,
            "low_balance_kopecks": account.low_balance_kopecks, "low": account.low}


def record_json(item: BalanceRecord) -> dict[str, Any]:
    return {"id": item.id, "kind": item.kind, "amount_kopecks": item.amount_kopecks,
            "balance_kopecks": item.balance_kopecks, "comment": item.comment,
            "user_id": item.user_id, "created_at": item.created_at}


def header_text(money: dict[str, Any], lang: str) -> str:
    balance, spent = money["balance_kopecks"], roubles(money["spent_today_kopecks"])
    if balance is None:
        return translate("header.money_unset", lang).format(spent=spent)
    return translate("header.money", lang).format(balance=roubles(balance), spent=spent)


async def header_context(request: web.Request) -> dict[str, Any]:
    """The layout's «Баланс / Расход (день)» for an administrator's page; nothing for other
    roles.  The layout asks for it as it renders a page, and only then."""
    user = request.get(USER)
    if user is None or user.role not in ADMIN:
        return {}
    return {"money": header_text(await money_today(request), language_of(request))}


# -- recording a balance --------------------------------------------------------------------
def read_balance_action(fields: Fields) -> tuple[BalanceKind, int, str]:
    """``action`` (set / topup), ``amount`` in roubles and a ``comment``, all checked."""
    action = fields.text("action", max_len=20)
    if action not in BALANCE_KINDS:
        raise Invalid(Text("money.error.action"), field="action")
    kind: BalanceKind = "set" if action == "set" else "topup"
    label = Text("trunks.balance_amount")
    low = -MAX_BALANCE_KOPECKS if kind == "set" else 1
    amount = parse_kopecks(fields, "amount", label, low=low, high=MAX_BALANCE_KOPECKS)
    if amount is None:
        raise Invalid(Text("money.error.amount_missing"), field="amount")
    return kind, amount, fields.text("comment", max_len=MAX_COMMENT)


async def record_balance(request: web.Request, trunk_id: int, fields: Fields) -> BalanceRecord:
    db = services_of(request).db
    kind, amount, comment = read_balance_action(fields)  # all checked before anything is written
    saved = await db.money.record_balance(trunk_id, kind=kind, amount_kopecks=amount,
                                          user_id=current_user(request).id, comment=comment)
    await notify_low_balances(db)
    return saved


async def notify_low_balances(db: Database) -> int:
    """Tell every administrator about each trunk that fell below its threshold; how many."""
    async with db.transaction():
        crossed = await db.money.claim_low_balances()
        if not crossed:
            return 0
        admins = await db.users.list(role="admin")
        for account in crossed:
            assert account.balance_kopecks is not None and account.low_balance_kopecks is not None
            note = Text("money.note.low_balance", trunk=account.trunk_name,
                        balance=roubles(account.balance_kopecks),
                        threshold=roubles(account.low_balance_kopecks))
            log.warning("%s", note)
            for admin in admins:
                await db.notifications.add(text=note.render(admin.language), user_id=admin.id,
                                           level="warning")
    return len(crossed)


async def _watch_low_balances(app: web.Application) -> AsyncIterator[None]:
    """Compare the balances with their thresholds every :data:`LOW_BALANCE_CHECK_S`."""
    from .app import SERVICES

    db = app[SERVICES].db

    async def follow() -> None:
        while True:
            try:
                await notify_low_balances(db)
            except StorageError as exc:
                log.error("low-balance check: %s", exc)
            await asyncio.sleep(LOW_BALANCE_CHECK_S)

    task = asyncio.create_task(follow(), name="web-low-balances")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# -- the API --------------------------------------------------------------------------------
async def api_money(request: web.Request) -> web.Response:
    """The call center's balance and today's spend, and each trunk's."""
    return json_ok(await money_today(request))


async def _trunk_money(request: web.Request, trunk_id: int) -> dict[str, Any]:
    db = services_of(request).db
    account = await db.money.account(trunk_id)
    _, start, end = day_bounds(call_center_zone(request), now_ms())
    spent = await db.money.day_spend(start_ms=start, end_ms=end)
    return {**account_json(account, spent.get(trunk_id, 0)),
            "history": [record_json(r) for r in await db.money.history(trunk_id)]}


async def api_trunk_money(request: web.Request) -> web.Response:
    """A trunk's balance, spend and its balance records (newest first)."""
    return json_ok(await _trunk_money(request, path_id(request)))


async def api_trunk_balance(request: web.Request) -> web.Response:
    """Record the trunk's balance: ``set`` it, or ``topup`` the balance it has now."""
    trunk_id = path_id(request)
    await services_of(request).db.trunks.get(trunk_id)
    await record_balance(request, trunk_id, await Fields.read(request))
    return json_ok(await _trunk_money(request, trunk_id), status=201)


ACCOUNT_OUT: dict[str, Any] = {"type": "object", "properties": {
    "trunk_id": {"type": "integer"}, "name": {"type": "string"},
    "balance_kopecks": {"type": ["integer", "null"]},
    "recorded_at": {"type": ["integer", "null"]}, "spent_since_kopecks": {"type": "integer"},
    "spent_today_kopecks": {"type": "integer"},
    "low_balance_kopecks": {"type": ["integer", "null"]}, "low": {"type": "boolean"}}}
MONEY_OUT: dict[str, Any] = {"type": "object", "properties": {
    "day": {"type": "string"}, "zone": {"type": "string"},
    "balance_kopecks": {"type": ["integer", "null"]}, "spent_today_kopecks": {"type": "integer"},
    "trunks": {"type": "array", "items": ACCOUNT_OUT}}}
BALANCE_IN: dict[str, Any] = {"type": "object", "required": ["action", "amount"], "properties": {
    "action": {"type": "string", "enum": list(BALANCE_KINDS)},
    "amount": {"type": ["string", "integer"], "examples": ["10000", "1500,50"]},
    "comment": {"type": "string", "maxLength": MAX_COMMENT}}}
TRUNK_MONEY_OUT: dict[str, Any] = {"type": "object", "properties": {
    **ACCOUNT_OUT["properties"], "history": {"type": "array", "items": {
        "type": "object", "properties": {
            "id": {"type": "integer"}, "kind": {"type": "string"},
            "amount_kopecks": {"type": "integer"}, "balance_kopecks": {"type": "integer"},
            "comment": {"type": "string"}, "user_id": {"type": ["integer", "null"]},
            "created_at": {"type": "integer"}}}}}}


def setup_routes(app: web.Application) -> None:
    app.cleanup_ctx.append(_watch_low_balances)
    route(app, "GET", "/api/v1/balance", api_money, roles=ADMIN, api=True,
          response_schema=MONEY_OUT)
    route(app, "GET", r"/api/v1/trunks/{id:\d+}/balance", api_trunk_money, roles=ADMIN,
          api=True, response_schema=TRUNK_MONEY_OUT)
    route(app, "POST", r"/api/v1/trunks/{id:\d+}/balance", api_trunk_balance, roles=ADMIN,
          api=True, request_schema=BALANCE_IN, response_schema=TRUNK_MONEY_OUT)

"""Trunk money: tariffs typed in the trunk form and API price «Цена» in the calls report;
recorded balances less the calls priced since, today's spend in the call center's time zone,
the header's «Баланс / Расход (день)», the low-balance notice; bad input changes nothing.

Calls are stored as call control stores them: ``db.calls.open`` when the call starts and
``db.calls.update`` with :func:`~sipspeak.calls.cdr.completion_columns` (the trunk's tariff)
when it ends, in the site's real SQLite file.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from webtools import Site

from sipspeak.calls.cdr import CallTimes, Tariff, completion_columns
from sipspeak.dialer.ports import CallOutcome
from sipspeak.storage import Database, now_ms
from sipspeak.storage.db import migrations
from sipspeak.web.trunk_money import day_bounds, notify_low_balances

VLADIVOSTOK = "Asia/Vladivostok"  # UTC+10: its midnight is not UTC's
_MONEY = re.compile(r'<span class="money" id="money">([^<]*)</span>')


async def priced_call(db: Database, trunk_id: int, started_at: int, billing_ms: int, *,
                      project_id: int | None = None) -> int:
    """A call through the trunk answered after 2 s and billed ``billing_ms``, priced with the
    trunk's tariff as call control prices it when the call ends."""
    trunk = await db.trunks.get(trunk_id)
    call_id = await db.calls.open(direction="outbound", started_at=started_at, kind="auto",
                                  trunk_id=trunk_id, project_id=project_id,
                                  contact_phone="79030001122")
    answered = started_at + 2_000
    times = CallTimes(started_ms=started_at, answered_ms=answered,
                      ended_ms=answered + billing_ms)
    await db.calls.update(call_id, **completion_columns(
        times, CallOutcome.ANSWERED, sip_code=None,
        tariff=Tariff(trunk.price_per_minute_kopecks, trunk.billing_increment_s),
        operator_offered=False, recording_path=None, amd_result=None))
    return call_id


def in_zone(site: Site, zone: str) -> None:
    site.services.config = site.services.config.with_overrides({("general", "timezone"): zone})


async def report_prices(browser: object, day: str, zone: str) -> dict[str, str]:
    """«Цена» of each call of the day in the calls report's CSV, by call id."""
    response = await browser.get(  # type: ignore[attr-defined]
        f"/reports/calls.csv?from={day}&to={day}&tz={zone}")
    assert response.status == 200
    table = list(csv.reader(io.StringIO((await response.read()).decode("utf-8-sig")),
                            delimiter=";"))
    price = table[0].index("Цена")
    return {row[1]: row[price] for row in table[1:]}


async def header_money(browser: object) -> str | None:
    page = await (await browser.get("/settings/statuses")).text()  # type: ignore[attr-defined]
    found = _MONEY.search(page)
    return None if found is None else found.group(1)


async def test_tariff_from_the_api_and_the_form_prices_the_calls_report(staff: Site) -> None:
    admin = await staff.signed_in("admin@test.ru")
    project = await staff.db.projects.create("Продажи")
    created = await admin.api("POST", "/api/v1/trunks", {
        "name": "zadarma", "host": "sip:117049@zadarma.com", "price_per_minute": "1,20",
        "billing_increment_s": 30})
    assert created.status == 201, await created.text()
    trunk = await created.json()
    assert (trunk["price_per_minute"], trunk["price_per_minute_kopecks"],
            trunk["billing_increment_s"], trunk["context"]) == ("1.20", 120, 30, "outbound")
    now = now_ms()
    # 61 s on 30 s increments bills 90 s: 1.20 ₽ × 1.5 = 1.80 ₽.
    first = await priced_call(staff.db, trunk["id"], now - 600_000, 61_000, project_id=project)

    # The form changes the tariff: 0.60 ₽ a minute, per second.
    saved = await admin.form(f"/settings/trunks/{trunk['id']}", {
        "name": "zadarma", "host": "sip:117049@zadarma.com", "username": "117049",
        "password": "", "inbound_project_id": str(project), "inbound_sources": "",
        "price_per_minute": "0.6", "billing_increment_s": "1", "low_balance": "",
        "active": "1"})
    assert saved.status == 303, await saved.text()
    stored = await staff.db.trunks.get(trunk["id"])
    assert (stored.price_per_minute_kopecks, stored.billing_increment_s) == (60, 1)
    # 61.5 s per second is 62 s: 0.60 ₽ × 62 / 60 = 0.62 ₽.
    second = await priced_call(staff.db, trunk["id"], now - 300_000, 61_500,
                               project_id=project)

    day = datetime.fromtimestamp(now / 1000, ZoneInfo("Europe/Moscow")).date().isoformat()
    prices = await report_prices(admin, day, "Europe/Moscow")
    assert prices == {str(first): "1.80", str(second): "0.62"}
    listed = await (await admin.get("/api/v1/trunks")).json()
    assert [(t["price_per_minute"], t["billing_increment_s"], t["context"])
            for t in listed["items"]] == [("0.60", 1, "inbound")]

    page = await (await admin.get("/settings/trunks")).text()
    assert "0.60\u00a0₽/мин, шаг\u00a01\u00a0с" in page
    assert "inbound → Продажи" in page  # «Контекст»: inbound calls go to the project's queue
    assert 'name="price_per_minute"' in page and 'value="0.60"' in page


async def test_a_supervisor_sees_the_trunks_but_not_their_money(staff: Site) -> None:
    admin = await staff.signed_in("admin@test.ru")
    created = await admin.api("POST", "/api/v1/trunks", {
        "name": "zadarma", "host": "sip:zadarma.com", "price_per_minute": "1.20",
        "billing_increment_s": 30, "low_balance": "500"})
    assert created.status == 201, await created.text()
    trunk = (await created.json())["id"]
    money = {"price_per_minute", "price_per_minute_kopecks", "billing_increment_s",
             "low_balance_kopecks"}
    listed = (await (await admin.get("/api/v1/trunks")).json())["items"]
    one = await (await admin.get(f"/api/v1/trunks/{trunk}")).json()
    assert money <= set(listed[0]) and money <= set(one)
    assert (one["price_per_minute"], one["low_balance_kopecks"]) == ("1.20", 50_000)

    sup = await staff.signed_in("sup@test.ru")
    listed = (await (await sup.get("/api/v1/trunks")).json())["items"]
    one = await (await sup.get(f"/api/v1/trunks/{trunk}")).json()
    assert [t["name"] for t in listed] == ["zadarma"] and one["name"] == "zadarma"
    assert not money & set(listed[0]) and not money & set(one)
    assert (one["context"], one["host"]) == ("outbound", "sip:zadarma.com")
    # Nor the trunks page with its tariff and balance columns.
    assert (await sup.get("/settings/trunks")).status == 403


async def test_absurd_tariffs_are_refused_and_nothing_is_written(staff: Site) -> None:
    admin = await staff.signed_in("admin@test.ru")
    base = {"name": "mts", "host": "sip:mts.ru"}
    cases = [
        ({"price_per_minute": "abc"}, "price_per_minute", "сумма в рублях"),
        ({"price_per_minute": "1.234"}, "price_per_minute", "не больше двух знаков"),
        ({"price_per_minute": 1.5}, "price_per_minute", "сумма в рублях"),
        ({"price_per_minute": "-1"}, "price_per_minute", "от 0.00 до 1000.00 ₽"),
        ({"price_per_minute": "1000,01"}, "price_per_minute", "от 0.00 до 1000.00 ₽"),
        ({"billing_increment_s": 0}, "billing_increment_s", "от 1 до 600"),
        ({"billing_increment_s": 601}, "billing_increment_s", "от 1 до 600"),
        ({"billing_increment_s": "6.5"}, "billing_increment_s", "целое число секунд"),
        ({"billing_increment_s": True}, "billing_increment_s", "целое число секунд"),
        ({"low_balance": "-5"}, "low_balance", "от 0.00 до 10000000.00 ₽"),
    ]
    for extra, field, words in cases:
        response = await admin.api("POST", "/api/v1/trunks", {**base, **extra})
        error = (await response.json())["error"]
        assert (response.status, error["field"]) == (422, field), extra
        assert words in error["message"], (extra, error["message"])
    assert await staff.db.trunks.list() == []

    trunk_id = await staff.db.trunks.create(name="mts", host="sip:mts.ru",
                                            price_per_minute_kopecks=150)
    # A good name with a bad price: neither is saved.
    bad = await admin.api("PATCH", f"/api/v1/trunks/{trunk_id}",
                          {"name": "МТС", "price_per_minute": "один рубль"})
    assert bad.status == 422
    kept = await staff.db.trunks.get(trunk_id)
    assert (kept.name, kept.price_per_minute_kopecks) == ("mts", 150)
    # The same through the form: the page comes back with the message, nothing saved.
    page = await admin.form(f"/settings/trunks/{trunk_id}", {
        "name": "МТС", "host": "sip:mts.ru", "price_per_minute": "1.5",
        "billing_increment_s": "0", "active": "1"})
    assert page.status == 422
    assert "шаг тарификации: целое число секунд от 1 до 600" in await page.text()
    kept = await staff.db.trunks.get(trunk_id)
    assert (kept.name, kept.price_per_minute_kopecks, kept.billing_increment_s) == (
        "mts", 150, 60)
    # An English reader gets the message in English.
    await staff.db.users.update(staff.users["admin@test.ru"], language="en")
    english = await admin.api("PATCH", f"/api/v1/trunks/{trunk_id}",
                              {"price_per_minute": "2000"})
    assert (await english.json())["error"]["message"] == (
        "Price a minute, ₽: from 0.00 to 1000.00 ₽")


async def test_balance_less_calls_since_and_spend_of_the_call_center_day(staff: Site) -> None:
    in_zone(staff, VLADIVOSTOK)
    db = staff.db
    admin = await staff.signed_in("admin@test.ru")
    assert await header_money(admin) == "Баланс: не задан / Расход (день): 0.00\u00a0₽"
    zadarma = await db.trunks.create(name="zadarma", host="sip:zadarma.com",
                                     price_per_minute_kopecks=100, billing_increment_s=60)
    mts = await db.trunks.create(name="mts", host="sip:mts.ru", price_per_minute_kopecks=300,
                                 billing_increment_s=1)
    day, start, _ = day_bounds(ZoneInfo(VLADIVOSTOK), now_ms())

    # Priced before the balance is recorded: already in the provider's balance.
    await priced_call(db, zadarma, start - 7_200_000, 30_000)  # yesterday there: 1.00 ₽
    recorded = await admin.api("POST", f"/api/v1/trunks/{zadarma}/balance",
                               {"action": "set", "amount": "1 000,00", "comment": "счет 42"})
    assert recorded.status == 201, await recorded.text()
    assert (await recorded.json())["balance_kopecks"] == 100_000

    # Priced since: a call that started a millisecond before the local midnight (yesterday),
    # one at midnight and one a minute later (today).
    yesterday = await priced_call(db, zadarma, start - 1, 90_000)  # 2 minutes: 2.00 ₽
    at_midnight = await priced_call(db, zadarma, start, 60_000)  # 1.00 ₽
    await priced_call(db, mts, start + 60_000, 10_000)  # 10 s at 3 ₽/min: 0.50 ₽

    money = await (await admin.get("/api/v1/balance")).json()
    assert (money["day"], money["zone"]) == (day.isoformat(), VLADIVOSTOK)
    assert money["balance_kopecks"] == 100_000 - 200 - 100  # mts has no balance recorded
    assert money["spent_today_kopecks"] == 100 + 50
    trunks = {t["name"]: t for t in money["trunks"]}
    assert (trunks["zadarma"]["balance_kopecks"], trunks["zadarma"]["spent_since_kopecks"],
            trunks["zadarma"]["spent_today_kopecks"]) == (99_700, 300, 100)
    assert (trunks["mts"]["balance_kopecks"], trunks["mts"]["spent_today_kopecks"]) == (None, 50)
    assert await header_money(admin) == "Баланс: 997.00\u00a0₽ / Расход (день): 1.50\u00a0₽"
    # The day's spend is what the calls report lists for that day in that zone.
    prices = await report_prices(admin, day.isoformat(), VLADIVOSTOK)
    assert str(yesterday) not in prices and str(at_midnight) in prices
    assert sum(round(float(p) * 100) for p in prices.values()) == money["spent_today_kopecks"]

    # A top-up adds to the balance it has now; the history keeps both records.
    topped = await admin.form(f"/settings/trunks/{zadarma}/balance",
                              {"action": "topup", "amount": "500,50", "comment": ""})
    assert topped.status == 303 and topped.headers["Location"].endswith("ok=recorded")
    trunk_money = await (await admin.get(f"/api/v1/trunks/{zadarma}/balance")).json()
    assert trunk_money["balance_kopecks"] == 99_700 + 50_050
    assert [(r["kind"], r["amount_kopecks"], r["balance_kopecks"], r["comment"])
            for r in trunk_money["history"]] == [("topup", 50_050, 149_750, ""),
                                                 ("set", 100_000, 100_000, "счет 42")]
    assert all(r["user_id"] == staff.users["admin@test.ru"] for r in trunk_money["history"])
    page = await (await admin.get("/settings/trunks")).text()
    assert "1497.50&nbsp;₽" in page and "счет 42" in page and "Баланс записан" in (
        await (await admin.get("/settings/trunks?ok=recorded")).text())

    # A supervisor sees neither the header's money nor the API.
    sup = await staff.signed_in("sup@test.ru")
    assert await header_money(sup) is None
    assert (await sup.get("/api/v1/balance")).status == 403
    assert (await sup.get(f"/api/v1/trunks/{zadarma}/balance")).status == 403


async def test_the_header_money_is_read_for_pages_only_and_the_day_spend_is_kept(
        staff: Site) -> None:
    """A form post, a download or an API call reads no money; a page sums the day's calls
    when one was priced since the last sum, and else reuses it."""
    db = staff.db
    trunk = await db.trunks.create(name="zadarma", host="sip:zadarma.com",
                                   price_per_minute_kopecks=100, billing_increment_s=60)
    executed: list[str] = []
    # Every statement the site's own SQLite connection runs, as SQLite runs it.
    await db._writer.set_trace_callback(executed.append)

    def day_sums() -> int:
        return sum("AS spent FROM calls" in sql for sql in executed)

    admin = await staff.signed_in("admin@test.ru")  # its first page shows the header
    assert day_sums() == 1
    await priced_call(db, trunk, now_ms(), 60_000)  # 1.00 ₽: the next header sums again
    created = await admin.form("/settings/groups", {"name": "Смена"})
    assert created.status == 303
    day = datetime.fromtimestamp(now_ms() / 1000, ZoneInfo("Europe/Moscow")).date()
    assert len(await report_prices(admin, day.isoformat(), "Europe/Moscow")) == 1
    assert (await admin.get("/api/v1/trunks")).status == 200
    assert day_sums() == 1  # none of them rendered a page

    assert await header_money(admin) == "Баланс: не задан / Расход (день): 1.00\u00a0₽"
    assert day_sums() == 2
    assert await header_money(admin) == "Баланс: не задан / Расход (день): 1.00\u00a0₽"
    assert day_sums() == 2  # no call priced since: the day's calls are not read again
    await priced_call(db, trunk, now_ms(), 120_000)  # 2.00 ₽
    assert await header_money(admin) == "Баланс: не задан / Расход (день): 3.00\u00a0₽"
    assert day_sums() == 3
    money = await (await admin.get("/api/v1/balance")).json()
    assert money["spent_today_kopecks"] == 300 and day_sums() == 3
    await db._writer.set_trace_callback(None)


async def test_a_bad_balance_is_refused_and_nothing_is_recorded(staff: Site) -> None:
    admin = await staff.signed_in("admin@test.ru")
    trunk = await staff.db.trunks.create(name="zadarma", host="sip:zadarma.com")
    cases = [
        ({"action": "withdraw", "amount": "10"}, "action", "set"),
        ({"action": "set"}, "amount", "укажите сумму"),
        ({"action": "set", "amount": "десять"}, "amount", "сумма в рублях"),
        ({"action": "set", "amount": "10.001"}, "amount", "не больше двух знаков"),
        ({"action": "set", "amount": "10000000.01"}, "amount", "до 10000000.00 ₽"),
        ({"action": "topup", "amount": "0"}, "amount", "от 0.01 до 10000000.00 ₽"),
        ({"action": "topup", "amount": "-5"}, "amount", "от 0.01"),
        ({"action": "set", "amount": "5", "comment": "x" * 201}, "comment", "200"),
    ]
    for body, field, words in cases:
        response = await admin.api("POST", f"/api/v1/trunks/{trunk}/balance", body)
        error = (await response.json())["error"]
        assert (response.status, error["field"]) == (422, field), body
        assert words in error["message"], (body, error["message"])
    page = await admin.form(f"/settings/trunks/{trunk}/balance",
                            {"action": "topup", "amount": "1,5,0"})
    assert page.status == 422 and "Сумма, ₽: сумма в рублях" in await page.text()
    assert await staff.db.money.history(trunk) == []
    missing = await admin.api("POST", "/api/v1/trunks/999/balance",
                              {"action": "set", "amount": "5"})
    assert missing.status == 404
    # A negative balance (the provider's credit) is a balance too.
    owed = await admin.api("POST", f"/api/v1/trunks/{trunk}/balance",
                           {"action": "set", "amount": "-12.5"})
    assert (await owed.json())["balance_kopecks"] == -1250


async def test_low_balance_tells_every_admin_once_until_topped_up(staff: Site) -> None:
    db = staff.db
    english = await staff.user("admin", "boss@test.ru")
    await db.users.update(english, language="en")
    admin = await staff.signed_in("admin@test.ru")
    trunk = await db.trunks.create(name="zadarma", host="sip:zadarma.com",
                                   price_per_minute_kopecks=6000, billing_increment_s=60)
    assert (await admin.api("PATCH", f"/api/v1/trunks/{trunk}",
                            {"low_balance": "100"})).status == 200
    await admin.api("POST", f"/api/v1/trunks/{trunk}/balance",
                    {"action": "set", "amount": "150"})

    async def notes(email: str) -> list[str]:
        return [n.text for n in await db.notifications.unread(staff.users[email])]

    assert await notes("admin@test.ru") == []
    await priced_call(db, trunk, now_ms(), 60_000)  # 60 ₽: the balance is 90 ₽
    assert await notify_low_balances(db) == 1
    assert await notes("admin@test.ru") == [
        "Баланс транка «zadarma» 90.00 ₽ — ниже порога 100.00 ₽: пополните счет у провайдера"]
    assert await notes("boss@test.ru") == [(
        "The balance of trunk “zadarma” is 90.00 ₽, below the threshold of 100.00 ₽:"
        " top up the provider account")]
    assert await notes("sup@test.ru") == [] and await notes("oper@test.ru") == []
    # Once: further calls and checks say nothing more.
    await priced_call(db, trunk, now_ms(), 30_000)
    assert await notify_low_balances(db) == 0
    assert len(await notes("admin@test.ru")) == 1
    page = await (await admin.get("/settings/trunks")).text()
    assert "30.00&nbsp;₽ (ниже порога)" in page
    # Topped up above the threshold, the next fall below it is told again.
    await admin.api("POST", f"/api/v1/trunks/{trunk}/balance",
                    {"action": "topup", "amount": "100"})
    assert await notify_low_balances(db) == 0
    await priced_call(db, trunk, now_ms(), 60_000)
    assert await notify_low_balances(db) == 1
    assert len(await notes("admin@test.ru")) == 2
    # Raising the threshold over the balance tells at once, with no wait for the next check.
    assert (await admin.api("PATCH", f"/api/v1/trunks/{trunk}",
                            {"low_balance": ""})).status == 200
    assert (await (await admin.get(f"/api/v1/trunks/{trunk}")).json())[
        "low_balance_kopecks"] is None
    await admin.api("PATCH", f"/api/v1/trunks/{trunk}", {"low_balance": "500"})
    assert len(await notes("admin@test.ru")) == 3


async def test_upgrade_counts_the_calls_priced_before_and_a_repriced_call(tmp_path: Path,
                                                                          ) -> None:
    """A database from before migration 0008 starts with each trunk's spend so far; a call
    priced again moves the spend by the difference; a removed trunk takes its money along."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
                 " name TEXT NOT NULL, applied_at INTEGER NOT NULL)")
    for version, name, sql in migrations()[:7]:
        conn.executescript(sql)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (version, name))
    conn.execute("INSERT INTO trunks(name, host, created_at, updated_at)"
                 " VALUES ('zadarma', 'sip:zadarma.com', 0, 0)")
    for price in (150, 250):
        conn.execute("INSERT INTO calls(trunk_id, started_at, direction, price_kopecks)"
                     " VALUES (1, 0, 'outbound', ?)", (price,))
    conn.commit()
    conn.close()
    db = await Database.open(path)
    try:
        assert (await db.money.account(1)).spent_kopecks == 400
        await db.money.record_balance(1, kind="set", amount_kopecks=10_000)
        await db.calls.update(1, price_kopecks=50)  # priced again: 1 ₽ less
        account = await db.money.account(1)
        assert (account.spent_kopecks, account.balance_kopecks) == (300, 10_100)
        await db.trunks.delete(1)
        assert await db.money.accounts() == []
        assert await db.fetchall("SELECT * FROM trunk_balance_records") == []
        assert (await db.calls.get(2)).trunk_id is None
    finally:
        await db.close()

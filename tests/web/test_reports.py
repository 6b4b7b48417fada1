"""«Статистика операторов» (§6.3): time in each status per operator for a period of days,
through the API, the page and the CSV / XLSX downloads, scoped by role."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime
from typing import Any

import openpyxl
from fake_calls import StartDialer, until
from test_browser import load_driver, sign_in
from webtools import Site

MSK_0900 = int(datetime(2026, 3, 2, 6, 0, tzinfo=UTC).timestamp() * 1000)  # 09:00 Moscow
MINUTE = 60_000
DAY = "from=2026-03-02&to=2026-03-02"


async def history(site: Site) -> dict[str, int]:
    """Operators with a day of statuses on 2 March 2026 (Moscow): Оператор (333) and Иванова
    in «Смена» of the supervisor's project, Чужой in «Чужая», outside it."""
    db = site.db
    oper = site.users["oper@test.ru"]
    ivanova = await site.user("operator", "ivanova@test.ru", full_name="Иванова",
                              extension="334")
    stranger = await site.user("operator", "stranger@test.ru", full_name="Чужой")
    shift, other = await db.groups.create("Смена"), await db.groups.create("Чужая")
    await db.groups.add_members(shift, [oper, ivanova])
    await db.groups.add_members(other, [stranger])
    project = await db.projects.create("Продажи", supervisor_id=site.users["sup@test.ru"])
    await db.projects.set_groups(project, [shift])
    t = MSK_0900
    for state, minutes in (("available", 10), ("talking", 5), ("wrap_up", 1), ("paused", 2),
                           ("online", 2), ("ringing", 1), ("ringback", 1),
                           ("do_not_disturb", 3)):
        await db.intervals.add_closed(user_id=oper, state=state, started_at=t,
                                      ended_at=t + minutes * MINUTE)
        t += minutes * MINUTE
    # From 23:50 the day before to 00:10: only its last ten minutes are this day's.
    midnight = MSK_0900 - 9 * 60 * MINUTE
    await db.intervals.add_closed(user_id=oper, state="available",
                                  started_at=midnight - 10 * MINUTE,
                                  ended_at=midnight + 10 * MINUTE)
    await db.intervals.add_closed(user_id=ivanova, state="talking", started_at=MSK_0900,
                                  ended_at=MSK_0900 + 30 * MINUTE)
    await db.intervals.add_closed(user_id=stranger, state="talking", started_at=MSK_0900,
                                  ended_at=MSK_0900 + 5 * MINUTE)
    return {"oper": oper, "ivanova": ivanova, "stranger": stranger, "other": other}


async def report(site: Site, email: str, query: str) -> tuple[int, Any]:
    return await site.api_get(email, f"/api/v1/reports/operators?{query}")


async def test_the_columns_of_the_manual_for_one_day(staff: Site) -> None:
    ids = await history(staff)
    status, body = await report(staff, "admin@test.ru", DAY)
    assert status == 200 and (body["from"], body["to"], body["tz"]) == (
        "2026-03-02", "2026-03-02", "Europe/Moscow")
    rows = {row["name"]: row for row in body["items"]}
    assert set(rows) == {"Оператор", "Иванова", "Чужой"}
    oper = rows["Оператор"]
    assert (oper["user_id"], oper["extension"], oper["groups"]) == (ids["oper"], "333", ["Смена"])
    assert {k: v // MINUTE for k, v in oper.items() if k.endswith("_ms")} == {
        "available_ms": 20, "talking_ms": 5, "wrap_up_ms": 1, "paused_ms": 2,
        "inactive_ms": 2, "ringing_ms": 1, "ringback_ms": 1, "do_not_disturb_ms": 3,
        # «В линии»: available, do-not-disturb, wrap-up, talking, ringing and ringback.
        "on_line_ms": 20 + 3 + 1 + 5 + 1 + 1}
    assert rows["Иванова"]["talking_ms"] == 30 * MINUTE == rows["Иванова"]["on_line_ms"]
    # The day before holds only the first ten minutes of the interval across midnight.
    status, before = await report(staff, "admin@test.ru", "from=2026-03-01&to=2026-03-01")
    rows = {row["name"]: row for row in before["items"]}
    assert rows["Оператор"]["available_ms"] == 10 * MINUTE and rows["Иванова"]["on_line_ms"] == 0
    # In another time zone the same day starts three hours later: 23:50–00:10 is outside it.
    status, utc = await report(staff, "admin@test.ru", DAY + "&tz=UTC")
    rows = {row["name"]: row for row in utc["items"]}
    assert rows["Оператор"]["available_ms"] == 10 * MINUTE


async def test_filters_and_who_sees_whom(staff: Site) -> None:
    ids = await history(staff)
    status, sup = await report(staff, "sup@test.ru", DAY)
    assert status == 200 and sorted(r["name"] for r in sup["items"]) == ["Иванова", "Оператор"]
    status, own = await report(staff, "oper@test.ru", DAY)
    assert status == 200 and [r["name"] for r in own["items"]] == ["Оператор"]
    _, grouped = await report(staff, "admin@test.ru", DAY + f"&group_id={ids['other']}")
    assert [r["name"] for r in grouped["items"]] == ["Чужой"]
    _, found = await report(staff, "admin@test.ru", DAY + "&q=334")
    assert [r["name"] for r in found["items"]] == ["Иванова"]
    _, found = await report(staff, "admin@test.ru", DAY + "&q=опер")
    assert [r["name"] for r in found["items"]] == ["Оператор"]


async def test_absurd_periods_are_refused_with_the_field(staff: Site) -> None:
    for query, field, message in (
            ("from=2026-03-05&to=2026-03-01", "to", "период кончается раньше, чем начинается"),
            ("from=02.03.2026", "from", "дата в формате ГГГГ-ММ-ДД"),
            ("from=2025-01-01&to=2026-03-01", "to", "период не длиннее 366 дней"),
            (DAY + "&tz=Mars/Olympus", "tz", "неизвестный часовой пояс «Mars/Olympus»"),
            ("from=2026-03-02&to=9999-12-31", "to", "дата с 2000 по 2100 год")):
        status, body = await report(staff, "admin@test.ru", query)
        assert status == 422 and body["error"]["field"] == field, query
        assert body["error"]["message"] == message
    page = await (await staff.signed_in("admin@test.ru")).get(
        "/reports/operators?from=2026-03-05&to=2026-03-01")
    assert page.status == 422
    assert "период кончается раньше, чем начинается" in await page.text()


async def test_downloads_and_the_page_show_the_same_table(staff: Site) -> None:
    await history(staff)
    browser = await staff.signed_in("sup@test.ru")
    response = await browser.get(f"/reports/operators.csv?{DAY}")
    assert response.status == 200 and "operators-2026-03-02-2026-03-02.csv" in \
        response.headers["Content-Disposition"]
    text = (await response.read()).decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert table[0] == ["ФИО", "Тел.", "Группа", "В линии", "Доступен", "Пауза",
                        "Не беспокоить", "В карточке", "В разговоре", "Неактивен",
                        "Ожидание ответа", "Слушает гудки"]
    assert ["Оператор (333)", "", "Смена", "00:31:00", "00:20:00", "00:02:00", "00:03:00",
            "00:01:00", "00:05:00", "00:02:00", "00:01:00", "00:01:00"] in table
    assert len(table) == 3
    response = await browser.get(f"/reports/operators.xlsx?{DAY}")
    assert response.status == 200
    book = openpyxl.load_workbook(io.BytesIO(await response.read()), read_only=True)
    cells = [[c if c is not None else "" for c in row]
             for row in book.active.iter_rows(values_only=True)]
    assert cells == table
    page = await (await browser.get(f"/reports/operators?{DAY}")).text()
    assert page.count("<tr data-operator=") == 2 and "00:31:00" in page
    # His filter offers his project's group only.
    assert ">Смена</option>" in page and "Чужая" not in page
    assert f'href="/reports/operators.xlsx?{DAY}"' in page.replace("&amp;", "&")
    assert 'id="report-columns"' in page


async def test_the_current_state_counts_while_the_dialer_runs(
        staff: Site, start_dialer: StartDialer) -> None:
    runtime, _ = await start_dialer()
    oper = staff.users["oper@test.ru"]
    staff.services.bus.publish("agent.state", user_id=oper, state="pause", at=0)
    await until(lambda: oper in runtime.roster and runtime.roster.state(oper).value == "paused",
                "the operator paused")
    await asyncio.sleep(0.05)
    # Nothing is stored yet for the open pause; today's report counts it up to now.
    assert [r for r in await staff.db.intervals.between(start=0, end=2**62)
            if r.state == "paused"] == []
    status, body = await report(staff, "admin@test.ru", "")
    [row] = [r for r in body["items"] if r["user_id"] == oper]
    assert status == 200 and row["paused_ms"] >= 50 and row["on_line_ms"] == 0
    # The status history ends with it too.
    browser = await staff.signed_in("admin@test.ru")
    text = (await (await browser.get("/reports/operators/history.csv?q=333")).read()
            ).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert rows[-1][:2] == ["Оператор (333)", "Пауза"]


async def test_the_column_chooser_in_chromium(staff: Site) -> None:
    await history(staff)
    base = staff.base.rstrip("/")
    async with load_driver().ChromiumDriver.launch() as browser:
        await sign_in(browser, base, "admin@test.ru")
        await browser.navigate(f"{base}/reports/operators?{DAY}")
        await browser.wait_for("#operator-statistics")

        async def hidden(column: str) -> list[bool]:
            result = await browser.execute(
                "return Array.from(document.querySelectorAll("
                f"'#operator-statistics [data-column=\"{column}\"]')).map(c => c.hidden);")
            return list(result)

        assert await hidden("paused") == [False] * 4  # the header and three operators
        await browser.click(await browser.find('#report-columns input[data-column="paused"]'))
        assert await hidden("paused") == [True] * 4 and await hidden("talking") == [False] * 4
        await browser.click(await browser.find('#report-columns input[data-column="all"]'))
        assert await hidden("talking") == [True] * 4
        await browser.click(await browser.find('#report-columns input[data-column="all"]'))
        assert await hidden("paused") == [False] * 4 and await hidden("talking") == [False] * 4
        assert [e for e in await browser.console_logs() if e.get("level") == "SEVERE"] == []


async def test_days_follow_the_configured_call_center_zone(staff: Site) -> None:
    await history(staff)
    staff.services.config = staff.services.config.with_overrides(
        {("general", "timezone"): "Asia/Yekaterinburg"})
    status, body = await report(staff, "admin@test.ru", DAY)
    assert status == 200 and body["tz"] == "Asia/Yekaterinburg"
    # 23:50–00:10 Moscow is 01:50–02:10 in Yekaterinburg: all twenty minutes on 2 March.
    [oper] = [r for r in body["items"] if r["name"] == "Оператор"]
    assert oper["available_ms"] == 30 * MINUTE


async def test_by_day_a_row_per_day_and_operator_with_the_date(staff: Site) -> None:
    await history(staff)
    two_days = "from=2026-03-01&to=2026-03-02&by_day=1"
    status, body = await report(staff, "admin@test.ru", two_days)
    assert status == 200
    rows = [(r["date"], r["name"], r["available_ms"] // MINUTE, r["on_line_ms"] // MINUTE)
            for r in body["items"]]
    # The interval across midnight is cut at it: ten minutes on each day; a day an operator
    # has no time in has no row.
    assert rows == [("2026-03-01", "Оператор", 10, 10),
                    ("2026-03-02", "Иванова", 0, 30),
                    ("2026-03-02", "Оператор", 20, 31),
                    ("2026-03-02", "Чужой", 0, 5)]
    # The days add up to the period's totals.
    _, whole = await report(staff, "admin@test.ru", "from=2026-03-01&to=2026-03-02")
    oper = next(r for r in whole["items"] if r["name"] == "Оператор")
    assert oper["available_ms"] == 30 * MINUTE and "date" not in oper
    # In UTC the cut is three hours later: the interval across Moscow's midnight falls on
    # 1 March whole, 2 March keeps the ten minutes of the morning.
    _, utc = await report(staff, "admin@test.ru", two_days + "&tz=UTC")
    assert [(r["date"], r["available_ms"] // MINUTE) for r in utc["items"]
            if r["name"] == "Оператор"] == [("2026-03-01", 20), ("2026-03-02", 10)]
    browser = await staff.signed_in("sup@test.ru")
    text = (await (await browser.get(f"/reports/operators.csv?{two_days}")).read()
            ).decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert table[0][:3] == ["Дата", "ФИО", "Тел."]
    assert [row[:2] for row in table[1:]] == [["01-03-2026", "Оператор (333)"],
                                              ["02-03-2026", "Иванова (334)"],
                                              ["02-03-2026", "Оператор (333)"]]
    page = await (await browser.get(f"/reports/operators?{two_days}")).text()
    assert page.count('data-day="2026-03-02"') == 2 and 'name="by_day" value="1" checked' in page

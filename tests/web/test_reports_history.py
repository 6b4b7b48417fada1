"""«Историю статусов можно скачать» (§6.3): the operators' status history interval by
interval, as CSV and XLSX, for the report's filters, from the site's SQLite file."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
from test_reports import DAY, MINUTE, history
from webtools import Site

from sipspeak.storage import now_ms

HEADER = ["ФИО", "Статус", "Начало", "Конец", "Длительность"]
OPER = [
    # From 23:50 the day before: only its part in the day.
    ["Оператор (333)", "Доступен", "02-03-2026 00:00:00", "02-03-2026 00:10:00", "00:10:00"],
    ["Оператор (333)", "Доступен", "02-03-2026 09:00:00", "02-03-2026 09:10:00", "00:10:00"],
    ["Оператор (333)", "В разговоре", "02-03-2026 09:10:00", "02-03-2026 09:15:00", "00:05:00"],
    ["Оператор (333)", "В карточке", "02-03-2026 09:15:00", "02-03-2026 09:16:00", "00:01:00"],
    ["Оператор (333)", "Пауза", "02-03-2026 09:16:00", "02-03-2026 09:18:00", "00:02:00"],
    ["Оператор (333)", "Неактивен", "02-03-2026 09:18:00", "02-03-2026 09:20:00", "00:02:00"],
    ["Оператор (333)", "Ожидание ответа", "02-03-2026 09:20:00", "02-03-2026 09:21:00",
     "00:01:00"],
    ["Оператор (333)", "Слушает гудки", "02-03-2026 09:21:00", "02-03-2026 09:22:00",
     "00:01:00"],
    ["Оператор (333)", "Не беспокоить", "02-03-2026 09:22:00", "02-03-2026 09:25:00",
     "00:03:00"]]
IVANOVA = [["Иванова (334)", "В разговоре", "02-03-2026 09:00:00", "02-03-2026 09:30:00",
            "00:30:00"]]
STRANGER = [["Чужой", "В разговоре", "02-03-2026 09:00:00", "02-03-2026 09:05:00",
             "00:05:00"]]


async def csv_table(site: Site, email: str, query: str) -> list[list[str]]:
    browser = await site.signed_in(email)
    response = await browser.get(f"/reports/operators/history.csv?{query}")
    assert response.status == 200, await response.text()
    return list(csv.reader(io.StringIO((await response.read()).decode("utf-8-sig")),
                           delimiter=";"))


async def test_every_interval_of_the_day_for_each_operator_in_name_order(staff: Site) -> None:
    ids = await history(staff)
    table = await csv_table(staff, "admin@test.ru", DAY)
    assert table == [HEADER, *IVANOVA, *OPER, *STRANGER]
    # The intervals add up to the report's figures.
    _, report = await staff.api_get("admin@test.ru", f"/api/v1/reports/operators?{DAY}")
    oper = next(r for r in report["items"] if r["name"] == "Оператор")
    assert sum(int(row[4][3:5]) for row in OPER if row[1] == "Доступен") * MINUTE == \
        oper["available_ms"]
    # The report's filters choose whose history it is.
    assert await csv_table(staff, "admin@test.ru", f"{DAY}&group_id={ids['other']}") == [
        HEADER, *STRANGER]
    assert await csv_table(staff, "admin@test.ru", f"{DAY}&q=334") == [HEADER, *IVANOVA]
    assert await csv_table(staff, "sup@test.ru", DAY) == [HEADER, *IVANOVA, *OPER]
    assert await csv_table(staff, "oper@test.ru", DAY) == [HEADER, *OPER]
    # The day before: the first ten minutes of the interval across midnight.
    assert await csv_table(staff, "oper@test.ru", "from=2026-03-01&to=2026-03-01") == [
        HEADER, ["Оператор (333)", "Доступен", "01-03-2026 23:50:00", "02-03-2026 00:00:00",
                 "00:10:00"]]
    browser = await staff.signed_in("admin@test.ru")
    response = await browser.get(f"/reports/operators/history.xlsx?{DAY}")
    assert response.status == 200
    assert "status-history-2026-03-02-2026-03-02.xlsx" in response.headers[
        "Content-Disposition"]
    book = openpyxl.load_workbook(io.BytesIO(await response.read()), read_only=True)
    assert book.active.title == "История статусов"
    assert [list(row) for row in book.active.iter_rows(values_only=True)] == [
        HEADER, *IVANOVA, *OPER, *STRANGER]
    page = await (await browser.get(f"/reports/operators?{DAY}&group_id={ids['other']}")).text()
    assert (f'href="/reports/operators/history.csv?{DAY}&group_id={ids["other"]}"'
            in page.replace("&amp;", "&"))
    assert "Скачать историю статусов XLSX" in page


async def test_the_history_reads_on_batch_after_batch(staff: Site, monkeypatch: Any) -> None:
    await history(staff)
    monkeypatch.setattr("sipspeak.web.reports.HISTORY_BATCH", 2)
    # A second interval starting in the same millisecond as another: the batches read on
    # from (start, id), so it is neither repeated nor skipped.
    twin_start = int(datetime(2026, 3, 2, 9, 10, tzinfo=ZoneInfo("Europe/Moscow")).timestamp()
                     * 1000)
    await staff.db.intervals.add_closed(user_id=staff.users["oper@test.ru"], state="paused",
                                        started_at=twin_start, ended_at=twin_start + MINUTE)
    table = await csv_table(staff, "oper@test.ru", DAY)
    twin = ["Оператор (333)", "Пауза", "02-03-2026 09:10:00", "02-03-2026 09:11:00", "00:01:00"]
    assert table == [HEADER, *OPER[:3], twin, *OPER[3:]]


async def test_an_interval_still_open_ends_now(staff: Site) -> None:
    await history(staff)
    zone = ZoneInfo("Europe/Moscow")
    midnight = datetime.now(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    started = max(now_ms() - 5 * MINUTE, int(midnight.timestamp() * 1000))
    await staff.db.intervals.start(user_id=staff.users["ivanova@test.ru"], state="paused",
                                   at=started)
    before = datetime.now(zone).replace(microsecond=0)
    [header, row] = await csv_table(staff, "admin@test.ru", "q=334")
    after = datetime.now(zone)
    assert header == HEADER and row[:3] == [
        "Иванова (334)", "Пауза",
        datetime.fromtimestamp(started / 1000, zone).strftime("%d-%m-%Y %H:%M:%S")]
    end = datetime.strptime(row[3], "%d-%m-%Y %H:%M:%S").replace(tzinfo=zone)
    assert before <= end <= after
    start = datetime.strptime(row[2], "%d-%m-%Y %H:%M:%S").replace(tzinfo=zone)
    hours, minutes, seconds = (int(part) for part in row[4].split(":"))
    assert abs(timedelta(hours=hours, minutes=minutes, seconds=seconds) - (end - start)) <= \
        timedelta(seconds=1)


async def test_bad_filters_and_an_oversized_xlsx_are_refused(staff: Site,
                                                             monkeypatch: Any) -> None:
    await history(staff)
    browser = await staff.signed_in("admin@test.ru")
    response = await browser.get("/reports/operators/history.csv?from=2026-03-05&to=2026-03-01")
    assert response.status == 422
    assert "период кончается раньше, чем начинается" in await response.text()
    monkeypatch.setattr("sipspeak.web.exports.XLSX_MAX_ROWS", 10)
    response = await browser.get(f"/reports/operators/history.xlsx?{DAY}")
    assert response.status == 422
    assert "в выгрузке 11 строк, а лист XLSX вмещает не больше 10" in await response.text()
    # CSV has no such limit.
    table = await csv_table(staff, "admin@test.ru", DAY)
    assert len(table) == 1 + 11


async def months_around_the_day(site: Site) -> None:
    """History from December 2025 to April 2026 around 2 March: Оператор works 14:00–14:30
    every other day; Иванова likewise until 19 February, then pauses from 20 February 10:00
    until 09:00 on 2 March (an interval crossing the period start by days), and works again
    from 3 March."""
    zone = ZoneInfo("Europe/Moscow")
    db = site.db
    oper, ivanova = site.users["oper@test.ru"], site.users["ivanova@test.ru"]
    day = datetime(2025, 12, 1, 14, tzinfo=zone)
    while day < datetime(2026, 5, 1, tzinfo=zone):
        start = int(day.timestamp() * 1000)
        if day.date() not in (datetime(2026, 3, 1).date(), datetime(2026, 3, 2).date()):
            await db.intervals.add_closed(user_id=oper, state="available", started_at=start,
                                          ended_at=start + 30 * MINUTE)
        if not datetime(2026, 2, 20, tzinfo=zone) <= day < datetime(2026, 3, 3, tzinfo=zone):
            await db.intervals.add_closed(user_id=ivanova, state="available",
                                          started_at=start, ended_at=start + 30 * MINUTE)
        day += timedelta(days=1)
    await db.intervals.add_closed(
        user_id=ivanova, state="paused",
        started_at=int(datetime(2026, 2, 20, 10, tzinfo=zone).timestamp() * 1000),
        ended_at=int(datetime(2026, 3, 2, 9, tzinfo=zone).timestamp() * 1000))


def spy(site: Site, monkeypatch: Any) -> list[tuple[str, list[Any]]]:
    """Every query the repositories send through ``fetchall`` and ``fetchone``."""
    seen: list[tuple[str, list[Any]]] = []
    for name in ("fetchall", "fetchone"):
        real = getattr(site.db, name)

        async def recording(sql: str, params: Any = (), *, real: Any = real) -> Any:
            seen.append((sql, list(params)))
            return await real(sql, params)

        monkeypatch.setattr(site.db, name, recording)
    return seen


async def test_a_day_among_months_is_read_from_the_period_start(staff: Site,
                                                                monkeypatch: Any) -> None:
    await history(staff)
    await months_around_the_day(staff)
    paused = ["Иванова (334)", "Пауза", "02-03-2026 00:00:00", "02-03-2026 09:00:00",
              "09:00:00"]
    seen = spy(staff, monkeypatch)
    # Exactly the day's intervals: the one running into it from 23:50 (or for days) cut to
    # midnight, none of the months before or after.
    assert await csv_table(staff, "sup@test.ru", DAY) == [HEADER, paused, *IVANOVA, *OPER]
    monkeypatch.setattr("sipspeak.web.exports.XLSX_MAX_ROWS", 10)
    browser = await staff.signed_in("sup@test.ru")
    response = await browser.get(f"/reports/operators/history.xlsx?{DAY}")
    assert "в выгрузке 11 строк, а лист XLSX вмещает не больше 10" in await response.text()
    monkeypatch.undo()

    # The first batch and the count seek on operator_intervals_user from a lower bound on
    # started_at (the interval running into the period, else the period's start) instead of
    # reading each operator's history from his first interval.
    first = next(q for q in seen
                 if q[0].startswith("SELECT * FROM operator_intervals WHERE user_id = ?")
                 and "id > ?" not in q[0])
    count = next(q for q in seen if "COUNT(*)" in q[0] and "operator_intervals" in q[0])
    for sql, params in (first, count):
        rows = await staff.db.fetchall(f"EXPLAIN QUERY PLAN {sql}", params)
        plan = "\n".join(str(dict(row)["detail"]) for row in rows)
        assert ("USING INDEX operator_intervals_user (user_id=? AND started_at>? AND"
                " started_at<?)") in plan, plan
        assert "B-TREE" not in plan and "SCAN operator_intervals" not in plan, plan

    # The same counted and read straight off the repository, for a day inside the long pause
    # and for a day with nothing running into it.
    zone = ZoneInfo("Europe/Moscow")

    def day(month: int, number: int) -> tuple[int, int]:
        start = datetime(2026, month, number, tzinfo=zone)
        return (int(start.timestamp() * 1000),
                int((start + timedelta(days=1)).timestamp() * 1000))

    ivanova = staff.users["ivanova@test.ru"]
    start, end = day(2, 25)
    [pause] = await staff.db.intervals.history(user_id=ivanova, start=start, end=end, limit=10)
    assert (pause.state, pause.ended_at) == ("paused", day(3, 2)[0] + 9 * 60 * MINUTE)
    assert await staff.db.intervals.history_count(user_ids=[ivanova], start=start,
                                                  end=end) == 1
    start, end = day(4, 10)
    [alone] = await staff.db.intervals.history(user_id=ivanova, start=start, end=end, limit=10)
    assert alone.started_at == start + 14 * 60 * MINUTE and alone.state == "available"
    assert await staff.db.intervals.history_count(
        user_ids=[ivanova, staff.users["oper@test.ru"]], start=start, end=end) == 2
    assert await csv_table(staff, "sup@test.ru", "from=2026-02-25&to=2026-02-25") == [
        HEADER, ["Иванова (334)", "Пауза", "25-02-2026 00:00:00", "26-02-2026 00:00:00",
                 "24:00:00"],
        ["Оператор (333)", "Доступен", "25-02-2026 14:00:00", "25-02-2026 14:30:00",
         "00:30:00"]]

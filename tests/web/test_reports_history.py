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

"""Sorting the calls and operators reports by a column (a click on its header: ascending,
a second click descending): in SQL for the paged calls report, with its downloads in the
same order, and unknown columns refused with a clear error."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from test_browser import load_driver, sign_in, until
from test_reports import DAY as OPERATORS_DAY
from test_reports import history
from test_reports_calls import DAY, at_msk, calls
from test_reports_own import world
from webtools import Site

from sipspeak.storage.models import CALL_SORTS


async def more_calls(site: Site) -> dict[str, Any]:
    """The calls of test_reports_calls plus three that tie with others on most columns: one
    started in the same millisecond as the busy call, two as long as it."""
    ids = await calls(site)
    db = site.db
    ids["twin"] = await db.calls.open(direction="outbound", started_at=at_msk(2, 10),
                                      project_id=ids["sales"], kind="auto")
    for name, hour in (("tie1", 12), ("tie2", 13)):
        ids[name] = await db.calls.open(direction="outbound", started_at=at_msk(2, hour),
                                        project_id=ids["sales"], kind="auto",
                                        contact_phone="79030009999", duration_ms=3_000,
                                        client_status="Занято", result="busy")
    return ids


async def api_ids(site: Site, query: str) -> list[int]:
    status, body = await site.api_get("admin@test.ru", f"/api/v1/reports/calls?{DAY}&{query}")
    assert status == 200, (query, body)
    return [c["id"] for c in body["items"]]


async def test_calls_sorted_by_a_column_both_ways(staff: Site) -> None:
    ids = await more_calls(staff)
    # Ties go by id the same way as the column.
    assert await api_ids(staff, "sort=duration&order=asc") == [
        ids[k] for k in ("twin", "busy", "tie1", "tie2", "answered", "dropped")]
    assert await api_ids(staff, "sort=duration&order=desc") == [
        ids[k] for k in ("dropped", "answered", "tie2", "tie1", "busy", "twin")]
    assert (await api_ids(staff, "sort=project&order=asc"))[:1] == [ids["dropped"]]  # «Опросы»
    assert (await api_ids(staff, "sort=operator&order=desc"))[:1] == [ids["answered"]]
    assert await api_ids(staff, "") == await api_ids(staff, "sort=date&order=desc")
    assert await api_ids(staff, "sort=date&order=asc") == [
        ids[k] for k in ("answered", "busy", "twin", "dropped", "tie1", "tie2")]
    # Sorting works within the filters and the pages.
    assert await api_ids(staff, "sort=duration&order=asc&result=busy") == [
        ids[k] for k in ("busy", "tie1", "tie2")]


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_downloads_follow_the_sort_batch_after_batch(staff: Site, monkeypatch: Any,
                                                           order: str) -> None:
    ids = await more_calls(staff)
    monkeypatch.setattr("sipspeak.web.reports_calls.EXPORT_BATCH", 1)
    browser = await staff.signed_in("admin@test.ru")
    every = sorted(ids[k] for k in ("answered", "busy", "dropped", "twin", "tie1", "tie2"))
    for column in CALL_SORTS:
        expected = await api_ids(staff, f"sort={column}&order={order}")
        assert sorted(expected) == every, column
        response = await browser.get(f"/reports/calls.csv?{DAY}&sort={column}&order={order}")
        table = list(csv.reader(io.StringIO((await response.read()).decode("utf-8-sig")),
                                delimiter=";"))
        # Each batch of one row reads on from the last row's (value, id): none repeats or
        # goes missing, whatever the column.
        assert [int(row[1]) for row in table[1:]] == expected, column


async def test_an_unknown_sort_is_refused_clearly(staff: Site) -> None:
    await calls(staff)
    for path, field, message in (
            (f"/api/v1/reports/calls?{DAY}&sort=password", "sort",
             "по столбцу «password» отчёт не сортируется"),
            (f"/api/v1/reports/calls?{DAY}&sort=c.id;DROP TABLE calls", "sort",
             "по столбцу «c.id;DROP TABLE calls» отчёт не сортируется"),
            (f"/api/v1/reports/calls?{DAY}&sort=talk&order=sideways", "order",
             "выберите значение из списка"),
            (f"/api/v1/reports/operators?{OPERATORS_DAY}&sort=email", "sort",
             "по столбцу «email» отчёт не сортируется")):
        status, body = await staff.api_get("admin@test.ru", path)
        assert status == 422 and body["error"]["field"] == field, path
        assert body["error"]["message"] == message
    assert len(await api_ids(staff, "")) == 3  # nothing was dropped
    browser = await staff.signed_in("admin@test.ru")
    page = await browser.get(f"/reports/calls?{DAY}&sort=password")
    assert page.status == 422
    assert "по столбцу «password» отчёт не сортируется" in await page.text()
    await staff.db.users.update(staff.users["admin@test.ru"], language="en")
    _, body = await staff.api_get("admin@test.ru", f"/api/v1/reports/calls?{DAY}&sort=x")
    assert body["error"]["message"] == "the report cannot be sorted by “x”"


async def operator_order(site: Site, query: str) -> tuple[list[int], list[list[str]]]:
    """The calls the operator reads in the order the report, the page and the CSV (a row per
    batch) give them, and the numbers he sees (contact, from, to)."""
    status, body = await site.api_get("oper@test.ru", f"/api/v1/reports/calls?{DAY}&{query}")
    assert status == 200, (query, body)
    ids = [c["id"] for c in body["items"]]
    browser = await site.signed_in("oper@test.ru")
    page = await (await browser.get(f"/reports/calls?{DAY}&{query}")).text()
    assert [int(i) for i in re.findall(r'<tr data-call="(\d+)">', page)] == ids, query
    response = await browser.get(f"/reports/calls.csv?{DAY}&{query}")
    table = list(csv.reader(io.StringIO((await response.read()).decode("utf-8-sig")),
                            delimiter=";"))
    assert [int(row[1]) for row in table[1:]] == ids, query
    return ids, [[c["contact_phone"], c["from_number"], c["to_number"]] for c in body["items"]]


async def test_an_operator_is_sorted_by_the_numbers_he_sees(staff: Site,
                                                            monkeypatch: Any) -> None:
    """Hidden digits never move a row: an operator sorting by a number column gets the
    masked numbers' calls where their masked form falls, whatever the digits behind it."""
    ids = await world(staff)
    db, oper = staff.db, staff.users["oper@test.ru"]

    async def call(project: int, phone: str, hour: int, *, inbound: bool = False) -> int:
        return await db.calls.open(
            direction="inbound" if inbound else "outbound", started_at=at_msk(2, hour),
            project_id=project, operator_id=oper, contact_phone=phone,
            from_number=phone if inbound else "74950009988",
            to_number="117049" if inbound else phone)

    # Numbers he sees, around the hidden «7903*****22» of world()'s call in «Продажи».
    await call(ids["polls"], "79031234567", 13)
    await call(ids["polls"], "79039999999", 14)
    await call(ids["polls"], "79035550000", 15, inbound=True)
    # Hidden ones: an inbound caller (masked «7903*****11») and a short number («***»).
    inbound = await call(ids["sales"], "79030000011", 16, inbound=True)
    short = await call(ids["sales"], "54321", 17)
    monkeypatch.setattr("sipspeak.web.reports_calls.EXPORT_BATCH", 1)
    queries = [f"sort={column}&order={order}"
               for column in ("phone", "from", "to") for order in ("asc", "desc")]
    before = {q: await operator_order(staff, q) for q in queries}
    admin_before = await api_ids(staff, "sort=phone&order=asc")

    # Only hidden digits change: the masks stay the same.
    await db.calls.update(ids["hidden"], contact_phone="79039991122", to_number="79039991122")
    await db.calls.update(inbound, contact_phone="79038880011", from_number="79038880011")
    await db.calls.update(short, contact_phone="98765", to_number="98765")
    for query in queries:
        assert await operator_order(staff, query) == before[query], query
    # Staff see the numbers whole, and for them the order does follow the new digits.
    assert await api_ids(staff, "sort=phone&order=asc") != admin_before

    # The order is that of the numbers as he reads them (then by id), masked or not.
    for query in queries:
        order, numbers = before[query]
        column = ("phone", "from", "to").index(query.split("&")[0].removeprefix("sort="))
        keyed = sorted(zip((n[column] for n in numbers), order, strict=True),
                       reverse=query.endswith("desc"))
        assert [i for _, i in keyed] == order, query
    [hidden] = [n for i, n in zip(*before["sort=phone&order=asc"], strict=True)
                if i == ids["hidden"]]
    assert hidden == ["7903*****22", "74950009988", "7903*****22"]
    assert ["***", "74950009988", "***"] in before["sort=to&order=asc"][1]
    assert ["7903*****11", "7903*****11", "117049"] in before["sort=from&order=asc"][1]


async def test_the_headers_link_to_the_sort(staff: Site) -> None:
    await calls(staff)
    browser = await staff.signed_in("admin@test.ru")
    page = (await (await browser.get(f"/reports/calls?{DAY}&kind=auto")).text()).replace(
        "&amp;", "&")
    # Newest first: «Дата» is the column, descending; another column starts ascending.
    assert '<th data-column="date" aria-sort="descending">' in page
    assert f'href="?{DAY}&kind=auto&sort=date&order=asc"' in page
    assert f'href="?{DAY}&kind=auto&sort=duration&order=asc"' in page
    page = (await (await browser.get(f"/reports/calls?{DAY}&sort=duration&order=asc")).text()
            ).replace("&amp;", "&")
    assert '<th data-column="duration" aria-sort="ascending">' in page
    assert f'href="?{DAY}&sort=duration&order=desc"' in page
    assert '<input type="hidden" name="sort" value="duration">' in page
    assert f'href="/reports/calls.csv?{DAY}&sort=duration&order=asc"' in page


async def test_operators_sorted_by_a_column(staff: Site) -> None:
    await history(staff)

    async def names(query: str) -> list[str]:
        status, body = await staff.api_get(
            "admin@test.ru", f"/api/v1/reports/operators?{OPERATORS_DAY}&{query}")
        assert status == 200, query
        return [r["name"] for r in body["items"]]

    assert await names("") == ["Иванова", "Оператор", "Чужой"]
    assert await names("sort=name&order=desc") == ["Чужой", "Оператор", "Иванова"]
    # Ties (five minutes each) keep the name order either way.
    assert await names("sort=talking&order=desc") == ["Иванова", "Оператор", "Чужой"]
    assert await names("sort=talking&order=asc") == ["Оператор", "Чужой", "Иванова"]
    assert (await names("sort=available&order=desc"))[:1] == ["Оператор"]
    assert await names("sort=groups") == ["Иванова", "Оператор", "Чужой"]  # «Смена» < «Чужая»
    _, by_day = await staff.api_get("admin@test.ru", "/api/v1/reports/operators?by_day=1"
                                    "&from=2026-03-01&to=2026-03-02&sort=date&order=desc")
    assert [(r["date"], r["name"]) for r in by_day["items"]] == [
        ("2026-03-02", "Иванова"), ("2026-03-02", "Оператор"), ("2026-03-02", "Чужой"),
        ("2026-03-01", "Оператор")]
    browser = await staff.signed_in("admin@test.ru")
    text = (await (await browser.get(
        f"/reports/operators.csv?{OPERATORS_DAY}&sort=talking&order=asc")).read()
            ).decode("utf-8-sig")
    assert [row[0] for row in csv.reader(io.StringIO(text), delimiter=";")][1:] == [
        "Оператор (333)", "Чужой", "Иванова (334)"]
    page = (await (await browser.get(
        f"/reports/operators?{OPERATORS_DAY}&sort=talking&order=asc")).text()).replace(
        "&amp;", "&")
    assert '<th data-column="talking" aria-sort="ascending">' in page
    assert f'href="?{OPERATORS_DAY}&sort=talking&order=desc"' in page


async def test_filtering_and_sorting_in_chromium(staff: Site) -> None:
    ids = await more_calls(staff)
    base = staff.base.rstrip("/")
    async with load_driver().ChromiumDriver.launch() as browser:
        await sign_in(browser, base, "admin@test.ru")
        await browser.navigate(f"{base}/reports/calls?{DAY}")
        await browser.wait_for("#calls-report")

        async def rows() -> list[int]:
            found = await browser.execute(
                "return Array.from(document.querySelectorAll('#calls-report tr[data-call]'))"
                ".map(r => Number(r.dataset.call));")
            return list(found)

        async def url_has(part: str) -> bool:
            return part in await browser.current_url()

        assert len(await rows()) == 6
        # Choose «Тип»: «Автонабор» and search: the inbound call goes.
        await browser.execute(
            "document.querySelector('#report-filters select[name=kind]').value = 'auto';")
        await browser.click(await browser.find('#report-filters button[type="submit"]'))
        await until(lambda: url_has("kind=auto"), "the filtered page")
        await browser.wait_for("#calls-report")
        assert ids["dropped"] not in await rows() and len(await rows()) == 5
        # A click on «Длит.» sorts ascending, a second one descending; the filter stays.
        await browser.click(await browser.find('#calls-report th[data-column="duration"] a'))
        await until(lambda: url_has("sort=duration&order=asc"), "the sorted page")
        await browser.wait_for("#calls-report")
        ascending = [ids[k] for k in ("twin", "busy", "tie1", "tie2", "answered")]
        assert await rows() == ascending
        await browser.click(await browser.find('#calls-report th[data-column="duration"] a'))
        await until(lambda: url_has("order=desc"), "the page sorted the other way")
        await browser.wait_for("#calls-report")
        assert await rows() == ascending[::-1]
        assert "kind=auto" in await browser.current_url()
        assert [e for e in await browser.console_logs() if e.get("level") == "SEVERE"] == []

"""An operator's own statistics (§1.3 «просмотр собственной статистики»): the operators and
calls reports scoped to himself — no filter widens that — with hidden numbers masked, over
real rows in the site's SQLite file."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import openpyxl
from webtools import Browser, Site

from sipspeak.crm.phones import mask_phone
from sipspeak.storage.models import NewContact

DAY = "from=2026-03-02&to=2026-03-02"
MINUTE = 60_000


def at_msk(hour: int, minute: int = 0) -> int:
    return int(datetime(2026, 3, 2, hour - 3, minute, tzinfo=UTC).timestamp() * 1000)


async def world(site: Site) -> dict[str, Any]:
    """Оператор and Иванова in «Смена» of «Продажи» (numbers hidden), Чужой in «Чужая» of
    «Опросы» (numbers shown); each with a call and time talking on 2 March 2026 (Moscow),
    and one more call of Оператор's, inbound, in «Опросы»."""
    db = site.db
    oper = site.users["oper@test.ru"]
    ivanova = await site.user("operator", "ivanova@test.ru", full_name="Иванова",
                              extension="334")
    stranger = await site.user("operator", "stranger@test.ru", full_name="Чужой")
    shift, other = await db.groups.create("Смена"), await db.groups.create("Чужая")
    await db.groups.add_members(shift, [oper, ivanova])
    await db.groups.add_members(other, [stranger])
    sales = await db.projects.create("Продажи", supervisor_id=site.users["sup@test.ru"])
    polls = await db.projects.create("Опросы")
    await db.projects.update(sales, show_numbers=False)
    await db.projects.set_groups(sales, [shift])
    await db.projects.set_groups(polls, [other])
    await db.contacts.insert_many(project_id=sales, upload_id=None, tags=["vip"], contacts=[
        NewContact(phone="79030001122", full_name="Иван Петров")])
    contact = (await db.contacts.list(project_id=sales))[0].id

    async def call(project: int, started: int, operator: int, phone: str, *,
                   inbound: bool = False, **values: Any) -> int:
        call_id = await db.calls.open(direction="inbound" if inbound else "outbound",
                                      started_at=started, project_id=project,
                                      operator_id=operator, contact_phone=phone,
                                      from_number=phone if inbound else "74950009988",
                                      to_number="117049" if inbound else phone, **values)
        await db.calls.update(call_id, ended_at=started + 60_000, duration_ms=60_000,
                              result="answered")
        return call_id

    hidden = await call(sales, at_msk(9), oper, "79030001122", contact_id=contact,
                        kind="auto", recording_path="/nowhere/call.wav")
    shown = await call(polls, at_msk(10), oper, "79161234567", inbound=True, kind="inbound")
    hers = await call(sales, at_msk(11), ivanova, "79035550000", kind="auto")
    his = await call(polls, at_msk(12), stranger, "79167770000", kind="auto")
    for user, minutes in ((oper, 10), (ivanova, 20), (stranger, 30)):
        await db.intervals.add_closed(user_id=user, state="talking", started_at=at_msk(9),
                                      ended_at=at_msk(9) + minutes * MINUTE)
    return {"oper": oper, "ivanova": ivanova, "stranger": stranger, "shift": shift,
            "other": other, "sales": sales, "polls": polls, "hidden": hidden,
            "shown": shown, "hers": hers, "his": his}


def table_of(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))


async def test_an_operator_sees_his_own_row_whatever_the_filters_say(staff: Site) -> None:
    ids = await world(staff)
    for query, names in (("", ["Оператор"]),
                         (f"group_id={ids['other']}", []),
                         (f"group_id={ids['shift']}", ["Оператор"]),
                         (f"project_id={ids['polls']}", []),
                         (f"project_id={ids['sales']}", ["Оператор"]),
                         ("q=Иванова", []), ("q=334", []), ("q=Чуж", []),
                         ("by_day=1", ["Оператор"]),
                         ("sort=talking&order=desc", ["Оператор"])):
        status, body = await staff.api_get("oper@test.ru",
                                           f"/api/v1/reports/operators?{DAY}&{query}")
        assert status == 200, query
        assert [r["name"] for r in body["items"]] == names, query
    # The supervisor's and the administrator's scope for the same project filter.
    _, sup = await staff.api_get("sup@test.ru",
                                 f"/api/v1/reports/operators?{DAY}&project_id={ids['sales']}")
    assert [r["name"] for r in sup["items"]] == ["Иванова", "Оператор"]
    _, sup = await staff.api_get("sup@test.ru",
                                 f"/api/v1/reports/operators?{DAY}&project_id={ids['polls']}")
    assert sup["items"] == []  # not his project: nobody, not everybody
    _, admin = await staff.api_get("admin@test.ru",
                                   f"/api/v1/reports/operators?{DAY}&project_id={ids['polls']}")
    assert [r["name"] for r in admin["items"]] == ["Чужой"]

    browser = await staff.signed_in("oper@test.ru")
    for path in (f"/reports/operators.csv?{DAY}&group_id={ids['other']}",
                 f"/reports/operators.csv?{DAY}"):
        rows = table_of(await (await browser.get(path)).read())
        assert [r[0] for r in rows[1:]] == ([] if "group_id" in path else ["Оператор (333)"])
    response = await browser.get(f"/reports/operators.xlsx?{DAY}&q=Чужой")
    book = openpyxl.load_workbook(io.BytesIO(await response.read()), read_only=True)
    assert len(list(book.active.iter_rows(values_only=True))) == 1  # the header only
    history = table_of(await (await browser.get(
        f"/reports/operators/history.csv?{DAY}&project_id={ids['polls']}&group_id="
        f"{ids['other']}")).read())
    assert history[1:] == []
    history = table_of(await (await browser.get(
        f"/reports/operators/history.csv?{DAY}")).read())
    assert [r[0] for r in history[1:]] == ["Оператор (333)"]
    page = await (await browser.get(f"/reports/operators?{DAY}")).text()
    assert page.count("<tr data-operator=") == 1 and "Иванова" not in page
    assert 'name="group_id"' not in page and 'href="/reports/contacts"' not in page


async def test_an_operator_reads_his_own_calls_with_hidden_numbers_masked(staff: Site) -> None:
    ids = await world(staff)

    async def found(query: str) -> list[int]:
        status, body = await staff.api_get("oper@test.ru", f"/api/v1/reports/calls?{DAY}&{query}")
        assert status == 200, query
        assert body["count"] == len(body["items"])
        return [c["id"] for c in body["items"]]

    assert await found("") == [ids["shown"], ids["hidden"]]
    for query, expected in ((f"operator_id={ids['ivanova']}", []),
                            (f"operator_id={ids['stranger']}", []),
                            (f"group_id={ids['other']}", []),
                            (f"group_id={ids['shift']}", ["shown", "hidden"]),
                            (f"project_id={ids['sales']}", ["hidden"]),
                            ("phone=79035550000", []), ("phone=79167770000", []),
                            # His hidden number's digits find nothing: searching must not
                            # reveal them; a number he may see is found.
                            ("phone=0001122", []), ("phone=7903", []),
                            ("phone=1234567", ["shown"]),
                            ("tag=vip", ["hidden"]), ("kind=inbound", ["shown"])):
        assert await found(query) == [ids[k] for k in expected], query
    # The administrator finds the hidden number's call by its digits.
    _, admin = await staff.api_get("admin@test.ru", f"/api/v1/reports/calls?{DAY}&phone=0001122")
    assert [c["id"] for c in admin["items"]] == [ids["hidden"]]

    _, body = await staff.api_get("oper@test.ru", f"/api/v1/reports/calls?{DAY}")
    hidden, shown = ({c["id"]: c for c in body["items"]}[ids[k]] for k in ("hidden", "shown"))
    masked = mask_phone("79030001122")
    assert masked == "7903*****22"
    assert (hidden["contact_phone"], hidden["to_number"], hidden["from_number"]) == (
        masked, masked, "74950009988")
    assert (shown["contact_phone"], shown["from_number"]) == ("79161234567", "79161234567")

    browser = await staff.signed_in("oper@test.ru")
    widened = f"operator_id={ids['ivanova']}&project_id={ids['sales']}"
    for path in (f"/reports/calls?{DAY}", f"/reports/calls.csv?{DAY}&sort=phone",
                 f"/reports/calls?{DAY}&{widened}"):
        response = await browser.get(path)
        text = (await response.read()).decode("utf-8-sig")
        assert response.status == 200, path
        assert "0001122" not in text and "79035550000" not in text and "79167770000" not in text
    table = table_of(await (await browser.get(f"/reports/calls.csv?{DAY}")).read())
    assert [row[1] for row in table[1:]] == [str(ids["shown"]), str(ids["hidden"])]
    assert table[2][5:8] == [masked, "74950009988", masked]
    response = await browser.get(f"/reports/calls.xlsx?{DAY}")
    book = openpyxl.load_workbook(io.BytesIO(await response.read()), read_only=True)
    cells = [["" if c is None else str(c) for c in row]
             for row in book.active.iter_rows(values_only=True)]
    assert cells == table
    page = await (await browser.get(f"/reports/calls?{DAY}")).text()
    assert page.count("<tr data-call=") == 2 and masked in page
    assert "/recording" not in page and 'name="operator_id"' not in page
    # Recordings and the contacts report stay the staff's.
    assert (await browser.get(f"/reports/calls/{ids['hidden']}/recording")).status == 403
    assert (await browser.get("/reports/contacts")).status == 403


async def test_the_menu_opens_the_reports_for_an_operator(staff: Site) -> None:
    await world(staff)
    browser: Browser = await staff.signed_in("oper@test.ru")
    home = await (await browser.get("/")).text()
    assert 'href="/reports/calls"' in home
    page = await (await browser.get("/reports/calls")).text()
    assert 'href="/reports/operators"' in page and 'href="/reports/contacts"' not in page

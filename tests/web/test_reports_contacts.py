"""«Контакты» (§6.1): the bases' contacts with the manual's columns, filters, roles and
downloads, over real rows in the site's SQLite file."""

from __future__ import annotations

import csv
import io
from typing import Any

import openpyxl
from webtools import Site

from sipspeak.storage.models import NewContact


async def bases(site: Site) -> dict[str, Any]:
    """«Продажи» (the supervisor's) with three contacts, «Опросы» with one."""
    db = site.db
    oper = site.users["oper@test.ru"]
    sales = await db.projects.create("Продажи", supervisor_id=site.users["sup@test.ru"])
    polls = await db.projects.create("Опросы")
    shift = await db.groups.create("Смена")
    await db.groups.add_members(shift, [oper])
    await db.projects.set_groups(sales, [shift])
    await db.contacts.insert_many(project_id=sales, upload_id=None, tags=["vip"], contacts=[
        NewContact(phone="79228711345", full_name="Иван Петров", city="Оренбург",
                   region="Оренбургская обл.", timezone="Asia/Yekaterinburg",
                   carrier="ПАО «МегаФон»"),
        NewContact(phone="79171959395", full_name="=HYPERLINK()"),
        NewContact(phone="79135068681")])
    await db.contacts.insert_many(project_id=polls, upload_id=None,
                                  contacts=[NewContact(phone="79160000001")])
    ivan, formula, third = await db.contacts.list(project_id=sales)
    status = await db.statuses.create("Перезвон", "#33aa55")
    await db.contacts.update(ivan.id, status_id=status, operator_id=oper, dial_state="done")
    await db.comments.add(contact_id=ivan.id, user_id=oper, text="просил перезвонить")
    await db.comments.add(contact_id=ivan.id, user_id=oper, text="перезвонить в пятницу")
    await db.tasks.add(contact_id=ivan.id, operator_id=oper, text="звонок", due_at=1)
    return {"ivan": ivan.id, "formula": formula.id, "third": third.id, "status": status,
            "shift": shift, "sales": sales}


async def test_columns_filters_and_roles(staff: Site) -> None:
    ids = await bases(staff)
    status, body = await staff.api_get("admin@test.ru", "/api/v1/reports/contacts")
    assert status == 200 and body["count"] == 4
    ivan = next(c for c in body["items"] if c["id"] == ids["ivan"])
    assert {k: ivan[k] for k in ("phone", "full_name", "region", "timezone", "carrier",
                                 "status", "tags", "work_status", "comments", "tasks",
                                 "operator", "project")} == {
        "phone": "79228711345", "full_name": "Иван Петров", "region": "Оренбургская обл.",
        "timezone": "+05:00", "carrier": "ПАО «МегаФон»", "status": "Перезвон",
        "tags": "vip", "work_status": "Обработаны", "comments": "перезвонить в пятницу",
        "tasks": 1, "operator": "Оператор", "project": "Продажи"}
    third = next(c for c in body["items"] if c["id"] == ids["third"])
    assert third["operator"] == "Нет оператора" and third["tasks"] == 0
    for query, expected in (("phone=+7 (922) 871", ["ivan"]),
                            (f"status_id={ids['status']}", ["ivan"]),
                            (f"group_id={ids['shift']}", ["ivan"]),
                            ("comment=пятниц", ["ivan"])):
        _, found = await staff.api_get("admin@test.ru", f"/api/v1/reports/contacts?{query}")
        assert [c["id"] for c in found["items"]] == [ids[k] for k in expected], query
    _, sup = await staff.api_get("sup@test.ru", "/api/v1/reports/contacts")
    assert sup["count"] == 3 and {c["project"] for c in sup["items"]} == {"Продажи"}
    assert (await staff.api_get("oper@test.ru", "/api/v1/reports/contacts"))[0] == 403
    status, bad = await staff.api_get("admin@test.ru",
                                      "/api/v1/reports/contacts?from=2026-03-09&to=2026-03-01")
    assert status == 422 and bad["error"]["field"] == "to"


async def test_sorting_by_update_and_the_downloads(staff: Site) -> None:
    ids = await bases(staff)
    await staff.db.contacts.update(ids["third"], description="обновлён последним")
    _, by_update = await staff.api_get("admin@test.ru",
                                       "/api/v1/reports/contacts?by_update=1")
    assert by_update["items"][0]["id"] == ids["third"]
    browser = await staff.signed_in("sup@test.ru")
    text = (await (await browser.get("/reports/contacts.csv")).read()).decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert table[0][:3] == ["Тел.", "ФИО", "E-mail"] and table[0][-1] == "Проект"
    assert len(table) == 4
    assert ["'=HYPERLINK()"] == [row[1] for row in table[1:] if "HYPERLINK" in row[1]]
    response = await browser.get("/reports/contacts.xlsx")
    book = openpyxl.load_workbook(io.BytesIO(await response.read()), read_only=True)
    cells = [["" if c is None else str(c) for c in row]
             for row in book.active.iter_rows(values_only=True)]
    assert cells == table
    page = await (await browser.get("/reports/contacts")).text()
    assert '<p id="contacts-count">Количество: <strong>3</strong></p>' in page
    assert page.count("<tr data-contact=") == 3 and 'id="report-columns"' in page

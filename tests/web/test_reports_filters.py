"""The reports' filters of §5.5 and §6.1–6.3: tag (contacts and calls), user group, call type,
client and operator status (calls), project (operators) — in storage's SQL, on its indexes."""

from __future__ import annotations

from typing import Any

from test_reports import DAY as OPERATORS_DAY
from test_reports import history
from test_reports_calls import DAY, calls
from test_reports_contacts import bases
from webtools import Site


async def found(site: Site, query: str) -> list[int]:
    status, body = await site.api_get("admin@test.ru", f"/api/v1/reports/calls?{DAY}&{query}")
    assert status == 200, (query, body)
    assert body["count"] == len(body["items"]), query
    return [c["id"] for c in body["items"]]


async def test_calls_by_type_statuses_group_and_tag(staff: Site) -> None:
    ids = await calls(staff)
    shift = await staff.db.groups.create("Смена")
    await staff.db.groups.add_members(shift, [ids["oper"]])
    await staff.db.groups.create("Пустая")
    for query, expected in (("kind=inbound", ["dropped"]),
                            ("kind=auto", ["busy", "answered"]),
                            ("kind=robot", []),
                            ("client_status=busy", ["busy"]),
                            ("client_status=hung_up_waiting", ["dropped"]),
                            ("client_status=answered&kind=auto", ["answered"]),
                            ("operator_status=answered", ["answered"]),
                            ("operator_status=no_answer", []),
                            (f"group_id={shift}", ["answered"]),
                            (f"group_id={shift + 1}", []),
                            ("tag=vip", ["answered"]),
                            ("tag=нет-такого", [])):
        assert await found(staff, query) == [ids[k] for k in expected], query
    for query, field in (("kind=fax", "kind"), ("client_status=happy", "client_status"),
                         ("operator_status=asleep", "operator_status")):
        status, body = await staff.api_get("admin@test.ru",
                                           f"/api/v1/reports/calls?{DAY}&{query}")
        assert status == 422 and body["error"]["field"] == field, query
        assert body["error"]["message"] == "выберите значение из списка"
    browser = await staff.signed_in("admin@test.ru")
    page = await (await browser.get(
        f"/reports/calls?{DAY}&kind=auto&tag=vip&client_status=answered&group_id={shift}")
                  ).text()
    assert page.count("<tr data-call=") == 1
    for option in ('<option value="auto" selected>Автонабор</option>',
                   '<option value="vip" selected>vip</option>',
                   '<option value="answered" selected>Клиент ответил</option>',
                   f'<option value="{shift}" selected>Смена</option>',
                   '<option value="robot" >Робот</option>'):
        assert option in page, option
    csv = (await (await browser.get(f"/reports/calls.csv?{DAY}&kind=inbound")).read()
           ).decode("utf-8-sig")
    assert len(csv.strip().splitlines()) == 2 and str(ids["dropped"]) in csv


async def test_contacts_by_tag(staff: Site) -> None:
    ids = await bases(staff)
    await staff.db.contacts.insert_many(project_id=ids["sales"], upload_id=None, tags=["опт"],
                                        contacts=[])  # a tag no contact carries yet
    for query, count in (("tag=vip", 3), (f"tag=vip&status_id={ids['status']}", 1),
                         ("tag=опт", 0), ("", 4)):
        status, body = await staff.api_get("admin@test.ru", f"/api/v1/reports/contacts?{query}")
        assert status == 200 and body["count"] == count, query
        assert all(c["tags"] == "vip" for c in body["items"]) or not query
    _, sup = await staff.api_get("sup@test.ru", "/api/v1/reports/contacts?tag=vip")
    assert sup["count"] == 3
    page = await (await (await staff.signed_in("admin@test.ru")).get(
        "/reports/contacts?tag=vip")).text()
    assert '<option value="vip" selected>vip</option>' in page and page.count(
        "<tr data-contact=") == 3


async def test_operators_by_project(staff: Site) -> None:
    await history(staff)
    [sales] = [p.id for p in await staff.db.projects.list() if p.name == "Продажи"]
    empty = await staff.db.projects.create("Без групп")
    for query, names in ((f"project_id={sales}", ["Иванова", "Оператор"]),
                         (f"project_id={empty}", []),
                         (f"project_id={sales}&q=334", ["Иванова"])):
        status, body = await staff.api_get(
            "admin@test.ru", f"/api/v1/reports/operators?{OPERATORS_DAY}&{query}")
        assert status == 200 and [r["name"] for r in body["items"]] == names, query
    page = await (await (await staff.signed_in("admin@test.ru")).get(
        f"/reports/operators?{OPERATORS_DAY}&project_id={sales}")).text()
    assert f'<option value="{sales}" selected>Продажи</option>' in page
    assert page.count("<tr data-operator=") == 2


def spy(site: Site, monkeypatch: Any) -> list[tuple[str, list[Any]]]:
    """Every query the repositories send through ``fetchall``, with its parameters."""
    seen: list[tuple[str, list[Any]]] = []
    real = site.db.fetchall

    async def recording(sql: str, params: Any = ()) -> Any:
        seen.append((sql, list(params)))
        return await real(sql, params)

    monkeypatch.setattr(site.db, "fetchall", recording)
    return seen


async def plan(site: Site, sql: str, params: list[Any]) -> str:
    rows = await site.db.fetchall(f"EXPLAIN QUERY PLAN {sql}", params)
    return "\n".join(str(dict(row)["detail"]) for row in rows)


async def test_the_new_lookups_use_indexes(staff: Site, monkeypatch: Any) -> None:
    ids = await calls(staff)
    group = (await history(staff))["other"]
    seen = spy(staff, monkeypatch)
    await found(staff, "tag=vip")
    await found(staff, f"group_id={group}")
    await staff.api_get("admin@test.ru", "/api/v1/reports/contacts?tag=vip")
    browser = await staff.signed_in("admin@test.ru")
    await (await browser.get(f"/reports/operators/history.csv?{OPERATORS_DAY}")).read()
    monkeypatch.undo()

    def query(*parts: str) -> tuple[str, list[Any]]:
        return next(q for q in seen if all(p in q[0] for p in parts))

    # Calls of a tag: the tag's contacts off contact_tags_tag, their calls off calls_contact.
    tagged = await plan(staff, *query("FROM calls c", "contact_tags"))
    assert "contact_tags_tag" in tagged and "calls_contact" in tagged, tagged
    assert "SCAN c\n" not in tagged + "\n", tagged
    # Calls of a group: a seek per member on calls_operator(operator_id, started_at).
    grouped = await plan(staff, *query("FROM calls c", "group_members"))
    assert "calls_operator (operator_id=? AND started_at>? AND started_at<?)" in grouped, grouped
    # Contacts of a tag: the tag's contacts off contact_tags_tag, each found by its id; each
    # row's tasks counted off tasks_contact, not by scanning the tasks.
    contacts = await plan(staff, *query("FROM contacts k", "k.id IN"))
    assert "contact_tags_tag" in contacts and "SCAN k\n" not in contacts + "\n", contacts
    assert "tasks_contact" in contacts and "SCAN t\n" not in contacts + "\n", contacts
    # The status history: read in order off operator_intervals_user, no sort.
    intervals = await plan(staff, *query("FROM operator_intervals WHERE user_id = ?"))
    assert "operator_intervals_user" in intervals and "B-TREE" not in intervals, intervals
    assert ids  # the calls are there, so the plans are for real rows

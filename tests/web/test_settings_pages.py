"""Settings pages: the forms post to the same services as the API."""

from __future__ import annotations

from webtools import Site


async def test_users_page_add_search_edit_delete(staff: Site) -> None:
    b = await staff.signed_in("admin@test.ru")
    page = await (await b.get("/settings/users")).text()
    assert "Показать удаленных пользователей" in page and "Супервайзер" in page
    added = await b.form("/settings/users", {
        "role": "operator", "full_name": "Ахматова Анна", "email": "anna@test.ru",
        "phone": "4455", "password": "111222333", "extension": "", "trunk_id": ""})
    assert added.status == 303, await added.text()
    found = await (await b.get("/settings/users?q=Ахмат&role=operator")).text()
    assert "anna@test.ru" in found and "sup@test.ru" not in found
    anna = await staff.db.users.by_email("anna@test.ru")
    assert anna is not None
    dup = await b.form("/settings/users", {"role": "operator", "full_name": "X",
                                           "email": "anna@test.ru", "password": "111222333"})
    assert dup.status == 409
    dup_text = await dup.text()
    assert "уже есть" in dup_text and 'data-error-field="email"' in dup_text
    edit = await b.get(f"/settings/users/{anna.id}")
    assert edit.status == 200 and "Ахматова Анна" in await edit.text()
    saved = await b.form(f"/settings/users/{anna.id}", {
        "role": "operator", "full_name": "Анна Ахматова", "email": "anna@test.ru", "phone": "",
        "password": "", "extension": "", "trunk_id": ""})
    assert saved.status == 303
    assert (await staff.db.users.get(anna.id)).full_name == "Анна Ахматова"
    gone = await b.form(f"/settings/users/{anna.id}/delete", {})
    assert gone.status == 303
    removed = await (await b.get("/settings/users?removed=1")).text()
    assert "Анна Ахматова (удален)" in removed


async def test_groups_statuses_trunks_pages(staff: Site) -> None:
    b = await staff.signed_in("admin@test.ru")
    assert (await b.form("/settings/groups", {"name": "Тест 2", "project_id": ""})).status == 303
    group = (await staff.db.groups.list())[0]
    oper = staff.users["oper@test.ru"]
    added = await b.form(f"/settings/groups/{group.id}/members", [("user_ids", str(oper))])
    assert added.status == 303
    page = await (await b.get("/settings/groups")).text()
    assert "Оператор" in page and "Тест 2" in page
    assert (await b.form(f"/settings/groups/{group.id}/members/{oper}/remove", {})).status == 303
    assert await staff.db.groups.member_ids(group.id) == []

    assert (await b.form("/settings/statuses", {"name": "Недозвон", "color": "#00ff00",
                                               "active": "1"})).status == 303
    status = (await staff.db.statuses.list())[0]
    off = await b.form(f"/settings/statuses/{status.id}", {"name": "Недозвон", "color": "#00ff00"})
    assert off.status == 303
    assert not (await staff.db.statuses.get(status.id)).active

    bad = await b.form("/settings/trunks", {"name": "t", "host": "sip:bad host", "active": "1"})
    assert bad.status == 422 and "хост" in (await bad.text()).lower()
    ok = await b.form("/settings/trunks", {"username": "117049", "password": "pw", "name": "zadarma",
                                          "host": "sip:117049@zadarma.com", "active": "1",
                                          "inbound_project_id": ""})
    assert ok.status == 303
    trunks = await (await b.get("/settings/trunks")).text()
    assert "sip:117049@zadarma.com" in trunks and "—" in trunks


async def test_forbidden_page_shows_the_error_page(staff: Site) -> None:
    b = await staff.signed_in("sup@test.ru")
    response = await b.get("/settings/trunks")
    assert response.status == 403
    assert "Нет доступа" in await response.text()
    admin = await staff.signed_in("admin@test.ru")
    missing = await admin.get("/settings/users/9999")
    assert missing.status == 404
    nowhere = await admin.get("/no/such/page")
    assert nowhere.status == 404 and "Не найдено" in await nowhere.text()
    api_nowhere = await admin.get("/api/v1/no/such")
    assert (await api_nowhere.json())["error"]["code"] == "not_found"


async def test_every_menu_page_renders_in_english(staff: Site) -> None:
    await staff.db.users.update(staff.users["admin@test.ru"], language="en")
    b = await staff.signed_in("admin@test.ru")
    for path in ("/", "/settings/users", "/settings/groups", "/settings/statuses",
                 "/settings/trunks", "/blacklist", "/files", "/profile/devices"):
        response = await b.get(path)
        assert response.status == 200, path
        text = await response.text()
        assert "Settings" in text and "Sign out" in text, path
        assert "Настройки" not in text and "Выход из системы" not in text, path

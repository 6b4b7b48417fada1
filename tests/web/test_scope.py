"""The supervisor manages users and groups only within his projects (§1.3)."""

from __future__ import annotations

import re

from webtools import Browser, Site

from sipspeak.web.auth import project_ids_for


async def setup_projects(site: Site) -> dict[str, int]:
    """sup supervises "Продажи" (group A with oper); group B of another project has oper2."""
    db = site.db
    ids = {"sup": site.users["sup@test.ru"], "oper": site.users["oper@test.ru"],
           "admin": site.users["admin@test.ru"]}
    ids["oper2"] = await site.user("operator", "oper2@test.ru", full_name="Чужой оператор")
    ids["sup2"] = await site.user("supervisor", "sup2@test.ru")
    ids["a"] = await db.groups.create("A")
    ids["b"] = await db.groups.create("B")
    await db.groups.add_members(ids["a"], [ids["oper"]])
    await db.groups.add_members(ids["b"], [ids["oper2"]])
    ids["mine"] = await db.projects.create("Продажи", supervisor_id=ids["sup"])
    ids["other"] = await db.projects.create("Чужой", supervisor_id=ids["sup2"])
    await db.projects.set_groups(ids["mine"], [ids["a"]])
    await db.projects.set_groups(ids["other"], [ids["b"]])
    return ids


async def sup_api(site: Site) -> Browser:
    return site.browser(bearer=await site.token_for("sup@test.ru"))


async def test_visible_projects_per_role(staff: Site) -> None:
    ids = await setup_projects(staff)
    db = staff.db
    services = staff.services
    assert await project_ids_for(services, await db.users.get(ids["admin"])) is None
    assert await project_ids_for(services, await db.users.get(ids["sup"])) == {ids["mine"]}
    assert await project_ids_for(services, await db.users.get(ids["oper"])) == {ids["mine"]}
    assert await project_ids_for(services, await db.users.get(ids["oper2"])) == {ids["other"]}


async def test_supervisor_sees_only_users_and_groups_of_his_projects(staff: Site) -> None:
    ids = await setup_projects(staff)
    api = await sup_api(staff)
    users = await (await api.get("/api/v1/users")).json()
    assert {u["id"] for u in users["items"]} == {ids["sup"], ids["oper"]}
    groups = await (await api.get("/api/v1/groups")).json()
    assert [g["id"] for g in groups["items"]] == [ids["a"]]
    assert (await api.get(f"/api/v1/users/{ids['oper2']}")).status == 403
    assert (await api.get(f"/api/v1/users/{ids['admin']}")).status == 403
    assert (await api.get(f"/api/v1/groups/{ids['b']}")).status == 403
    page = await (await (await staff.signed_in("sup@test.ru")).get("/settings/users")).text()
    assert "Оператор" in page and "Чужой оператор" not in page


async def test_supervisor_edits_and_removes_only_his_operators(staff: Site) -> None:
    ids = await setup_projects(staff)
    api = await sup_api(staff)
    ok = await api.api("PATCH", f"/api/v1/users/{ids['oper']}", {"phone": "+7 999 000-00-00"})
    assert ok.status == 200
    assert (await api.api("PATCH", f"/api/v1/users/{ids['oper2']}", {"phone": "1"})).status == 403
    promote = await api.api("PATCH", f"/api/v1/users/{ids['oper']}", {"role": "admin"})
    assert promote.status == 403
    assert (await staff.db.users.get(ids["oper"])).role == "operator"
    assert (await api.api("DELETE", f"/api/v1/users/{ids['oper2']}")).status == 403
    assert (await api.api("DELETE", f"/api/v1/users/{ids['admin']}")).status == 403
    assert (await api.api("DELETE", f"/api/v1/users/{ids['oper']}")).status == 200


async def test_supervisor_creates_operators_into_his_groups_only(staff: Site) -> None:
    ids = await setup_projects(staff)
    api = await sup_api(staff)
    base = {"full_name": "Новый", "email": "new@test.ru", "password": "password-1"}
    admin = await api.api("POST", "/api/v1/users", {**base, "role": "admin", "group_ids": [ids["a"]]})
    assert admin.status == 403
    no_group = await api.api("POST", "/api/v1/users", {**base, "role": "operator"})
    assert no_group.status == 422 and (await no_group.json())["error"]["field"] == "group_ids"
    foreign = await api.api("POST", "/api/v1/users", {**base, "role": "operator",
                                                      "group_ids": [ids["b"]]})
    assert foreign.status == 403
    created = await api.api("POST", "/api/v1/users", {**base, "role": "operator",
                                                      "group_ids": [ids["a"]]})
    assert created.status == 201
    user = await created.json()
    assert user["group_ids"] == [ids["a"]]
    assert user["id"] in await staff.db.groups.member_ids(ids["a"])


async def test_supervisor_groups_rules(staff: Site) -> None:
    ids = await setup_projects(staff)
    api = await sup_api(staff)
    assert (await api.api("POST", "/api/v1/groups", {"name": "C"})).status == 422
    assert (await api.api("POST", "/api/v1/groups",
                          {"name": "C", "project_id": ids["other"]})).status == 403
    created = await api.api("POST", "/api/v1/groups", {"name": "C", "project_id": ids["mine"]})
    assert created.status == 201
    group_c = (await created.json())["id"]
    assert group_c in (await staff.db.projects.get(ids["mine"])).group_ids
    # an operator may be in several groups: the foreign operator joins the supervisor's group
    joined = await api.api("POST", f"/api/v1/groups/{group_c}/members",
                           {"user_ids": [ids["oper2"]]})
    assert joined.status == 200
    assert (await api.api("POST", f"/api/v1/groups/{group_c}/members",
                          {"user_ids": [ids["sup2"]]})).status == 403
    assert (await api.api("PATCH", f"/api/v1/groups/{ids['b']}", {"name": "X"})).status == 403
    assert (await api.api("DELETE", f"/api/v1/groups/{ids['b']}/members/{ids['oper2']}")).status == 403
    assert (await api.api("DELETE", f"/api/v1/groups/{group_c}")).status == 403
    assert (await api.api("PATCH", f"/api/v1/groups/{ids['a']}", {"name": "A+"})).status == 200


async def test_operator_manages_nobody(staff: Site) -> None:
    api = staff.browser(bearer=await staff.token_for("oper@test.ru"))
    assert (await api.get("/api/v1/users")).status == 403
    assert (await api.api("POST", "/api/v1/groups", {"name": "x"})).status == 403
    b = await staff.signed_in("oper@test.ru")
    page = await b.get("/settings/users")
    assert page.status == 403
    text = await (await b.get("/")).text()
    assert "/settings/users" not in text and "/files" in text


async def test_supervisor_saves_his_own_profile_page(staff: Site) -> None:
    ids = await setup_projects(staff)
    b = await staff.signed_in("sup@test.ru")
    page = await (await b.get(f"/settings/users/{ids['sup']}")).text()
    assert 'value="supervisor"' in page and 'value="admin"' not in page
    saved = await b.form(f"/settings/users/{ids['sup']}", {
        "role": "supervisor", "full_name": "Супервайзер Иванов", "email": "sup@test.ru",
        "phone": "", "password": "", "extension": "", "trunk_id": ""})
    assert saved.status == 303
    assert (await staff.db.users.get(ids["sup"])).full_name == "Супервайзер Иванов"


async def test_supervisor_dashboard_counts_his_scope(staff: Site) -> None:
    await setup_projects(staff)
    b = await staff.signed_in("sup@test.ru")
    text = await (await b.get("/")).text()
    # one operator in his groups, one project, one group (not the other supervisor's)
    values = [int(v) for v in re.findall(r'tile-value">(\d+)<', text)]
    assert values == [1, 1, 1]

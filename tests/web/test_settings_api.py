"""Users, groups, statuses and trunks through the REST API, with roles and bad input."""

from __future__ import annotations

import asyncio

import pytest
from webtools import PASSWORD, Site

from sipspeak.web.errors import ApiError
from sipspeak.web.trunks import normalise_host


async def admin_api(site: Site) -> object:
    return site.browser(bearer=await site.token_for("admin@test.ru"))


async def test_user_create_read_update_delete(staff: Site) -> None:
    api = await admin_api(staff)
    created = await api.api("POST", "/api/v1/users", {
        "role": "operator", "full_name": "Ахматова Анна", "email": "anna@test.ru",
        "phone": "4455", "password": "111222333", "extension": "401",
        "sip_password": "sip-secret-1"})
    assert created.status == 201, await created.text()
    user = await created.json()
    assert user["extension"] == "401" and user["has_sip_password"]
    assert "password_hash" not in user and "sip_password" not in user
    changed = await api.api("PATCH", f"/api/v1/users/{user['id']}", {"full_name": "Анна А."})
    assert (await changed.json())["full_name"] == "Анна А."
    assert (await changed.json())["extension"] == "401"
    found = await (await api.get("/api/v1/users?q=Анна")).json()
    assert [u["email"] for u in found["items"]] == ["anna@test.ru"]
    by_role = await (await api.get("/api/v1/users?role=supervisor")).json()
    assert [u["email"] for u in by_role["items"]] == ["sup@test.ru"]
    assert (await api.api("DELETE", f"/api/v1/users/{user['id']}")).status == 200
    live = await (await api.get("/api/v1/users")).json()
    assert "anna@test.ru" not in [u["email"] for u in live["items"]]
    removed = await (await api.get("/api/v1/users?removed=1")).json()
    assert "anna@test.ru" in [u["email"] for u in removed["items"]]
    # the new user could sign in before removal only; now the login fails
    assert (await staff.browser().login("anna@test.ru", "111222333")).status == 401


async def test_new_password_works_and_empty_password_keeps_the_old(staff: Site) -> None:
    api = await admin_api(staff)
    uid = staff.users["oper@test.ru"]
    assert (await api.api("PATCH", f"/api/v1/users/{uid}", {"password": ""})).status == 200
    assert (await staff.browser().login("oper@test.ru", PASSWORD)).status == 303
    signed_in = await staff.signed_in("oper@test.ru")
    assert (await api.api("PATCH", f"/api/v1/users/{uid}", {"password": "brand-new-9"})).status == 200
    assert (await signed_in.get("/")).status == 302  # the old sessions ended
    assert (await staff.browser().login("oper@test.ru", "brand-new-9")).status == 303


@pytest.mark.parametrize("body, status, field", [
    ({"email": "oper@test.ru"}, 409, "email"),
    ({"email": "OPER@test.ru"}, 409, "email"),
    ({"extension": "333", "sip_password": "long-enough"}, 409, "extension"),
    ({"email": "not-an-email"}, 422, "email"),
    ({"role": "king"}, 422, "role"),
    ({"full_name": "x" * 300}, 422, "full_name"),
    ({"password": "123"}, 422, "password"),
    ({"extension": "12a"}, 422, "extension"),
    ({"extension": "555"}, 422, "sip_password"),
    ({"trunk_id": 999}, 422, "trunk_id"),
    ({"trunk_id": "abc"}, 422, "trunk_id"),
    ({"phone": "<script>"}, 422, "phone"),
    ({"full_name": ["a", "b"]}, 422, "full_name"),
])
async def test_bad_user_input(staff: Site, body: dict[str, object], status: int,
                              field: str) -> None:
    api = await admin_api(staff)
    full = {"role": "operator", "full_name": "Новый", "email": "new@test.ru",
            "password": "password-1", **body}
    response = await api.api("POST", "/api/v1/users", full)
    assert response.status == status, await response.text()
    error = (await response.json())["error"]
    assert error["field"] == field
    assert error["message"]


async def test_malformed_json_is_400(staff: Site) -> None:
    api = await admin_api(staff)
    response = await api.request("POST", "/api/v1/users", data=b"{not json",
                                 headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "bad_request"
    listed = await api.request("POST", "/api/v1/users", json=[1, 2])
    assert listed.status == 400


async def test_missing_user_is_404_and_self_delete_is_refused(staff: Site) -> None:
    api = await admin_api(staff)
    assert (await api.get("/api/v1/users/9999")).status == 404
    me = staff.users["admin@test.ru"]
    refused = await api.api("DELETE", f"/api/v1/users/{me}")
    assert refused.status == 422


async def test_groups_members_and_an_operator_in_several_groups(staff: Site) -> None:
    api = await admin_api(staff)
    oper = staff.users["oper@test.ru"]
    a = await (await api.api("POST", "/api/v1/groups", {"name": "Тест"})).json()
    b = await (await api.api("POST", "/api/v1/groups", {"name": "Тест 2"})).json()
    assert (await api.api("POST", "/api/v1/groups", {"name": "тест"})).status == 409
    assert (await api.api("POST", "/api/v1/groups", {"name": "  "})).status == 422
    for g in (a, b):
        added = await api.api("POST", f"/api/v1/groups/{g['id']}/members", {"user_ids": [oper]})
        assert (await added.json())["member_ids"] == [oper]
    user = await (await api.get(f"/api/v1/users/{oper}")).json()
    assert user["group_ids"] == sorted([a["id"], b["id"]])
    renamed = await api.api("PATCH", f"/api/v1/groups/{a['id']}", {"name": "Продажи"})
    assert (await renamed.json())["name"] == "Продажи"
    removed = await api.api("DELETE", f"/api/v1/groups/{a['id']}/members/{oper}")
    assert (await removed.json())["member_ids"] == []
    assert (await api.api("DELETE", f"/api/v1/groups/{a['id']}/members/{oper}")).status == 404
    assert (await api.api("POST", f"/api/v1/groups/{a['id']}/members",
                          {"user_ids": [4242]})).status == 422
    assert (await api.api("DELETE", f"/api/v1/groups/{b['id']}")).status == 200
    assert (await api.get(f"/api/v1/groups/{b['id']}")).status == 404


async def test_statuses(staff: Site) -> None:
    api = await admin_api(staff)
    created = await api.api("POST", "/api/v1/statuses", {"name": "Перезвонить", "color": "#ff0000"})
    assert created.status == 201
    status = await created.json()
    assert status["active"] is True
    off = await api.api("PATCH", f"/api/v1/statuses/{status['id']}", {"active": False})
    assert (await off.json())["active"] is False
    active = await (await api.get("/api/v1/statuses?active=1")).json()
    assert active["items"] == []
    assert (await api.api("POST", "/api/v1/statuses", {"name": "перезвонить"})).status == 409
    bad = await api.api("POST", "/api/v1/statuses", {"name": "X", "color": "red"})
    assert bad.status == 422 and (await bad.json())["error"]["field"] == "color"
    oper = staff.browser(bearer=await staff.token_for("oper@test.ru"))
    assert (await oper.get("/api/v1/statuses")).status == 200
    assert (await oper.api("POST", "/api/v1/statuses", {"name": "Y"})).status == 403


@pytest.mark.parametrize("text, stored", [
    ("sip:192.168.1.100", "sip:192.168.1.100"),
    ("sip:117049@zadarma.com", "sip:117049@zadarma.com"),
    ("sip:117049@Zadarma.com:5060", "sip:117049@zadarma.com:5060"),
    ("192.168.1.100:5080", "sip:192.168.1.100:5080"),
    ("sip:[2001:db8::1]:5060", "sip:[2001:db8::1]:5060"),
])
def test_trunk_host_forms(text: str, stored: str) -> None:
    assert normalise_host(text) == stored


@pytest.mark.parametrize("text", ["", "sip:", "sip:host:70000", "sip:999.1.1.1", "http://x",
                                  "sip:a b", "sip:-bad-.com", "sip:user@", "sip:[zz::1]",
                                  "sip:host:0"])
def test_bad_trunk_hosts(text: str) -> None:
    with pytest.raises(ApiError) as caught:
        normalise_host(text)
    assert caught.value.status == 422 and caught.value.field == "host"


async def test_trunks_with_registration_state(staff: Site,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    reloads: list[int] = []

    async def reload_trunks(self: object) -> None:
        reloads.append(1)

    # call control's side of the contract: a live registry and a reload after each edit
    services_type = type(staff.services)
    monkeypatch.setattr(services_type, "reload_trunks", reload_trunks, raising=False)
    api = await admin_api(staff)
    project = await staff.db.projects.create("Тестовый проект")
    created = await api.api("POST", "/api/v1/trunks", {
        "name": "zadarma", "username": "117049", "password": "pw", "host": "sip:117049@zadarma.com",
        "inbound_project_id": project})
    assert created.status == 201, await created.text()
    trunk = await created.json()
    assert trunk["registration"] is None and "password" not in trunk
    assert trunk["inbound_project_id"] == project
    assert reloads == [1]
    states = {trunk["id"]: "registered"}
    monkeypatch.setattr(services_type, "trunk_states", property(lambda self: states),
                        raising=False)
    listed = await (await api.get("/api/v1/trunks")).json()
    assert listed["items"][0]["registration"] == "registered"
    off = await api.api("PATCH", f"/api/v1/trunks/{trunk['id']}", {"active": False, "password": ""})
    assert (await off.json())["active"] is False
    assert (await staff.db.trunks.get(trunk["id"])).password == "pw"
    assert reloads == [1, 1]
    bad = await api.api("PATCH", f"/api/v1/trunks/{trunk['id']}", {"inbound_project_id": 999})
    assert bad.status == 422
    dup = await api.api("POST", "/api/v1/trunks", {"name": "zadarma", "host": "sip:1.2.3.4"})
    assert dup.status == 409 and (await dup.json())["error"]["field"] == "name"
    sup = staff.browser(bearer=await staff.token_for("sup@test.ru"))
    assert (await sup.get("/api/v1/trunks")).status == 200
    assert (await sup.api("POST", "/api/v1/trunks", {"name": "x", "host": "sip:1.2.3.4"})).status == 403


async def test_registration_state_follows_trunk_state_events(staff: Site) -> None:
    trunk_id = await staff.db.trunks.create(name="mts", host="sip:mts.ru")
    api = await admin_api(staff)
    assert (await (await api.get(f"/api/v1/trunks/{trunk_id}")).json())["registration"] is None
    staff.services.bus.publish("trunk.state", trunk_id=trunk_id, state="registered")

    async def shown() -> bool:
        body = await (await api.get(f"/api/v1/trunks/{trunk_id}")).json()
        return bool(body["registration"] == "registered")

    for _ in range(100):
        if await shown():
            break
        await asyncio.sleep(0.02)
    assert await shown()
    page = await (await (await staff.signed_in("admin@test.ru")).get("/settings/trunks")).text()
    assert "Зарегистрирован" in page


async def test_trunk_provider_addresses_are_normalised_and_checked(staff: Site) -> None:
    api = await admin_api(staff)
    created = await api.api("POST", "/api/v1/trunks", {
        "name": "zadarma", "host": "sip:117049@zadarma.com",
        "inbound_sources": "185.45.152.7/24; 195.122.19.9\n195.122.19.9/32"})
    assert created.status == 201, await created.text()
    trunk = await created.json()
    assert trunk["inbound_sources"] == "185.45.152.0/24, 195.122.19.9"
    for value, message in (("sip.zadarma.com", "«sip.zadarma.com» — не IP-адрес и не сеть"),
                           ("0.0.0.0/0", "сеть 0.0.0.0/0 слишком широкая")):
        bad = await api.api("PATCH", f"/api/v1/trunks/{trunk['id']}", {"inbound_sources": value})
        assert bad.status == 422
        error = (await bad.json())["error"]
        assert error["field"] == "inbound_sources" and message in error["message"]
    # Refused values change nothing; an empty list removes the networks.
    assert (await staff.db.trunks.get(trunk["id"])).inbound_sources == trunk["inbound_sources"]
    cleared = await api.api("PATCH", f"/api/v1/trunks/{trunk['id']}", {"inbound_sources": ""})
    assert (await cleared.json())["inbound_sources"] == ""
    # The settings page edits them in the trunk's form.
    page = await (await (await staff.signed_in("admin@test.ru")).get("/settings/trunks")).text()
    assert 'name="inbound_sources"' in page

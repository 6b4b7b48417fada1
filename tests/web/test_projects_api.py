"""/api/v1/projects: create, every tab, launch, copy, delete, per role and scope; absurd values."""

from __future__ import annotations

import re
from typing import Any

import pytest
from webtools import Browser, Site

from sipspeak.web.auth import ROUTE_TABLE
from sipspeak.web.projects_service import retry_intervals


async def world(site: Site) -> dict[str, int]:
    """sup supervises "Продажи" (group A); sup2 supervises "Чужой" (group B)."""
    db = site.db
    ids = {"sup": site.users["sup@test.ru"], "oper": site.users["oper@test.ru"],
           "admin": site.users["admin@test.ru"]}
    ids["sup2"] = await site.user("supervisor", "sup2@test.ru", full_name="Второй")
    ids["a"] = await db.groups.create("A")
    ids["b"] = await db.groups.create("B")
    await db.groups.add_members(ids["a"], [ids["oper"]])
    ids["mine"] = await db.projects.create("Продажи", supervisor_id=ids["sup"])
    ids["other"] = await db.projects.create("Чужой", supervisor_id=ids["sup2"])
    await db.projects.set_groups(ids["mine"], [ids["a"]])
    await db.projects.set_groups(ids["other"], [ids["b"]])
    ids["status"] = await db.statuses.create("Перезвонить", "#ff0000")
    ids["trunk"] = await db.trunks.create(name="zadarma", host="sip:zadarma.com")
    return ids


async def bearer(site: Site, email: str) -> Browser:
    return site.browser(bearer=await site.token_for(email))


async def test_admin_creates_a_project_and_reads_every_tab(staff: Site) -> None:
    ids = await world(staff)
    api = await bearer(staff, "admin@test.ru")
    created = await api.api("POST", "/api/v1/projects", {
        "name": "Новый", "queue_timeout_s": 44, "operator_timeout_s": 12,
        "strategy": "fewest_calls"})
    assert created.status == 201, await created.text()
    project = await created.json()
    assert (project["name"], project["queue_timeout_s"], project["operator_timeout_s"],
            project["strategy"]) == ("Новый", 44, 12, "fewest_calls")
    assert project["launched"] is False and project["card_fields"] == []
    pid = project["id"]
    patch: dict[str, Any] = {
        "show_numbers": False, "amd_enabled": True, "amd_params": {"initial_silence": 3000},
        "starts_on": "2026-02-01", "ends_on": "2026-03-31", "timezone": "Asia/Yekaterinburg",
        "client_time_from": "00:30", "client_time_to": "23:30", "caller_id": "+7 495 213345",
        "trunk_id": ids["trunk"], "card_fields": ["Дополнительная информация", "ИНН"],
        "intervals": [{"weekday": 0, "start": "09:00", "end": "13:00"},
                      {"weekday": 0, "start": "14:00", "end": "18:00"},
                      {"weekday": 5, "start": "10:00", "end": "16:00"}],
        "group_ids": [ids["a"], ids["b"]], "supervisor_id": ids["sup"],
        "status_ids": [ids["status"]], "operator_tasks_enabled": True,
        "task_rules": [{"operator_id": ids["oper"], "status_id": ids["status"]}],
        "operator_auto_answer": True, "music_on_hold": False,
        "dial_timeout_s": 40, "global_timeout_enabled": True, "global_timeout_s": 600,
        "max_concurrent_calls": 40, "dial_mode": "predictive", "predictive_percent": 3,
        "withdraw_after_s": 20, "max_attempts": 7, "retry_busy_intervals": "15; 60;1440;60", "retry_busy_attempts": 5,
        "retry_lost_intervals": "1;2;4;6", "retry_lost_attempts": 4,
        "script_html": '<h2>Скрипт</h2><p onclick="x()">Добрый <b>день</b>'
                       '<script>alert(1)</script><a href="javascript:alert(1)">x</a></p>',
        "crm_status_id": ids["status"], "bitrix_host": "sipspeak.bitrix24.ru",
        "bitrix_password": "p4ss", "sms_template": "Здравствуйте, {name}",
    }
    saved = await api.api("PATCH", f"/api/v1/projects/{pid}", patch)
    assert saved.status == 200, await saved.text()
    got = await (await api.get(f"/api/v1/projects/{pid}")).json()
    assert got["show_numbers"] is False and got["amd_enabled"] is True
    assert got["amd_params"] == {"initial_silence": 3000}
    assert got["caller_id"] == "+7495213345" and got["trunk_id"] == ids["trunk"]
    assert got["card_fields"] == ["Дополнительная информация", "ИНН"]
    assert [i["weekday"] for i in got["intervals"]] == [0, 0, 5]
    assert got["group_ids"] == sorted([ids["a"], ids["b"]])
    assert got["task_rules"] == [{"operator_id": ids["oper"], "status_id": ids["status"]}]
    assert got["retry_busy_intervals"] == "15;60;1440;60"
    assert got["dial_mode"] == "predictive" and got["max_attempts"] == 7
    assert got["withdraw_after_s"] == 20
    assert "bitrix_password" not in got and got["bitrix_password_set"] is True
    script = got["script_html"]
    assert "<h2>Скрипт</h2>" in script and "<b>день</b>" in script
    assert "script" not in script.replace("Скрипт", "") and "onclick" not in script
    assert "javascript" not in script
    # an empty password keeps the stored one
    await api.api("PATCH", f"/api/v1/projects/{pid}", {"bitrix_password": ""})
    assert (await staff.db.projects.get(pid)).bitrix_password == "p4ss"


ABSURD: list[tuple[dict[str, Any], str]] = [
    ({"queue_timeout_s": -5}, "queue_timeout_s"),
    ({"operator_timeout_s": 0}, "operator_timeout_s"),
    ({"dial_timeout_s": "много"}, "dial_timeout_s"),
    ({"starts_on": "2026-05-01", "ends_on": "2026-04-01"}, "ends_on"),
    ({"starts_on": "2026-13-01"}, "starts_on"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"client_time_from": "21:00", "client_time_to": "09:00"}, "client_time_to"),
    ({"client_time_from": "25:00"}, "client_time_from"),
    ({"retry_busy_intervals": "15;-60"}, "retry_busy_intervals"),
    ({"retry_no_answer_intervals": "15;;60"}, "retry_no_answer_intervals"),
    ({"retry_machine_intervals": "0;5"}, "retry_machine_intervals"),
    ({"retry_lost_attempts": -1}, "retry_lost_attempts"),
    ({"predictive_percent": 101}, "predictive_percent"),
    ({"withdraw_after_s": 5}, "withdraw_after_s"),  # under the 15 s minimum ring time
    ({"withdraw_after_s": -1}, "withdraw_after_s"),
    ({"strategy": "random"}, "strategy"),
    ({"dial_mode": "manual"}, "dial_mode"),
    ({"caller_id": "abc"}, "caller_id"),
    ({"trunk_id": 999}, "trunk_id"),
    ({"amd_params": {"no_such_key": 1}}, "amd_params"),
    ({"intervals": [{"weekday": 7, "start": "09:00", "end": "10:00"}]}, "intervals"),
    ({"intervals": [{"weekday": 1, "start": "18:00", "end": "09:00"}]}, "intervals"),
    ({"intervals": [{"weekday": 1, "start": "09:00", "end": "12:00"},
                    {"weekday": 1, "start": "11:00", "end": "13:00"}]}, "intervals"),
    ({"card_fields": ["ИНН", "инн"]}, "card_fields"),
    ({"group_ids": [999]}, "group_ids"),
    ({"name": "  "}, "name"),
    ({"supervisor_id": "oper"}, "supervisor_id"),
    ({"no_such_setting": 1}, "no_such_setting"),
]


async def test_absurd_values_are_422_on_their_field(staff: Site) -> None:
    ids = await world(staff)
    api = await bearer(staff, "admin@test.ru")
    before = await staff.db.projects.get(ids["mine"])
    for patch, field in ABSURD:
        response = await api.api("PATCH", f"/api/v1/projects/{ids['mine']}", patch)
        assert response.status == 422, (patch, await response.text())
        error = (await response.json())["error"]
        assert error["field"] == field, (patch, error)
        assert any("а" <= c <= "я" for c in error["message"].lower())  # a Russian message
        assert await staff.db.projects.get(ids["mine"]) == before


async def test_operator_as_supervisor_of_a_project_is_refused(staff: Site) -> None:
    ids = await world(staff)
    api = await bearer(staff, "admin@test.ru")
    response = await api.api("PATCH", f"/api/v1/projects/{ids['mine']}",
                             {"supervisor_id": ids["oper"]})
    assert response.status == 422
    assert (await response.json())["error"]["field"] == "supervisor_id"


async def test_a_failed_save_writes_nothing(staff: Site) -> None:
    ids = await world(staff)
    api = await bearer(staff, "admin@test.ru")
    response = await api.api("PATCH", f"/api/v1/projects/{ids['mine']}", {
        "name": "Переименован", "card_fields": ["ИНН"], "timezone": "Nowhere/City"})
    assert response.status == 422
    assert (await staff.db.projects.get(ids["mine"])).name == "Продажи"
    assert await staff.db.projects.card_fields(ids["mine"]) == []


async def test_supervisor_sees_and_edits_only_his_projects(staff: Site) -> None:
    ids = await world(staff)
    api = await bearer(staff, "sup@test.ru")
    listed = await (await api.get("/api/v1/projects")).json()
    assert [p["id"] for p in listed["items"]] == [ids["mine"]]
    assert (await api.get(f"/api/v1/projects/{ids['other']}")).status == 403
    assert (await api.api("PATCH", f"/api/v1/projects/{ids['other']}", {"name": "x"})).status == 403
    assert (await api.api("POST", f"/api/v1/projects/{ids['other']}/launch",
                          {"launched": True})).status == 403
    assert (await api.api("POST", f"/api/v1/projects/{ids['other']}/copy")).status == 403
    assert (await api.api("DELETE", f"/api/v1/projects/{ids['other']}")).status == 403
    assert (await api.get(f"/api/v1/projects/{ids['other']}/uploads")).status == 403
    assert (await staff.db.projects.get(ids["other"])).name == "Чужой"
    ok = await api.api("PATCH", f"/api/v1/projects/{ids['mine']}", {"name": "Продажи 2"})
    assert ok.status == 200
    # he may not hand the project to someone else, nor take a group of another project
    assert (await api.api("PATCH", f"/api/v1/projects/{ids['mine']}",
                          {"supervisor_id": ids["sup2"]})).status == 403
    assert (await api.api("PATCH", f"/api/v1/projects/{ids['mine']}",
                          {"group_ids": [ids["a"], ids["b"]]})).status == 403
    # a project he creates is his
    created = await (await api.api("POST", "/api/v1/projects", {"name": "Свой"})).json()
    assert created["supervisor_id"] == ids["sup"]


async def test_operator_and_anonymous_are_refused(staff: Site) -> None:
    ids = await world(staff)
    oper = await bearer(staff, "oper@test.ru")
    assert (await oper.get("/api/v1/projects")).status == 403
    assert (await oper.api("POST", "/api/v1/projects", {"name": "x"})).status == 403
    assert (await oper.api("DELETE", f"/api/v1/projects/{ids['mine']}")).status == 403
    anonymous = staff.browser()
    assert (await anonymous.get("/api/v1/projects")).status == 401
    assert (await anonymous.api("PATCH", f"/api/v1/projects/{ids['mine']}", {})).status == 401
    assert (await anonymous.get(f"/projects/{ids['mine']}")).status == 302


async def test_launch_copy_delete_and_list_filters(staff: Site) -> None:
    ids = await world(staff)
    api = await bearer(staff, "sup@test.ru")
    mine = ids["mine"]
    launched = await api.api("POST", f"/api/v1/projects/{mine}/launch",
                             {"launched": True, "call_from_end": True})
    assert await launched.json() == {"id": mine, "launched": True, "call_from_end": True}
    await api.api("PATCH", f"/api/v1/projects/{mine}", {"card_fields": ["ИНН"]})
    copy = await api.api("POST", f"/api/v1/projects/{mine}/copy")
    assert copy.status == 201
    copied = await copy.json()
    assert copied["name"] == "Продажи копия" and copied["launched"] is False
    assert copied["card_fields"] == ["ИНН"] and copied["supervisor_id"] == ids["sup"]
    admin = await bearer(staff, "admin@test.ru")
    by_name = await (await admin.get("/api/v1/projects?name=копия")).json()
    assert [p["id"] for p in by_name["items"]] == [copied["id"]]
    by_group = await (await admin.get(f"/api/v1/projects?group_id={ids['b']}")).json()
    assert [p["id"] for p in by_group["items"]] == [ids["other"]]
    future = await (await admin.get("/api/v1/projects?from=2999-01-01")).json()
    assert future["items"] == []
    today = await (await admin.get("/api/v1/projects?to=2999-01-01")).json()
    assert len(today["items"]) == 3
    assert (await api.api("DELETE", f"/api/v1/projects/{copied['id']}")).status == 200
    assert (await api.get(f"/api/v1/projects/{copied['id']}")).status == 404
    assert (await api.api("DELETE", "/api/v1/projects/999999")).status == 404


def test_retry_interval_lists() -> None:
    assert retry_intervals("15;60;1440;60", "f") == "15;60;1440;60"
    assert retry_intervals(" 1 ; 2 ", "f") == "1;2"
    for bad in ("", ";", "1;", "a;b", "1.5", "-1", "0", "1,2"):
        with pytest.raises(Exception, match="положительные"):
            retry_intervals(bad, "f")


_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")


async def test_every_project_route_refuses_the_supervisor_of_another_project(
        staff: Site) -> None:
    """Walk the route table: each project / upload route with the ids of sup's project."""
    ids = await world(staff)
    upload = await staff.db.uploads.create(project_id=ids["mine"], filename="b.xlsx")
    table = staff.server.app[ROUTE_TABLE]
    scoped = [s for s in table if re.match(r"^(/api/v1)?/(projects|uploads)/\{id", s.path)]
    assert len(scoped) >= 15
    owner = await staff.signed_in("sup@test.ru")
    stranger = await staff.signed_in("sup2@test.ru")
    before = await staff.db.projects.get(ids["mine"])
    failures: list[str] = []
    for spec in sorted(scoped, key=lambda s: s.method != "GET"):
        value = str(upload) if "/uploads/{id" in spec.path else str(ids["mine"])
        path = _PARAM.sub(value, spec.path)
        for who, browser in (("stranger", stranger), ("owner", owner)):
            if who == "owner" and spec.method != "GET":
                continue
            if spec.method == "GET":
                response = await browser.get(path)
            elif spec.api:
                response = await browser.api(spec.method, path, {})
            else:
                response = await browser.form(path, {})
            expected = 403 if who == "stranger" else 200
            if response.status != expected:
                failures.append(f"{who} {spec.method} {path} → {response.status}")
    assert not failures, "\n".join(failures)
    assert await staff.db.projects.get(ids["mine"]) == before
    assert await staff.db.uploads.get(upload)


async def test_openapi_documents_the_project_and_upload_api(staff: Site) -> None:
    api = await bearer(staff, "admin@test.ru")
    document = await (await api.get("/api/v1/openapi.json")).json()
    paths = document["paths"]
    for path, method in (("/api/v1/projects", "post"), ("/api/v1/projects/{id}", "patch"),
                         ("/api/v1/projects/{id}/launch", "post"),
                         ("/api/v1/projects/{id}/copy", "post"),
                         ("/api/v1/projects/{id}", "delete"),
                         ("/api/v1/projects/{id}/uploads/files", "post"),
                         ("/api/v1/projects/{id}/uploads/preview", "post"),
                         ("/api/v1/projects/{id}/uploads", "post"),
                         ("/api/v1/uploads/{id}/progress", "get"),
                         ("/api/v1/uploads/{id}/result", "get"),
                         ("/api/v1/projects/{id}/contacts", "post"),
                         ("/api/v1/projects/{id}/contacts/export", "get")):
        assert method in paths[path], (path, method)
    patch = paths["/api/v1/projects/{id}"]["patch"]["requestBody"]["content"]
    properties = patch["application/json"]["schema"]["properties"]
    assert {"retry_busy_intervals", "intervals", "task_rules", "script_html"} <= set(properties)
    files = paths["/api/v1/projects/{id}/uploads/files"]["post"]["requestBody"]["content"]
    assert files["multipart/form-data"]["schema"]["properties"]["file"]["format"] == "binary"


async def test_withdrawing_ringing_dials_can_be_switched_off(staff: Site) -> None:
    ids = await world(staff)
    api = await bearer(staff, "admin@test.ru")
    assert (await staff.db.projects.get(ids["mine"])).withdraw_after_s == 15  # the default
    response = await api.api("PATCH", f"/api/v1/projects/{ids['mine']}", {"withdraw_after_s": 0})
    assert response.status == 200, await response.text()
    assert (await staff.db.projects.get(ids["mine"])).withdraw_after_s == 0

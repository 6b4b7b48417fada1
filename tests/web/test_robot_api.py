"""The robot system writes back (manual §5.2.1 «Робот»): «Статус робота» through the REST
API with a bearer token, scoped to the caller's projects with «Робот» on; the status shows
on the card, in the contacts report and its download, and on the robot call in the calls
report."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from webtools import Browser, Site

from sipspeak.storage.models import NewContact

DAY = "from=2026-03-02&to=2026-03-02"
STARTED = int(datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp() * 1000)


async def robot_bases(site: Site) -> dict[str, int]:
    """«Робот» (the supervisor's, «Робот» on) with two contacts, the second with an earlier
    robot call and a later operator call; «Операторы» («Робот» off) with one; «Чужой робот»
    («Робот» on, another supervisor's) with one."""
    db = site.db
    other_sup = await site.user("supervisor", "sup2@test.ru")
    robot = await db.projects.create("Робот", robot=True, supervisor_id=site.users["sup@test.ru"])
    plain = await db.projects.create("Операторы")
    foreign = await db.projects.create("Чужой робот", robot=True, supervisor_id=other_sup)
    await db.contacts.insert_many(project_id=robot, upload_id=None, contacts=[
        NewContact(phone="79030001122", full_name="Иван Петров"),
        NewContact(phone="79030003344", full_name="Пётр Иванов")])
    await db.contacts.insert_many(project_id=plain, upload_id=None,
                                  contacts=[NewContact(phone="79030005566")])
    await db.contacts.insert_many(project_id=foreign, upload_id=None,
                                  contacts=[NewContact(phone="79030007788")])
    ivan, petr = await db.contacts.list(project_id=robot)
    robot_call = await db.calls.open(direction="outbound", started_at=STARTED, kind="robot",
                                     project_id=robot, contact_id=petr.id,
                                     contact_phone=petr.phone)
    later = await db.calls.open(direction="outbound", started_at=STARTED + 60_000, kind="auto",
                                project_id=robot, contact_id=petr.id, contact_phone=petr.phone)
    for call_id, started in ((robot_call, STARTED), (later, STARTED + 60_000)):
        await db.calls.update(call_id, ended_at=started + 5_000, duration_ms=5_000,
                              result="answered")
    return {"robot": robot, "plain": plain, "foreign": foreign, "ivan": ivan.id,
            "petr": petr.id, "robot_call": robot_call, "later": later,
            "plain_contact": (await db.contacts.list(project_id=plain))[0].id,
            "foreign_contact": (await db.contacts.list(project_id=foreign))[0].id}


async def token_browser(site: Site, email: str) -> Browser:
    return site.browser(bearer=await site.token_for(email))


async def put_status(api: Browser, contact_id: int, body: Any) -> tuple[int, Any]:
    response = await api.request("PUT", f"/api/v1/robot/contacts/{contact_id}/status",
                                 json=body)
    return response.status, await response.json()


async def test_the_robot_sets_a_status_seen_on_the_card_and_in_the_reports(
        staff: Site) -> None:
    ids = await robot_bases(staff)
    api = await token_browser(staff, "admin@test.ru")
    status, body = await put_status(api, ids["petr"], {"robot_status": "  100 дней  "})
    assert status == 200, body
    # Stripped, and stamped on the contact's robot call (not on the later operator call).
    assert body == {"contact_id": ids["petr"], "project_id": ids["robot"],
                    "robot_status": "100 дней", "call_id": ids["robot_call"]}
    assert (await staff.db.contacts.get(ids["petr"])).robot_status == "100 дней"
    assert (await staff.db.calls.get(ids["robot_call"])).robot_status == "100 дней"
    assert (await staff.db.calls.get(ids["later"])).robot_status is None
    # A contact without a robot call: the contact alone.
    status, body = await put_status(api, ids["ivan"], {"robot_status": "Перезвонить"})
    assert status == 200 and body["call_id"] is None

    # The card (read-only field), for the operator's side as the API serves it.
    card_status, card = await staff.api_get("admin@test.ru", f"/api/v1/contacts/{ids['petr']}/card")
    assert card_status == 200 and card["robot_status"] == "100 дней"
    # The contacts report and its download.
    _, report = await staff.api_get("admin@test.ru", "/api/v1/reports/contacts")
    shown = {c["id"]: c["robot_status"] for c in report["items"]}
    assert shown[ids["petr"]] == "100 дней" and shown[ids["ivan"]] == "Перезвонить"
    assert shown[ids["plain_contact"]] == ""
    browser = await staff.signed_in("admin@test.ru")
    text = (await (await browser.get("/reports/contacts.csv")).read()).decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text), delimiter=";"))
    column = table[0].index("Статус робота")
    by_phone = {row[0]: row[column] for row in table[1:]}
    assert by_phone["79030003344"] == "100 дней" and by_phone["79030001122"] == "Перезвонить"
    # The calls report: the robot call carries it.
    _, calls = await staff.api_get("admin@test.ru", f"/api/v1/reports/calls?{DAY}")
    statuses = {c["id"]: c["robot_status"] for c in calls["items"]}
    assert statuses[ids["robot_call"]] == "100 дней"
    assert statuses[ids["later"]] in ("", None)

    # null clears it, on the contact and on its robot call.
    status, body = await put_status(api, ids["petr"], {"robot_status": None})
    assert status == 200 and body["robot_status"] is None
    assert (await staff.db.contacts.get(ids["petr"])).robot_status is None
    assert (await staff.db.calls.get(ids["robot_call"])).robot_status is None


async def test_bad_input_is_refused_and_changes_nothing(staff: Site) -> None:
    ids = await robot_bases(staff)
    api = await token_browser(staff, "admin@test.ru")
    await put_status(api, ids["petr"], {"robot_status": "было"})
    for body, code, field in (
            ({}, 422, "robot_status"),
            ({"robot_status": 5}, 422, "robot_status"),
            ({"robot_status": ["a"]}, 422, "robot_status"),
            ({"robot_status": "две\nстроки"}, 422, "robot_status"),
            ({"robot_status": "x" * 201}, 422, "robot_status"),
            ([1, 2], 400, None)):
        status, answer = await put_status(api, ids["petr"], body)
        assert status == code, (body, answer)
        assert answer["error"]["field"] == field and answer["error"]["message"], body
    not_json = await api.request("PUT", f"/api/v1/robot/contacts/{ids['petr']}/status",
                                 data=b"robot_status=x",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert not_json.status == 400
    assert (await staff.db.contacts.get(ids["petr"])).robot_status == "было"
    assert (await staff.db.calls.get(ids["robot_call"])).robot_status == "было"
    # 200 characters is still a status.
    status, _ = await put_status(api, ids["petr"], {"robot_status": "я" * 200})
    assert status == 200
    # In English for an English-speaking token owner.
    await staff.db.users.update(staff.users["admin@test.ru"], language="en")
    status, answer = await put_status(api, ids["petr"], {"robot_status": "x" * 201})
    assert status == 422 and answer["error"]["message"] == "robot_status: at most 200 characters"


async def test_who_may_and_which_projects(staff: Site) -> None:
    ids = await robot_bases(staff)
    admin = await token_browser(staff, "admin@test.ru")
    # Without a token, with a wrong one, or as an operator: refused.
    anonymous = staff.browser()
    assert (await put_status(anonymous, ids["petr"], {"robot_status": "x"}))[0] == 401
    forged = staff.browser(bearer="not-a-token")
    assert (await put_status(forged, ids["petr"], {"robot_status": "x"}))[0] == 401
    operator = await token_browser(staff, "oper@test.ru")
    assert (await put_status(operator, ids["petr"], {"robot_status": "x"}))[0] == 403
    # «Робот» off in the contact's project: 409 naming the project.
    status, body = await put_status(admin, ids["plain_contact"], {"robot_status": "x"})
    assert status == 409 and body["error"]["code"] == "robot_off"
    assert "Операторы" in body["error"]["message"]
    assert (await staff.db.contacts.get(ids["plain_contact"])).robot_status is None
    # No such contact.
    status, body = await put_status(admin, 999_999, {"robot_status": "x"})
    assert status == 404 and body["error"]["code"] == "not_found"
    # A supervisor's token: his robot project yes, another supervisor's not even seen.
    sup = await token_browser(staff, "sup@test.ru")
    assert (await put_status(sup, ids["ivan"], {"robot_status": "от супервайзера"}))[0] == 200
    status, body = await put_status(sup, ids["foreign_contact"], {"robot_status": "x"})
    assert status == 404 and body["error"]["code"] == "not_found"
    assert (await staff.db.contacts.get(ids["foreign_contact"])).robot_status is None
    assert (await staff.db.contacts.get(ids["ivan"])).robot_status == "от супервайзера"
    # A signed-in browser session must send its CSRF token like any other write.
    page = await staff.signed_in("admin@test.ru")
    no_csrf = await page.request("PUT", f"/api/v1/robot/contacts/{ids['ivan']}/status",
                                 json={"robot_status": "y"})
    assert no_csrf.status == 403
    with_csrf = await page.request("PUT", f"/api/v1/robot/contacts/{ids['ivan']}/status",
                                   json={"robot_status": "y"},
                                   headers={"X-CSRF-Token": page.csrf})
    assert with_csrf.status == 200


async def test_the_robot_reads_a_contact_and_the_contacts_due(staff: Site) -> None:
    ids = await robot_bases(staff)
    await staff.db.contacts.update(ids["ivan"], dial_state="called")  # done: not due
    admin = await token_browser(staff, "admin@test.ru")
    one = await admin.get(f"/api/v1/robot/contacts/{ids['petr']}")
    assert one.status == 200
    contact = await one.json()
    assert (contact["id"], contact["phone"], contact["full_name"], contact["project_id"]) == (
        ids["petr"], "79030003344", "Пётр Иванов", ids["robot"])
    # Reading is what the reports show already: any project the caller sees.
    assert (await admin.get(f"/api/v1/robot/contacts/{ids['plain_contact']}")).status == 200
    sup = await token_browser(staff, "sup@test.ru")
    assert (await sup.get(f"/api/v1/robot/contacts/{ids['foreign_contact']}")).status == 404

    due = await admin.get(f"/api/v1/robot/projects/{ids['robot']}/contacts")
    assert due.status == 200
    assert [c["id"] for c in (await due.json())["items"]] == [ids["petr"]]
    # Reading claims nothing: the dialer still finds the contact due.
    assert (await staff.db.contacts.get(ids["petr"])).dial_state == "new"
    limited = await admin.get(f"/api/v1/robot/projects/{ids['robot']}/contacts?limit=1")
    assert len((await limited.json())["items"]) == 1
    for bad in ("0", "1001", "abc", "-1"):
        response = await admin.get(f"/api/v1/robot/projects/{ids['robot']}/contacts?limit={bad}")
        assert response.status == 400, bad
        assert (await response.json())["error"]["field"] == "limit"
    assert (await admin.get("/api/v1/robot/projects/999999/contacts")).status == 404
    assert (await sup.get(f"/api/v1/robot/projects/{ids['foreign']}/contacts")).status == 404
    assert (await sup.get(f"/api/v1/robot/projects/{ids['robot']}/contacts")).status == 200

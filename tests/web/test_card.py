"""The client card's API (§6.1.1) and the contacts' «Удалить» (§6.1) on the real site: who
may see and change which card, what a save answers, and the wrap-up it ends."""

from __future__ import annotations

import json
import time
from typing import Any

from buslog import BusLog
from webtools import Site

from sipspeak.storage.models import NewContact


async def bases(site: Site) -> dict[str, Any]:
    """«Продажи» (the supervisor's; the operator works in it through «Смена») with Иван,
    «Опросы» (nobody's) with one contact."""
    db = site.db
    oper = site.users["oper@test.ru"]
    sales = await db.projects.create("Продажи", supervisor_id=site.users["sup@test.ru"],
                                     script_html="<p>Здравствуйте!</p>")
    polls = await db.projects.create("Опросы")
    shift = await db.groups.create("Смена")
    await db.groups.add_members(shift, [oper])
    await db.projects.set_groups(sales, [shift])
    recall = await db.statuses.create("Перезвон")
    await db.projects.set_statuses(sales, [recall])
    await db.projects.set_card_fields(sales, ["Дополнительная информация"])
    await db.contacts.insert_many(project_id=sales, upload_id=None, contacts=[
        NewContact(phone="79228711345", full_name="Иван Петров", timezone="Asia/Yekaterinburg",
                   region="Оренбургская обл.")])
    await db.contacts.insert_many(project_id=polls, upload_id=None,
                                  contacts=[NewContact(phone="79160000001")])
    return {"ivan": (await db.contacts.list(project_id=sales))[0].id,
            "poll": (await db.contacts.list(project_id=polls))[0].id,
            "sales": sales, "recall": recall, "oper": oper}


async def test_who_sees_which_card(staff: Site) -> None:
    ids = await bases(staff)
    ivan, poll = ids["ivan"], ids["poll"]
    status, card = await staff.api_get("oper@test.ru", f"/api/v1/contacts/{ivan}/card")
    assert status == 200
    assert card["fields"]["full_name"] == "Иван Петров" and card["phone"] == "79228711345"
    assert card["custom"] == [{"name": "Дополнительная информация", "value": ""}]
    assert card["statuses"] == [{"id": ids["recall"], "name": "Перезвон"}]
    assert card["operators"] == [{"id": ids["oper"], "name": "Оператор"}]
    assert card["script_html"] == "<p>Здравствуйте!</p>" and card["local_time"]
    # Another project's contact is as missing as a contact that never existed.
    for email in ("oper@test.ru", "sup@test.ru"):
        hidden = await staff.api_get(email, f"/api/v1/contacts/{poll}/card")
        missing = await staff.api_get(email, "/api/v1/contacts/999999/card")
        assert hidden[0] == missing[0] == 404
        assert "Опрос" not in str(hidden[1]) and hidden[1]["error"]["code"] == "not_found"
        assert (await staff.api_get(email, f"/api/v1/contacts/{poll}/calls"))[0] == 404
    assert (await staff.api_get("sup@test.ru", f"/api/v1/contacts/{ivan}/card"))[0] == 200
    assert (await staff.api_get("admin@test.ru", f"/api/v1/contacts/{poll}/card"))[0] == 200
    browser = await staff.signed_in("oper@test.ru")
    for method, path, body in (
            ("PATCH", f"/api/v1/contacts/{poll}/card", {"full_name": "x"}),
            ("PATCH", f"/api/v1/contacts/{poll}/card", {"email": "not an e-mail"}),
            ("POST", f"/api/v1/contacts/{poll}/tasks/1/done", None),
            ("POST", f"/api/v1/contacts/{poll}/comments", {"text": "x"}),
            ("POST", f"/api/v1/contacts/{poll}/tasks", {"text": "x", "due_at": 1})):
        response = await browser.api(method, path, body)
        assert response.status == 404, (method, path)
    assert (await staff.db.contacts.get(poll)).full_name is None
    assert await staff.db.comments.list(poll) == []


async def test_save_answers_the_card_and_names_the_bad_field(staff: Site) -> None:
    ids = await bases(staff)
    ivan = ids["ivan"]
    browser = await staff.signed_in("oper@test.ru")
    response = await browser.api("PATCH", f"/api/v1/contacts/{ivan}/card",
                                 {"email": "ivan@", "full_name": "Новое имя"})
    body = await response.json()
    assert response.status == 422 and body["error"]["field"] == "email"
    assert "ivan@" in body["error"]["message"]
    assert (await staff.db.contacts.get(ivan)).full_name == "Иван Петров"
    response = await browser.api("PATCH", f"/api/v1/contacts/{ivan}/card",
                                 {"birth_date": "32-01-1990"})
    assert (await response.json())["error"]["field"] == "birth_date"
    response = await browser.api("PATCH", f"/api/v1/contacts/{ivan}/card",
                                 {"status_id": ids["recall"] + 100})
    assert response.status == 422 and (await response.json())["error"]["field"] == "status_id"
    response = await browser.api("PATCH", f"/api/v1/contacts/{ivan}/card", {
        "full_name": "Иванов Иван", "email": "ivan@mail.ru", "birth_date": "01-01-1991",
        "custom": {"Дополнительная информация": "звонить вечером"}, "tags": "ТЕГ1",
        "status_id": ids["recall"], "operator_id": ids["oper"]})
    card = await response.json()
    assert response.status == 200, card
    assert card["fields"]["birth_date"] == "01-01-1991" and card["tags"] == ["ТЕГ1"]
    assert card["custom"][0]["value"] == "звонить вечером"
    stored = await staff.db.contacts.get(ivan)
    assert (stored.email, stored.birth_date, stored.status_id, stored.operator_id) == (
        "ivan@mail.ru", "1991-01-01", ids["recall"], ids["oper"])
    # English readers get the message in English.
    await staff.db.users.update(ids["oper"], language="en")
    response = await browser.api("PATCH", f"/api/v1/contacts/{ivan}/card", {"email": "x"})
    assert (await response.json())["error"]["message"].startswith("E-mail «x» does not look")


async def test_finish_wrap_up_ends_the_operators_card_state(staff: Site) -> None:
    ids = await bases(staff)
    log = BusLog(staff.services.bus)
    browser = await staff.signed_in("oper@test.ru")
    response = await browser.api("PATCH", f"/api/v1/contacts/{ids['ivan']}/card",
                                 {"email": "bad"})
    assert response.status == 422
    response = await browser.api("PATCH", f"/api/v1/contacts/{ids['ivan']}/card",
                                 {"description": "всё обсудили", "finish_wrap_up": True})
    assert response.status == 200
    event = await log.wait("agent.state", user_id=ids["oper"])
    assert event.data["state"] == "card_saved"
    # The refused save before it ended nothing.
    assert [e.data["state"] for e in log.all("agent.state")] == ["card_saved"]
    response = await browser.api("PATCH", f"/api/v1/contacts/{ids['ivan']}/card",
                                 {"description": "ещё", "finish_wrap_up": "yes"})
    assert response.status == 422


async def test_comments_tasks_and_calls(staff: Site) -> None:
    ids = await bases(staff)
    ivan = ids["ivan"]
    browser = await staff.signed_in("oper@test.ru")
    response = await browser.api("POST", f"/api/v1/contacts/{ivan}/comments", {"text": " "})
    assert response.status == 422 and (await response.json())["error"]["field"] == "text"
    for text in ("первый", "второй"):
        response = await browser.api("POST", f"/api/v1/contacts/{ivan}/comments", {"text": text})
        assert response.status == 201
    body = await response.json()
    assert [c["text"] for c in body["comments"]] == ["второй", "первый"]
    assert body["comments"][0]["author"] == "Оператор"
    due = int(time.time() * 1000) + 3_600_000
    response = await browser.api("POST", f"/api/v1/contacts/{ivan}/tasks",
                                 {"text": "перезвонить", "due_at": due, "auto_call": True})
    body = await response.json()
    assert response.status == 201, body
    task = body["tasks"][0]
    assert (task["operator_id"], task["auto_call"], task["due_at"]) == (ids["oper"], True, due)
    response = await browser.api("POST", f"/api/v1/contacts/{ivan}/tasks/{task['id']}/done")
    assert (await response.json())["tasks"][0]["done_at"] is not None
    response = await browser.api("POST", f"/api/v1/contacts/{ivan}/tasks/{task['id']}/done")
    assert response.status == 404
    call = await staff.db.calls.open(direction="outbound", started_at=1_700_000_000_000,
                                     project_id=ids["sales"], contact_id=ivan,
                                     contact_phone="79228711345", result="answered",
                                     recording_path="/nowhere/call.wav")
    await staff.db.calls.open(direction="outbound", started_at=1_700_000_000_000,
                              project_id=None, contact_phone="79228711345")
    status, calls = await staff.api_get("oper@test.ru", f"/api/v1/contacts/{ivan}/calls")
    assert status == 200 and [c["result"] for c in calls["items"]] == ["answered"]
    assert calls["items"][0]["project_name"] == "Продажи"
    # Recordings are the calls report's, which operators do not open.
    assert calls["items"][0]["recording"] and calls["items"][0]["recording_url"] is None
    _, everything = await staff.api_get("admin@test.ru", f"/api/v1/contacts/{ivan}/calls")
    assert len(everything["items"]) == 2
    assert {c["id"]: c["recording_url"] for c in everything["items"]}[call] == \
        f"/reports/calls/{call}/recording"


async def test_delete_keeps_contacts_being_dialled_and_others(staff: Site) -> None:
    ids = await bases(staff)
    db = staff.db
    await db.contacts.insert_many(project_id=ids["sales"], upload_id=None,
                                  contacts=[NewContact(phone="79990000001")])
    busy = (await db.contacts.list(phone="79990000001"))[0].id
    assert await db.contacts.claim_for_dialling([busy], now=int(time.time() * 1000)) == [busy]
    oper = await staff.signed_in("oper@test.ru")
    response = await oper.api("DELETE", "/api/v1/contacts", {"ids": [ids["ivan"]]})
    assert response.status == 403
    sup = await staff.signed_in("sup@test.ru")
    response = await sup.api("DELETE", "/api/v1/contacts", {"ids": "all"})
    assert response.status == 422 and (await response.json())["error"]["field"] == "ids"
    response = await sup.api("DELETE", "/api/v1/contacts",
                             {"ids": [ids["ivan"], busy, ids["poll"]]})
    assert await response.json() == {"deleted": 1, "dialing": 1, "skipped": 2,
                                     "ids": [ids["ivan"]]}
    assert {c.id for c in await db.contacts.list()} == {busy, ids["poll"]}
    admin = await staff.signed_in("admin@test.ru")
    response = await admin.api("DELETE", "/api/v1/contacts", {"ids": [busy, ids["poll"]]})
    assert await response.json() == {"deleted": 1, "dialing": 1, "skipped": 1,
                                     "ids": [ids["poll"]]}
    assert [c.id for c in await db.contacts.list()] == [busy]


async def test_the_api_is_documented_and_the_card_speaks_the_readers_language(
        staff: Site) -> None:
    status, document = await staff.api_get("oper@test.ru", "/api/v1/openapi.json")
    assert status == 200
    card = document["paths"]["/api/v1/contacts/{id}/card"]
    assert set(card) >= {"get", "patch"}
    patch = card["patch"]["requestBody"]["content"]["application/json"]["schema"]
    assert patch["properties"]["finish_wrap_up"] == {"type": "boolean"}
    assert "ids" in document["paths"]["/api/v1/contacts"]["delete"]["requestBody"][
        "content"]["application/json"]["schema"]["properties"]
    # The component's words (templates/card/_texts.html) in Russian, or English for him.
    await staff.db.users.update(staff.users["sup@test.ru"], language="en")
    for email, save in (("admin@test.ru", "Сохранить"), ("sup@test.ru", "Save")):
        page = await (await staff.signed_in(email)).get("/reports/contacts")
        html = await page.text()
        blob = html.split('id="sipcard-texts">', 1)[1].split("</script>", 1)[0]
        texts = json.loads(blob)
        assert texts["save"] == save and len(texts) > 40
        assert not [k for k, v in texts.items() if v.startswith("card.")], texts

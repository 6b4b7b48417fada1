"""«Деактивация статуса» (§4.3.2) on the real site: the project's tabs and the client card no
longer offer a deactivated status, the places that already hold it keep it, and the card's
API refuses it by name in the reader's language."""

from __future__ import annotations

import re

from webtools import Site

from sipspeak.storage.models import NewContact, TaskRule


def options(page: str, name: str) -> list[str]:
    """The option texts of the select ``name`` (the first one of that name)."""
    found = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', page, re.DOTALL)
    assert found is not None, name
    return [re.sub(r"\s+", " ", o).strip()
            for o in re.findall(r"<option[^>]*>(.*?)</option>", found.group(1), re.DOTALL)]


async def test_the_project_tabs_offer_active_statuses_and_keep_the_ones_in_use(
        staff: Site) -> None:
    db = staff.db
    recall = await db.statuses.create("Перезвон")
    refuse = await db.statuses.create("Отказ")
    spare = await db.statuses.create("Дубль")
    crm = await db.statuses.create("Получил")
    project = await db.projects.create("Продажи", crm_status_id=crm)
    await db.projects.set_statuses(project, [recall, refuse])
    await db.projects.set_task_rules(project, [TaskRule(operator_id=staff.users["oper@test.ru"],
                                                        status_id=refuse)])
    for status in (refuse, spare, crm):
        await db.statuses.update(status, active=False)
    admin = await staff.signed_in("admin@test.ru")
    queue = await (await admin.get(f"/projects/{project}?tab=queue")).text()
    # Used by the project: still listed (and chosen), marked; unused and inactive: gone.
    assert options(queue, "status_ids") == ["Отказ (Не активно)", "Перезвон", "Получил (Не активно)"]
    assert re.search(rf'value="{refuse}" selected>Отказ', queue)
    assert "Дубль" not in queue
    # A new task rule row offers the active ones only.
    template = re.search(r'<template id="rule-template">(.*?)</template>', queue, re.DOTALL)
    assert template is not None
    assert options(template.group(1), "rule_status") == ["Перезвон"]
    integration = await (await admin.get(f"/projects/{project}?tab=integration")).text()
    assert "Получил (Не активно)" in integration and "Дубль" not in integration
    # Saving the tab as shown keeps what the project had.
    response = await admin.form(f"/projects/{project}", [
        ("tab", "queue"), ("queue_timeout_s", "30"), ("operator_timeout_s", "15"),
        ("strategy", "linear"), ("status_ids", str(recall)), ("status_ids", str(refuse)),
        ("rule_operator", str(staff.users["oper@test.ru"])), ("rule_status", str(refuse))])
    assert response.status == 303, await response.text()
    assert set((await db.projects.get(project)).status_ids) == {recall, refuse}
    # Active again: offered again.
    await db.statuses.update(spare, active=True)
    queue = await (await admin.get(f"/projects/{project}?tab=queue")).text()
    assert "Дубль" in options(queue, "status_ids")


async def test_the_card_api_refuses_a_deactivated_status_by_name(staff: Site) -> None:
    db = staff.db
    oper = staff.users["oper@test.ru"]
    project = await db.projects.create("Продажи")
    group = await db.groups.create("Смена")
    await db.groups.add_members(group, [oper])
    await db.projects.set_groups(project, [group])
    recall = await db.statuses.create("Перезвон")
    refuse = await db.statuses.create("Отказ")
    await db.contacts.insert_many(project_id=project, upload_id=None, contacts=[
        NewContact(phone="+79220000001", full_name="Иван"),
        NewContact(phone="+79220000002", full_name="Мария")])
    ivan, maria = (c.id for c in await db.contacts.list(project_id=project))
    browser = await staff.signed_in("oper@test.ru")
    answer = await browser.api("PATCH", f"/api/v1/contacts/{ivan}/card", {"status_id": refuse})
    assert answer.status == 200
    await db.statuses.update(refuse, active=False)
    status, card = await staff.api_get("oper@test.ru", f"/api/v1/contacts/{maria}/card")
    assert status == 200 and card["statuses"] == [{"id": recall, "name": "Перезвон"}]
    status, card = await staff.api_get("oper@test.ru", f"/api/v1/contacts/{ivan}/card")
    assert card["status_id"] == refuse
    assert [s["name"] for s in card["statuses"]] == ["Отказ", "Перезвон"]
    answer = await browser.api("PATCH", f"/api/v1/contacts/{maria}/card",
                               {"status_id": refuse, "full_name": "Мария Иванова"})
    body = await answer.json()
    assert answer.status == 422 and body["error"]["field"] == "status_id"
    assert body["error"]["message"].startswith("Статус «Отказ» деактивирован")
    stored = await db.contacts.get(maria)
    assert (stored.status_id, stored.full_name) == (None, "Мария")
    await db.users.update(oper, language="en")
    answer = await browser.api("PATCH", f"/api/v1/contacts/{maria}/card", {"status_id": refuse})
    assert (await answer.json())["error"]["message"].startswith(
        "The status «Отказ» is deactivated")

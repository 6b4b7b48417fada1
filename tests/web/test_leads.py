"""«Отправить заявку» (§5.2.7): a client card sent as a lead to the project's Bitrix24 (the
stand-in of tests/crm_standin.py), by the button's API and by the card taking the project's
«Статус CRM»; only for whoever may see the card."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from buslog import BusLog
from crm_standin import Crm
from webtools import Site

from sipspeak.integrations.outbox import LeadOutbox
from sipspeak.storage.models import NewContact


@pytest.fixture
async def world(staff: Site, crm: tuple[Crm, str]) -> AsyncIterator[dict[str, Any]]:
    stand_in, host = crm
    db = staff.db
    outbox = LeadOutbox(db, staff.services.bus)
    await outbox.start()
    staff.services.leads = outbox
    lead_status = await db.statuses.create("Лид")
    other_status = await db.statuses.create("Перезвонить")
    project = await db.projects.create(
        "Продажи", bitrix_host=host, bitrix_login="bot", bitrix_password="pw",
        bitrix_title="Обзвон", crm_status_id=lead_status)
    bare = await db.projects.create("Без CRM")
    group = await db.groups.create("Смена")
    await db.groups.add_members(group, [staff.users["oper@test.ru"]])
    await db.projects.set_groups(project, [group])
    await db.projects.set_groups(bare, [group])
    await db.contacts.insert_many(project_id=project, upload_id=None, contacts=[
        NewContact(phone="+79161234567", full_name="Петров Пётр")])
    await db.contacts.insert_many(project_id=bare, upload_id=None, contacts=[
        NewContact(phone="+79161234568")])
    contact = (await db.contacts.list(project_id=project))[0].id
    other = (await db.contacts.list(project_id=bare))[0].id
    stranger = await staff.user("operator", "stranger@test.ru")
    try:
        yield {"crm": stand_in, "contact": contact, "other": other, "stranger": stranger,
               "lead": lead_status, "callback": other_status, "log": BusLog(staff.services.bus)}
    finally:
        staff.services.leads = None
        await outbox.aclose()


async def test_the_button_sends_the_card_as_a_lead(staff: Site, world: dict[str, Any]) -> None:
    operator = await staff.signed_in("oper@test.ru")
    contact = world["contact"]
    answer = await operator.api("POST", f"/api/v1/contacts/{contact}/comments",
                                {"text": "Ждёт коммерческое предложение"})
    assert answer.status in (200, 201), await answer.text()
    answer = await operator.api("POST", f"/api/v1/contacts/{contact}/lead")
    assert answer.status == 202, await answer.text()
    lead_id = (await answer.json())["lead_id"]
    await world["log"].wait("crm.lead", lead_id=lead_id, state="sent")
    form = world["crm"].forms[-1]
    assert (form["TITLE"], form["LAST_NAME"], form["NAME"], form["PHONE_MOBILE"]) == (
        "Обзвон", "Петров", "Пётр", "+79161234567")
    assert "Комментарий: Ждёт коммерческое предложение" in form["COMMENTS"]
    # A project without CRM settings says so with the field; someone else's card is 404.
    answer = await operator.api("POST", f"/api/v1/contacts/{world['other']}/lead")
    assert answer.status == 422
    assert (await answer.json())["error"]["field"] == "project"
    stranger = await staff.signed_in("stranger@test.ru")
    assert (await stranger.api("POST", f"/api/v1/contacts/{contact}/lead")).status == 404
    assert len(world["crm"].forms) == 1


async def test_taking_the_crm_status_sends_the_lead_once(staff: Site,
                                                         world: dict[str, Any]) -> None:
    operator = await staff.signed_in("oper@test.ru")
    card = f"/api/v1/contacts/{world['contact']}/card"
    answer = await operator.api("PATCH", card, {"status_id": world["callback"]})
    assert answer.status == 200, await answer.text()
    answer = await operator.api("PATCH", card, {"status_id": world["lead"],
                                                "birth_date": "17-05-1990"})
    assert answer.status == 200, await answer.text()
    await world["log"].wait("crm.lead", state="sent")
    assert "Статус: Лид" in world["crm"].forms[-1]["COMMENTS"]
    # The card's date, as the card stores it, reaches Bitrix in its own form.
    assert world["crm"].forms[-1]["BIRTHDATE"] == "17.05.1990"
    # Saving the card again with the same status sends nothing more.
    answer = await operator.api("PATCH", card, {"status_id": world["lead"],
                                                "full_name": "Петров Пётр Петрович"})
    assert answer.status == 200
    assert len(world["crm"].forms) == 1
    assert len(await staff.db.crm_leads.list(contact_id=world["contact"])) == 1


async def test_the_cards_button_in_chromium(staff: Site, world: dict[str, Any]) -> None:
    from test_browser import load_driver, sign_in, until

    base = staff.base.rstrip("/")
    async with load_driver().ChromiumDriver.launch() as browser:
        await sign_in(browser, base, "admin@test.ru")
        await browser.navigate(f"{base}/reports/contacts")

        async def note() -> str:
            return str(await browser.execute(
                "var n = document.querySelector('.sipcard [data-pane=\"main\"]"
                " [data-error-for=\"\"]'); return n ? n.textContent : '';"))

        # A project without CRM settings: the card says so, nothing is sent.
        await browser.click(await browser.find(
            f'tr[data-contact="{world["other"]}"] td[data-column="phone"]'))
        await browser.click(await browser.wait_for(".sipcard .sipcard-lead"))
        await until(lambda: _has(note(), "не настроена интеграция с CRM"), "the refusal")
        await browser.navigate(f"{base}/reports/contacts")
        await browser.click(await browser.find(
            f'tr[data-contact="{world["contact"]}"] td[data-column="phone"]'))
        await browser.click(await browser.wait_for(".sipcard .sipcard-lead"))
        await until(lambda: _has(note(), "Заявка принята"), "the lead accepted")
        await world["log"].wait("crm.lead", state="sent")
        assert [f["PHONE_MOBILE"] for f in world["crm"].forms] == ["+79161234567"]


async def _has(text: Any, part: str) -> bool:
    return part in await text


async def test_two_saves_at_once_send_one_lead(staff: Site, world: dict[str, Any]) -> None:
    import asyncio

    first = await staff.signed_in("oper@test.ru")
    second = await staff.signed_in("admin@test.ru")
    card = f"/api/v1/contacts/{world['contact']}/card"
    answers = await asyncio.gather(*(b.api("PATCH", card, {"status_id": world["lead"]})
                                     for b in (first, second)))
    assert [a.status for a in answers] == [200, 200]
    await world["log"].wait("crm.lead", state="sent")
    assert len(await staff.db.crm_leads.list(contact_id=world["contact"])) == 1

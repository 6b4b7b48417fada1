"""The client card's «E-mail» tab (§5.2.7): the project's template filled in from the card,
sent through the [smtp] server — a stand-in speaking SMTP on 127.0.0.1 (tests/smtp_standin.py)
— and noted in the card's comments; every way it can fail says why."""

from __future__ import annotations

from typing import Any

import pytest
from smtp_standin import MailServer
from webtools import Site

from sipspeak.storage.models import NewContact

TEMPLATE = ("Тема: Предложение для {full_name}\n"
            "Здравствуйте, {full_name}!\n"
            "Город: {city}. Пожелание: {Пожелание}. {неизвестно} — {operator}, «{project}»")


@pytest.fixture
async def world(staff: Site, mail_server: MailServer) -> dict[str, Any]:
    db = staff.db
    staff.services.config = staff.services.config.with_overrides({
        ("smtp", "host"): "127.0.0.1", ("smtp", "port"): mail_server.port,
        ("smtp", "security"): "none", ("smtp", "username"): "cc",
        ("smtp", "password"): "mail-secret",
        ("smtp", "from_address"): "Колл-центр <cc@example.ru>"})
    project = await db.projects.create("Продажи", email_template=TEMPLATE)
    await db.projects.set_card_fields(project, ["Пожелание"])
    group = await db.groups.create("Смена")
    await db.groups.add_members(group, [staff.users["oper@test.ru"]])
    await db.projects.set_groups(project, [group])
    await db.contacts.insert_many(project_id=project, upload_id=None, contacts=[
        NewContact(phone="+79161234567", full_name="Иван Петров", email="ivan@example.ru",
                   city="Оренбург", custom={"Пожелание": "звонить после 18"}),
        NewContact(phone="+79161234568")])
    ivan, bare = await db.contacts.list(project_id=project)
    await staff.user("operator", "stranger@test.ru")
    return {"ivan": ivan.id, "bare": bare.id, "server": mail_server}


async def test_the_template_becomes_an_email_sent_and_noted(staff: Site,
                                                            world: dict[str, Any]) -> None:
    operator = await staff.signed_in("oper@test.ru")
    path = f"/api/v1/contacts/{world['ivan']}/email"
    draft = await (await operator.get(path)).json()
    assert draft == {
        "available": True, "to": "ivan@example.ru", "subject": "Предложение для Иван Петров",
        "body": "Здравствуйте, Иван Петров!\nГород: Оренбург. Пожелание: звонить после 18. "
                "{неизвестно} — Оператор, «Продажи»"}
    answer = await operator.api("POST", path, {"subject": draft["subject"],
                                               "body": draft["body"] + "\nДо встречи."})
    assert answer.status == 200, await answer.text()
    [(sender, recipients, message)] = world["server"].received
    assert (sender, recipients) == ("cc@example.ru", ["ivan@example.ru"])
    assert message["To"] == "Иван Петров <ivan@example.ru>"
    assert message["Subject"] == "Предложение для Иван Петров"
    assert message.get_content().rstrip("\n").endswith("«Продажи»\nДо встречи.")
    comments = await staff.db.comments.list(world["ivan"])
    assert [c.text for c in comments] == [
        "Отправлено письмо на ivan@example.ru: «Предложение для Иван Петров»"]
    # A name typed over two lines still makes one To header.
    await staff.db.contacts.update(world["ivan"], full_name="Иван\nПетров")
    answer = await operator.api("POST", path, {"subject": "Ещё", "body": "Текст"})
    assert answer.status == 200, await answer.text()
    assert world["server"].received[-1][2]["To"] == "Иван Петров <ivan@example.ru>"


async def test_every_failure_says_why_and_sends_nothing(staff: Site,
                                                        world: dict[str, Any]) -> None:
    operator = await staff.signed_in("oper@test.ru")
    ivan = f"/api/v1/contacts/{world['ivan']}/email"
    letter = {"subject": "Тема", "body": "Текст"}

    async def error(path: str, body: Any) -> tuple[int, str | None, str]:
        answer = await operator.api("POST", path, body)
        found = (await answer.json())["error"]
        return answer.status, found.get("field"), found["message"]

    assert await error(f"/api/v1/contacts/{world['bare']}/email", letter) == (
        422, "email", "в карточке нет правильного адреса E-mail")
    assert (await error(ivan, {"subject": "a\nBcc: x@y.ru", "body": "b"}))[:2] == (
        422, "subject")
    assert (await error(ivan, {"subject": "a", "body": " "}))[:2] == (422, "body")
    world["server"].refuse.add("ivan@example.ru")
    assert await error(ivan, letter) == (
        502, None, "почтовый сервер отказался принять адрес получателя")
    world["server"].refuse.clear()
    world["server"].password = "changed"
    assert await error(ivan, letter) == (
        502, None, "почтовый сервер не принял логин или пароль")
    staff.services.config = staff.services.config.with_overrides({("smtp", "security"):
                                                                  "starttls"})
    assert (await error(ivan, letter))[2] == "почтовый сервер не поддерживает STARTTLS"
    world["server"].server.close()
    await world["server"].server.wait_closed()
    staff.services.config = staff.services.config.with_overrides({("smtp", "security"): "none"})
    status, _, message = await error(ivan, letter)
    assert status == 502 and message.startswith("почтовый сервер недоступен или отказал")
    staff.services.config = staff.services.config.with_overrides({("smtp", "host"): ""})
    assert (await error(ivan, letter))[0] == 503
    draft = await (await operator.get(ivan)).json()
    assert draft["available"] is False
    stranger = await staff.signed_in("stranger@test.ru")
    assert (await stranger.api("POST", ivan, letter)).status == 404
    assert (await stranger.get(ivan)).status == 404
    assert world["server"].received == [] and await staff.db.comments.list(world["ivan"]) == []


async def test_the_cards_email_tab_in_chromium(staff: Site, world: dict[str, Any]) -> None:
    from test_browser import load_driver, sign_in, until

    base = staff.base.rstrip("/")
    async with load_driver().ChromiumDriver.launch() as browser:
        await sign_in(browser, base, "admin@test.ru")
        await browser.navigate(f"{base}/reports/contacts")
        await browser.click(await browser.find(
            f'tr[data-contact="{world["ivan"]}"] td[data-column="phone"]'))
        await browser.click(await browser.wait_for('.sipcard [data-tab="email"]'))

        async def value(selector: str) -> str:
            return str(await browser.execute(
                f"var e = document.querySelector('{selector}'); return e ? e.value : '';"))

        async def drafted() -> bool:
            return await value(".sipcard-mail [data-field=subject]") == (
                "Предложение для Иван Петров")

        await until(drafted, "the template filled in")
        assert await value(".sipcard-mail [data-field=email]") == "ivan@example.ru"
        await browser.execute("document.querySelector('.sipcard-mail [data-field=body]')"
                              ".value = 'Коротко: перезвоним.';")
        await browser.click(await browser.find(".sipcard-mail-send"))

        async def sent() -> bool:
            return bool(world["server"].received)

        await until(sent, "the e-mail at the server")
        [(_, _, message)] = world["server"].received
        assert message.get_content().strip() == "Коротко: перезвоним."

        async def noted() -> bool:
            text = await browser.execute(
                "return document.querySelector('.sipcard-mail [data-error-for=\"\"]')"
                ".textContent;")
            return text == "Письмо отправлено"

        await until(noted, "the card saying it went")
        # The «SMS» tab beside it: no gateway is set up here, so it says so and cannot send.
        await browser.click(await browser.find('.sipcard [data-tab="sms"]'))

        async def sms_off() -> bool:
            return bool(await browser.execute(
                "var n = document.querySelector('.sipcard-sms [data-error-for=\"\"]');"
                " return n.textContent === 'SMS не настроены: отправка недоступна'"
                " && document.querySelector('.sipcard-sms-send').disabled;"))

        await until(sms_off, "the SMS tab saying SMS is off")

"""Headless Chromium in «Отчеты → Контакты» (§6.1.1): a row opens the client card, a field
is edited and saved (a bad e-mail is shown beside its field first), a comment is added, and
«Удалить» removes the chosen contact after the confirmation."""

from __future__ import annotations

from typing import Any

from test_browser import load_driver, sign_in, until
from webtools import Site

from sipspeak.storage.models import NewContact


async def _value(browser: Any, script: str) -> Any:
    return await browser.execute(script)


async def test_a_report_row_opens_the_card_that_saves_and_takes_comments(staff: Site) -> None:
    db = staff.db
    sales = await db.projects.create("Продажи", supervisor_id=staff.users["sup@test.ru"],
                                     script_html="<p>Добрый день, это SipSpeak</p>")
    recall = await db.statuses.create("Перезвон")
    await db.projects.set_statuses(sales, [recall])
    await db.projects.set_card_fields(sales, ["Дополнительная информация"])
    await db.contacts.insert_many(project_id=sales, upload_id=None, contacts=[
        NewContact(phone="79228711345", full_name="Иван Петров", timezone="Asia/Yekaterinburg"),
        NewContact(phone="79171959395")])
    ivan, other = await db.contacts.list(project_id=sales)
    driver = load_driver()
    base = staff.base.rstrip("/")
    async with driver.ChromiumDriver.launch() as browser:
        await sign_in(browser, base, "sup@test.ru")
        await browser.navigate(f"{base}/reports/contacts")
        await browser.click(await browser.find(
            f'tr[data-contact="{ivan.id}"] td[data-column="full_name"]'))
        name = await browser.wait_for('.sipcard input[data-field="full_name"]')
        assert "Местное время" in await browser.text(await browser.find(".sipcard-time"))

        email = await browser.find('.sipcard input[data-field="email"]')
        await browser.type_text(email, "ivan@")
        await browser.click(await browser.find(".sipcard-save"))

        async def email_refused() -> bool:
            text = await _value(browser, "return document.querySelector("
                                "'.sipcard [data-error-for=\"email\"]').textContent;")
            return "ivan@" in str(text)

        await until(email_refused, "the e-mail's error beside its field")
        assert (await db.contacts.get(ivan.id)).email is None

        await browser.execute("for (const f of ['email', 'full_name']) {"
                              " document.querySelector(`.sipcard input[data-field=\"${f}\"]`)"
                              ".value = ''; }")
        await browser.type_text(name, "Иванов Иван")
        await browser.type_text(await browser.find(
            '.sipcard input[data-field="custom:Дополнительная информация"]'), "после 18:00")
        await browser.execute(
            f"const s = document.querySelector('.sipcard select[data-field=\"status_id\"]');"
            f" s.value = '{recall}';")
        await browser.click(await browser.find(".sipcard-save"))

        async def saved() -> bool:
            contact = await db.contacts.get(ivan.id)
            return contact.full_name == "Иванов Иван" and contact.status_id == recall

        await until(saved, "the card saved")

        async def redrawn() -> bool:
            # The card is drawn again from the save's answer, saying so beside «Сохранить».
            return str(await browser.execute(
                "const n = document.querySelector('[data-pane=\"main\"] [data-error-for=\"\"]');"
                " return n ? n.textContent : '';")) == "Сохранено"

        await until(redrawn, "the card drawn from the save's answer")
        assert '"Дополнительная информация": "после 18:00"' in (await db.contacts.get(ivan.id)).custom

        # «Позвонить» asks click-to-call for the signed-in user and this contact: with no
        # telephony running in this test the API's answer is shown beside the button.
        await browser.click(await browser.find(".sipcard-call"))

        async def call_answered() -> bool:
            text = await _value(browser, "return document.querySelector("
                                "'.sipcard [data-error-for=\"call\"]').textContent;")
            return str(text) == "телефония не запущена"

        await until(call_answered, "the click-to-call answer")

        await browser.click(await browser.find('.sipcard [data-tab="script"]'))
        assert "Добрый день" in await browser.text(await browser.find(".sipcard-script"))
        shown = await browser.execute(
            "return Array.from(document.querySelectorAll('.sipcard [data-pane]'))"
            ".filter(p => p.offsetParent !== null).map(p => p.dataset.pane);")
        assert shown == ["script"]  # one tab's pane at a time
        await browser.click(await browser.find('.sipcard [data-tab="comments"]'))
        await browser.type_text(await browser.find(
            '.sipcard [data-pane="comments"] textarea[data-field="text"]'), "перезвонить вечером")
        await browser.click(await browser.find(
            '.sipcard [data-pane="comments"] button[type="submit"]'))

        async def commented() -> bool:
            shown = await _value(browser, "return Array.from(document.querySelectorAll("
                                 "'.sipcard [data-list=\"comments\"] li[data-comment] p'))"
                                 ".map(p => p.textContent);")
            return bool(shown == ["перезвонить вечером"])

        await until(commented, "the comment in the card")
        assert [c.text for c in await db.comments.list(ivan.id)] == ["перезвонить вечером"]

        # «Удалить»: the chosen contact goes after the confirmation; its row with it.
        await browser.execute("window.confirm = function () { return true; };")
        await browser.click(await browser.find(f'input.contact-select[value="{other.id}"]'))
        await browser.click(await browser.find("#contacts-delete"))

        async def deleted() -> bool:
            return [c.id for c in await db.contacts.list(project_id=sales)] == [ivan.id]

        await until(deleted, "the contact deleted")

        async def told() -> bool:
            # The answer reaches the page a moment after storage committed.
            return bool(await browser.execute(
                "return document.getElementById('contacts-delete-result').textContent"
                f".includes('Удалено: 1') && !document.querySelector("
                f"'tr[data-contact=\"{other.id}\"]');"))

        await until(told, "the deletion's answer on the page and the row gone")
        # Enter on the focused row closes its card (and opens it again).
        toggle = (f"const r = document.querySelector('tr[data-contact=\"{ivan.id}\"]'); r.focus();"
                  " r.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}));"
                  " return document.querySelectorAll('tr.sipcard-row').length;")
        assert await browser.execute(toggle) == 0
        assert await browser.execute(toggle) == 1
        await browser.wait_for('.sipcard input[data-field="full_name"]')
        # The refused e-mail (422) and click-to-call without telephony (503) are the failed
        # requests Chromium logs.
        errors = [e for e in await browser.console_logs() if e.get("level") == "SEVERE"
                  and not any(f"status of {code}" in str(e.get("message"))
                              for code in (422, 503))]
        assert errors == [], errors

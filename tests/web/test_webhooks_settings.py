"""Settings → Вебхуки: endpoints managed by the administrators through the page and the API,
bad addresses and absurd settings refused with a message that names the field (nothing
stored), and «Проверить» sending a signed test event to a receiver on 127.0.0.1 and showing
its answer."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from webtools import Site

sys.path.insert(0, str(Path(__file__).parents[1] / "integrations"))

import test_webhooks_outbox
from test_webhooks_outbox import Receiver

from sipspeak.integrations.webhooks import DEFAULT_EVENTS, EVENT_HEADER, TEST_EVENT

SECRET = "receiver-shared-secret-1"
receiver = test_webhooks_outbox.receiver  # a receiver on 127.0.0.1 (fixture)


async def admin_api(site: Site) -> Any:
    return site.browser(bearer=await site.token_for("admin@test.ru"))


def hook(url: str = "https://crm.example.ru/hooks/sipspeak", **values: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "CRM", "url": url, "secret": SECRET}
    body.update(values)
    return body


async def test_an_endpoint_is_added_changed_listed_and_removed(staff: Site) -> None:
    api = await admin_api(staff)
    created = await api.api("POST", "/api/v1/webhooks", hook())
    assert created.status == 201, await created.text()
    item = await created.json()
    assert item["events"] == list(DEFAULT_EVENTS)  # the call's life unless told otherwise
    assert (item["active"], item["full_numbers"], item["failing_since"]) == (True, False, None)
    assert "secret" not in item
    changed = await api.api("PATCH", f"/api/v1/webhooks/{item['id']}", {
        "events": ["call.ended", "call.started"], "full_numbers": True, "secret": ""})
    assert changed.status == 200, await changed.text()
    item = await changed.json()
    assert item["events"] == ["call.started", "call.ended"] and item["full_numbers"]
    stored = await staff.db.webhooks.get(item["id"])
    assert stored.secret == SECRET  # an empty secret keeps the old one
    listed = await (await api.get("/api/v1/webhooks")).json()
    assert [(i["name"], i["pending"]) for i in listed["items"]] == [("CRM", 0)]
    taken = await api.api("POST", "/api/v1/webhooks", hook(name="crm"))
    assert taken.status == 409 and (await taken.json())["error"]["field"] == "name"
    assert (await api.api("DELETE", f"/api/v1/webhooks/{item['id']}")).status == 200
    assert (await api.api("DELETE", f"/api/v1/webhooks/{item['id']}")).status == 404
    assert await staff.db.webhooks.list() == []
    # Only administrators manage them.
    for email in ("sup@test.ru", "oper@test.ru"):
        status, _ = await staff.api_get(email, "/api/v1/webhooks")
        assert status == 403


@pytest.mark.parametrize(("body", "field", "message"), [
    (hook(url=""), "url", "укажите адрес (URL) получателя"),
    (hook(url="ftp://files.example.ru/in"), "url", "должен начинаться с http:// или https://"),
    (hook(url="javascript:alert(1)"), "url", "должен начинаться с http:// или https://"),
    (hook(url="crm.example.ru/hook"), "url", "должен начинаться с http:// или https://"),
    (hook(url="https://"), "url", "нет правильного имени хоста"),
    (hook(url="http://999.1.1.1/hook"), "url", "нет правильного имени хоста"),
    (hook(url="http://bad_host.example/"), "url", "нет правильного имени хоста"),
    (hook(url="https://crm example.ru/"), "url", "не является URL"),
    (hook(url="https://bot:pw@crm.example.ru/"), "url", "логин и пароль в адресе"),
    (hook(url="https://crm.example.ru:0/"), "url", "порт в адресе получателя"),
    (hook(url="https://crm.example.ru:70000/"), "url", "не является URL"),
    (hook(url="https://crm.example.ru/h#x"), "url", "часть после «#»"),
    (hook(url="https://crm.example.ru/" + "a" * 2000), "url", "длиннее 2000 символов"),
    (hook(events=[]), "events", "выберите хотя бы одно событие"),
    (hook(events=["call.ended", "call.exploded"]), "events", "неизвестный тип события: call.exploded"),
    (hook(events=[1, 2]), "events", "ожидается список типов событий"),
    (hook(events={"call.ended": True}), "events", "ожидается список типов событий"),
    (hook(secret="short"), "secret", "не короче 16 символов"),
    (hook(secret=""), "secret", "не короче 16 символов"),
    (hook(secret="x" * 257), "secret", "не длиннее 256 символов"),
    (hook(secret=" padded-secret-value "), "secret", "пробелы по краям"),
    (hook(secret="line\nbreak-secret-value"), "secret", "управляющие символы"),
    (hook(name=""), "name", "название вебхука не может быть пустым"),
    (hook(name="Я" * 101), "name", "100"),
    (hook(active="maybe"), "active", "ожидается да/нет"),
])
async def test_bad_addresses_and_absurd_settings_are_refused(
        staff: Site, body: dict[str, Any], field: str, message: str) -> None:
    api = await admin_api(staff)
    answer = await api.api("POST", "/api/v1/webhooks", body)
    assert answer.status == 422, await answer.text()
    error = (await answer.json())["error"]
    assert error["field"] == field and message in error["message"], error
    assert await staff.db.webhooks.list() == []
    # A change is refused the same way and leaves the endpoint as it was.
    good = await (await api.api("POST", "/api/v1/webhooks", hook())).json()
    before = await staff.db.webhooks.get(good["id"])
    change = {k: v for k, v in body.items() if k == field}
    answer = await api.api("PATCH", f"/api/v1/webhooks/{good['id']}", change)
    if field == "secret" and body["secret"] == "":
        assert answer.status == 200  # an empty secret on a change keeps the old one
    else:
        assert answer.status == 422 and (await answer.json())["error"]["field"] == field
    after = await staff.db.webhooks.get(good["id"])
    assert (after.url, after.events, after.secret, after.name) == (
        before.url, before.events, before.secret, before.name)


async def test_the_page_adds_an_endpoint_and_says_what_is_wrong(staff: Site) -> None:
    admin = await staff.signed_in("admin@test.ru")
    page = await admin.get("/settings/webhooks")
    assert page.status == 200
    text = await page.text()
    assert 'href="/settings/webhooks"' in text and ">Вебхуки<" in text  # in the menu
    assert "X-SipSpeak-Signature" in text
    form = [("name", "Склад"), ("url", "ftp://bad.example"), ("secret", SECRET),
            ("events", "call.ended"), ("events", "call.answered"), ("active", "1")]
    refused = await admin.form("/settings/webhooks", form)
    assert refused.status == 422
    assert "должен начинаться с http:// или https://" in await refused.text()
    assert await staff.db.webhooks.list() == []
    form[1] = ("url", "https://склад.рф/hooks")
    added = await admin.form("/settings/webhooks", form)
    assert added.status == 303 and added.headers["Location"] == "/settings/webhooks?ok=created"
    [stored] = await staff.db.webhooks.list()
    assert stored.event_types == ("call.answered", "call.ended") and stored.active
    assert not stored.full_numbers and stored.secret == SECRET
    # Saved with no event ticked: refused; ticked again and switched off: saved.
    edit = [("name", "Склад"), ("url", stored.url), ("secret", "")]
    refused = await admin.form(f"/settings/webhooks/{stored.id}", edit)
    assert refused.status == 422 and "выберите хотя бы одно событие" in await refused.text()
    saved = await admin.form(f"/settings/webhooks/{stored.id}",
                             [*edit, ("events", "call.bridged"), ("full_numbers", "1")])
    assert saved.status == 303
    stored = await staff.db.webhooks.get(stored.id)
    assert stored.event_types == ("call.bridged",) and not stored.active
    assert stored.full_numbers and stored.secret == SECRET
    removed = await admin.form(f"/settings/webhooks/{stored.id}/delete", [])
    assert removed.status == 303 and await staff.db.webhooks.list() == []
    supervisor = await staff.signed_in("sup@test.ru")
    assert (await supervisor.get("/settings/webhooks")).status == 403
    assert "/settings/webhooks" not in await (await supervisor.get("/profile/devices")).text()


async def test_the_test_button_sends_a_signed_event_and_shows_the_answer(
        staff: Site, receiver: Receiver) -> None:
    api = await admin_api(staff)
    receiver.secrets["/in"] = SECRET
    item = await (await api.api("POST", "/api/v1/webhooks",
                                hook(url=receiver.url("/in")))).json()
    answer = await api.api("POST", f"/api/v1/webhooks/{item['id']}/test")
    assert answer.status == 200
    assert await answer.json() == {"ok": True, "status": 200, "body": "принято", "error": ""}
    [got] = receiver.at("/in")
    assert got.signed and got.headers[EVENT_HEADER] == TEST_EVENT
    assert got.event["type"] == TEST_EVENT and got.event["data"]["name"] == "CRM"
    # A new secret signs the next test; the receiver still holding the old one refuses it.
    new_secret = "a-brand-new-secret-2"
    await api.api("PATCH", f"/api/v1/webhooks/{item['id']}", {"secret": new_secret})
    answer = await (await api.api("POST", f"/api/v1/webhooks/{item['id']}/test")).json()
    assert (answer["ok"], answer["status"], answer["body"]) == (False, 401, "bad signature")
    receiver.secrets["/in"] = new_secret
    # The page's button says what the receiver answered, in the reader's language.
    admin = await staff.signed_in("admin@test.ru")
    page = await admin.form(f"/settings/webhooks/{item['id']}/test", [])
    assert page.status == 200
    assert "«CRM»: получатель ответил HTTP 200 принято" in await page.text()
    receiver.replies["/in"] = [500]
    page = await admin.form(f"/settings/webhooks/{item['id']}/test", [])
    assert "«CRM»: тестовое событие не доставлено: HTTP 500: сломано" in await page.text()
    assert all(r.signed for r in receiver.at("/in")[2:])
    # Nobody listening there: the error says why.
    await api.api("PATCH", f"/api/v1/webhooks/{item['id']}",
                  {"url": "http://127.0.0.1:9/nobody"})
    answer = await (await api.api("POST", f"/api/v1/webhooks/{item['id']}/test")).json()
    assert answer["ok"] is False and answer["status"] is None
    assert answer["error"].startswith("Cannot connect to host 127.0.0.1:9")
    # Tests are not stored as deliveries.
    assert await staff.db.webhook_deliveries.list() == []
    assert (await api.api("POST", "/api/v1/webhooks/999999/test")).status == 404


async def test_deliveries_are_listed_with_their_state(staff: Site) -> None:
    api = await admin_api(staff)
    item = await (await api.api("POST", "/api/v1/webhooks", hook())).json()
    await staff.db.webhook_deliveries.add_many(
        [(item["id"], "e1", "call.ended", "{}")], now=1_000)
    listed = await (await api.get(f"/api/v1/webhooks/deliveries?webhook_id={item['id']}"
                                  "&state=pending")).json()
    assert [(d["event_id"], d["state"], d["attempts"]) for d in listed["items"]] == [
        ("e1", "pending", 0)]
    pending = await (await api.get("/api/v1/webhooks")).json()
    assert pending["items"][0]["pending"] == 1
    bad = await api.get("/api/v1/webhooks/deliveries?state=lost")
    assert bad.status == 422 and (await bad.json())["error"]["field"] == "state"

"""The client card's «SMS» tab (§5.2.7): the project's SMS template filled in from the card
and handed to the [sms] gateway — a stand-in HTTP gateway on 127.0.0.1 — by GET or POST; the
answer decides whether it went; every failure says why."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from webtools import Site

from sipspeak.storage.models import NewContact


class Gateway:
    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, str]]] = []
        self.answer = (200, '{"status": "OK"}')

    async def handle(self, request: web.Request) -> web.Response:
        fields = dict(request.query) if request.method == "GET" else {
            k: str(v) for k, v in (await request.post()).items()}
        self.got.append((request.method, fields))
        return web.Response(status=self.answer[0], text=self.answer[1])


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[Gateway, str]]:
    standin = Gateway()
    app = web.Application()
    app.router.add_route("*", "/sms/send", standin.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield standin, f"http://127.0.0.1:{server.port}/sms/send"
    await server.close()


@pytest.fixture
async def world(staff: Site, gateway: tuple[Gateway, str]) -> dict[str, Any]:
    standin, url = gateway
    db = staff.db
    staff.services.config = staff.services.config.with_overrides({
        ("sms", "url"): url + "?api_id=KEY&to={to}&msg={text}&json=1",
        ("sms", "success_text"): '"status": "OK"'})
    project = await db.projects.create(
        "Продажи", show_numbers=False,
        sms_template="{full_name}, ждём вас в офисе, {city}. & до встречи! {неизвестно} {phone}")
    group = await db.groups.create("Смена")
    await db.groups.add_members(group, [staff.users["oper@test.ru"]])
    await db.projects.set_groups(project, [group])
    await db.contacts.insert_many(project_id=project, upload_id=None, contacts=[
        NewContact(phone="+79161234567", full_name="Иван Петров", city="Оренбург")])
    [ivan] = await db.contacts.list(project_id=project)
    await staff.user("operator", "stranger@test.ru")
    return {"ivan": ivan.id, "gateway": standin}


async def test_the_template_goes_to_the_gateway_by_get_and_post(staff: Site,
                                                                world: dict[str, Any]) -> None:
    operator = await staff.signed_in("oper@test.ru")
    path = f"/api/v1/contacts/{world['ivan']}/sms"
    draft = await (await operator.get(path)).json()
    # He is not shown the project's numbers: the draft's "to" is masked, the SMS is not.
    assert draft["available"] is True and "4567" not in draft["to"]
    # His own number is the customer's to read, not the operator's: {phone} stays in the
    # draft he sees and is filled only as the SMS goes.
    assert draft["text"] == ("Иван Петров, ждём вас в офисе, Оренбург. & до встречи! "
                             "{неизвестно} {phone}")
    answer = await operator.api("POST", path, {"text": draft["text"]})
    assert answer.status == 200, await answer.text()
    staff.services.config = staff.services.config.with_overrides({("sms", "method"): "POST"})
    answer = await operator.api("POST", path, {"text": "Второе & последнее"})
    assert answer.status == 200, await answer.text()
    (get, sent), (post, posted) = world["gateway"].got
    assert get == "GET" and sent == {"api_id": "KEY", "to": "79161234567", "json": "1",
                                     "msg": draft["text"].replace("{phone}", "+79161234567")}
    assert post == "POST" and posted["msg"] == "Второе & последнее"
    assert posted["to"] == "79161234567"
    comments = [c.text for c in await staff.db.comments.list(world["ivan"])]
    assert len(comments) == 2 and all(c.startswith("Отправлено SMS на") for c in comments)
    assert all("4567" not in c for c in comments)  # the masked number, as he saw it


async def test_failures_say_why(staff: Site, world: dict[str, Any]) -> None:
    operator = await staff.signed_in("oper@test.ru")
    path = f"/api/v1/contacts/{world['ivan']}/sms"

    async def error(body: Any) -> tuple[int, str | None, str]:
        answer = await operator.api("POST", path, body)
        found = (await answer.json())["error"]
        return answer.status, found.get("field"), found["message"]

    assert (await error({"text": "  "}))[:2] == (422, "text")
    assert (await error({"text": "x" * 1001}))[0] == 422
    world["gateway"].answer = (200, '{"status": "ERROR", "status_text": "Нет денег"}')
    status, _, message = await error({"text": "Привет"})
    assert status == 502 and "Нет денег" in message and "HTTP 200" in message
    world["gateway"].answer = (500, "oops")
    assert (await error({"text": "Привет"}))[0] == 502
    staff.services.config = staff.services.config.with_overrides({
        ("sms", "url"): "http://127.0.0.1:9/send?to={to}&msg={text}"})
    status, _, message = await error({"text": "Привет"})
    assert status == 502 and message.startswith("SMS-шлюз недоступен")
    staff.services.config = staff.services.config.with_overrides({("sms", "url"): ""})
    assert (await error({"text": "Привет"}))[0] == 503
    stranger = await staff.signed_in("stranger@test.ru")
    assert (await stranger.api("POST", path, {"text": "Привет"})).status == 404
    assert await staff.db.comments.list(world["ivan"]) == []


def test_a_gateway_url_must_carry_the_number_and_the_text() -> None:
    from sipspeak.config import ConfigError, load_config

    config = load_config(environ={})
    for bad in ("ftp://x/{to}/{text}", "https://sms.example/send?to={to}", "sms.ru"):
        with pytest.raises(ConfigError):
            config.with_overrides({("sms", "url"): bad})

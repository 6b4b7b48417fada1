"""The client card service (§5.2.2, §6.1.1) over a real SQLite file: what it shows, what it
refuses and that a «Сохранить» is written whole or not at all."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from sipspeak.crm.card import CardError, CardService, local_time, mask_phone, parse_edit
from sipspeak.i18n import Text
from sipspeak.storage import Database, NotFound
from sipspeak.storage.models import NewContact, TaskRule, User

TODAY = date(2026, 11, 26)
NOON_UTC = int(datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc).timestamp() * 1000)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "card.sqlite3")
    try:
        yield database
    finally:
        await database.close()


async def world(db: Database) -> dict[str, Any]:
    """«Продажи» (groups: Смена with the operator; statuses Перезвон, Отказ; one extra card
    field) with Иван; «Опросы» with one contact; a status «Чужой» of no project."""
    oper = await db.users.create(role="operator", full_name="Оператор", email="o@t.ru",
                                 password_hash="x")
    other = await db.users.create(role="operator", full_name="Другой", email="d@t.ru",
                                  password_hash="x")
    sup = await db.users.create(role="supervisor", full_name="Сup", email="s@t.ru",
                                password_hash="x")
    sales = await db.projects.create("Продажи", supervisor_id=sup, script_html="<p>Добрый день</p>")
    polls = await db.projects.create("Опросы")
    shift = await db.groups.create("Смена")
    await db.groups.add_members(shift, [oper])
    await db.projects.set_groups(sales, [shift])
    recall = await db.statuses.create("Перезвон")
    refuse = await db.statuses.create("Отказ")
    foreign = await db.statuses.create("Чужой")
    await db.projects.set_statuses(sales, [recall, refuse])
    await db.projects.set_card_fields(sales, ["Дополнительная информация", "Сумма"])
    await db.contacts.insert_many(project_id=sales, upload_id=None, tags=["ТЕГ1"], contacts=[
        NewContact(phone="79228711345", full_name="Иванов Иван", birth_date="1991-01-01",
                   region="Оренбургская обл.", timezone="Asia/Yekaterinburg",
                   custom={"Сумма": "100"})])
    await db.contacts.insert_many(project_id=polls, upload_id=None,
                                  contacts=[NewContact(phone="79160000001")])
    ivan = (await db.contacts.list(project_id=sales))[0].id
    poll = (await db.contacts.list(project_id=polls))[0].id
    return {"oper": await db.users.get(oper), "other": other, "sup": sup, "sales": sales,
            "polls": polls, "recall": recall, "refuse": refuse, "foreign": foreign,
            "ivan": ivan, "poll": poll}


def edit(**data: Any) -> Any:
    return parse_edit(data, today=TODAY)


def refused(data: dict[str, Any]) -> CardError:
    with pytest.raises(CardError) as caught:
        parse_edit(data, today=TODAY)
    return caught.value


def test_the_shape_of_a_save_is_checked_field_by_field() -> None:
    assert refused({"email": "ivan@"}).field == "email"
    assert refused({"birth_date": "31-02-1991"}).field == "birth_date"
    assert refused({"birth_date": "01-01-2027"}).field == "birth_date"
    too_long = refused({"full_name": "Я" * 201})
    assert too_long.field == "full_name"
    assert too_long.args[0] == Text("card.error.too_long", field=Text("card.full_name"), max=200)
    assert str(too_long) == "«ФИО»: не длиннее 200 символов"
    assert refused({"city": 5}).field == "city"
    assert refused({"custom": ["x"]}).field == "custom"
    assert refused({"custom": {"Сумма": "9" * 2001}}).field == "custom:Сумма"
    assert refused({"tags": [str(i) for i in range(21)]}).field == "tags"
    assert refused({"status_id": "новый"}).field == "status_id"
    assert refused({"operator_id": True}).field == "operator_id"
    assert refused({"phone": "79990000000"}).field == "phone"
    assert refused({"robot_status": "x"}).field == "robot_status"
    ok = edit(full_name="  Иван  ", email="", birth_date="01-01-1991", tags="a, b,a",
              status_id=None, custom={"Сумма": " 5 "})
    assert ok.columns == {"full_name": "Иван", "email": None, "birth_date": "1991-01-01"}
    assert ok.tags == ("a", "b") and ok.custom == {"Сумма": "5"}
    assert ok.status_given and ok.status_id is None and not ok.operator_given


def test_local_time_and_masked_numbers() -> None:
    assert local_time("Asia/Yekaterinburg", NOON_UTC) == "17:00"
    assert local_time("Europe/Kaliningrad", NOON_UTC) == "14:00"
    assert local_time(None, NOON_UTC) is None and local_time("Mars/Base", NOON_UTC) is None
    assert mask_phone("79228711345") == "7922*****45"


async def test_the_card_shows_the_contact_with_its_project(db: Database) -> None:
    w = await world(db)
    service = CardService(db)
    await db.comments.add(contact_id=w["ivan"], user_id=w["oper"].id, text="первый")
    await db.comments.add(contact_id=w["ivan"], user_id=w["oper"].id, text="второй")
    card = await service.card(w["ivan"], visible=None, viewer=w["oper"], now_ms=NOON_UTC)
    assert card.fields["full_name"] == "Иванов Иван" and card.fields["birth_date"] == "01-01-1991"
    assert card.phone == "79228711345" and card.local_time == "17:00"
    assert card.tags == ("ТЕГ1",) and card.fields["region"] == "Оренбургская обл."
    assert [(c.name, c.value) for c in card.custom] == [
        ("Дополнительная информация", ""), ("Сумма", "100")]
    assert [s.name for s in card.statuses] == ["Отказ", "Перезвон"]
    assert [o.name for o in card.operators] == ["Оператор"]
    assert card.script_html == "<p>Добрый день</p>"
    assert [c.text for c in card.comments] == ["второй", "первый"]
    assert card.comments[0].author == "Оператор"
    # «Показывать номера» off: an operator sees the number masked, staff in full.
    await db.projects.update(w["sales"], show_numbers=False)
    masked = await service.card(w["ivan"], visible=None, viewer=w["oper"], now_ms=NOON_UTC)
    assert masked.phone == "7922*****45"
    sup = await db.users.get(w["sup"])
    assert (await service.card(w["ivan"], visible=None, viewer=sup, now_ms=0)).phone == \
        "79228711345"


async def test_someone_elses_contact_is_not_found(db: Database) -> None:
    w = await world(db)
    service = CardService(db)
    with pytest.raises(NotFound) as hidden:
        await service.card(w["poll"], visible={w["sales"]}, viewer=w["oper"], now_ms=0)
    with pytest.raises(NotFound) as missing:
        await service.card(999, visible={w["sales"]}, viewer=w["oper"], now_ms=0)
    assert str(hidden.value) == str(missing.value).replace("999", str(w["poll"]))
    with pytest.raises(NotFound):
        await service.save(w["poll"], edit(full_name="x"), visible={w["sales"]})
    assert (await db.contacts.get(w["poll"])).full_name is None


async def test_a_save_checks_choices_against_the_project(db: Database) -> None:
    w = await world(db)
    service = CardService(db)
    for data, field in (({"status_id": w["foreign"]}, "status_id"),
                        ({"operator_id": w["other"]}, "operator_id"),
                        ({"custom": {"Нет такого": "1"}}, "custom:Нет такого")):
        with pytest.raises(CardError) as caught:
            await service.save(w["ivan"], edit(**data), visible=None)
        assert caught.value.field == field
    before = await db.contacts.get(w["ivan"])
    await service.save(w["ivan"], edit(full_name="Петров Пётр", status_id=w["recall"],
                                       operator_id=w["oper"].id, tags=["VIP"],
                                       custom={"Дополнительная информация": "звонить вечером",
                                               "Сумма": ""}), visible={w["sales"]})
    after = await db.contacts.get(w["ivan"])
    assert (after.full_name, after.status_id, after.operator_id, after.tags) == (
        "Петров Пётр", w["recall"], w["oper"].id, ("VIP",))
    assert json.loads(after.custom) == {"Дополнительная информация": "звонить вечером"}
    assert after.updated_at >= before.updated_at and after.phone == before.phone


async def test_a_status_with_an_operator_task_rule_assigns_the_operator(db: Database) -> None:
    w = await world(db)
    await db.projects.update(w["sales"], operator_tasks_enabled=True)
    await db.projects.set_task_rules(w["sales"], [TaskRule(w["oper"].id, w["refuse"])])
    await CardService(db).save(w["ivan"], edit(status_id=w["refuse"]), visible=None)
    assert (await db.contacts.get(w["ivan"])).operator_id == w["oper"].id


async def test_a_save_that_fails_half_way_leaves_the_contact_as_it_was(db: Database) -> None:
    w = await world(db)
    before = await db.contacts.get(w["ivan"])
    # A status removed meanwhile: the UPDATE fails on its foreign key after the tags were
    # written in the same transaction; nothing of the save may remain.
    with pytest.raises(sqlite3.IntegrityError):
        await db.contacts.save_card(w["ivan"], changes={"full_name": "Другой", "status_id": 404},
                                    custom={"Сумма": "1"}, tags=["новый"])
    assert await db.contacts.get(w["ivan"]) == before
    assert "новый" not in await db.tags.list()
    with pytest.raises(ValueError):
        await db.contacts.save_card(w["ivan"], changes={"dial_state": "done"})
    with pytest.raises(NotFound):
        await db.contacts.save_card(404, changes={"full_name": "x"})


async def test_comments_and_tasks(db: Database) -> None:
    w = await world(db)
    service = CardService(db)
    oper: User = w["oper"]
    with pytest.raises(CardError) as empty:
        await service.add_comment(w["ivan"], "   ", visible=None, author=oper)
    assert empty.value.field == "text"
    await service.add_comment(w["ivan"], " перезвонить ", visible=None, author=oper)
    assert [c.text for c in await db.comments.list(w["ivan"])] == ["перезвонить"]
    for data, field in (({"text": "x"}, "due_at"), ({"text": "x", "due_at": 1}, "due_at"),
                        ({"text": "", "due_at": NOON_UTC}, "text"),
                        ({"text": "x", "due_at": NOON_UTC, "auto_call": "да"}, "auto_call"),
                        ({"text": "x", "due_at": NOON_UTC, "operator_id": w["other"]},
                         "operator_id")):
        with pytest.raises(CardError) as caught:
            await service.add_task(w["ivan"], data, visible=None, author=oper, now_ms=NOON_UTC)
        assert caught.value.field == field, data
    task_id = await service.add_task(
        w["ivan"], {"text": "перезвонить", "due_at": NOON_UTC + 3600_000, "auto_call": True},
        visible=None, author=oper, now_ms=NOON_UTC)
    # The row the dialer reads (TasksRepo.due_auto_calls): his, automatic, due then.
    due = await db.tasks.due_auto_calls(project_id=w["sales"], now=NOON_UTC + 3600_000,
                                        operator_ids=[oper.id])
    assert [t.id for t in due] == [task_id]
    assert not await db.tasks.due_auto_calls(project_id=w["sales"], now=NOON_UTC,
                                             operator_ids=[oper.id])
    with pytest.raises(NotFound):
        await service.complete_task(w["poll"], task_id, visible=None)
    await service.complete_task(w["ivan"], task_id, visible=None)
    card = await service.card(w["ivan"], visible=None, viewer=oper, now_ms=NOON_UTC)
    assert card.tasks[0].done_at is not None and card.tasks[0].operator_name == "Оператор"


async def test_calls_of_the_number_and_deletion(db: Database) -> None:
    w = await world(db)
    service = CardService(db)
    mine = await db.calls.open(direction="outbound", started_at=1, project_id=w["sales"],
                               contact_id=w["ivan"], contact_phone="79228711345")
    await db.calls.open(direction="inbound", started_at=2, project_id=w["polls"],
                        contact_phone="79228711345")
    calls = await service.calls(w["ivan"], visible={w["sales"]}, viewer=w["oper"])
    assert [c.id for c in calls] == [mine] and calls[0].project_name == "Продажи"
    assert len(await service.calls(w["ivan"], visible=None, viewer=w["oper"])) == 2
    await db.contacts.insert_many(project_id=w["sales"], upload_id=None,
                                  contacts=[NewContact(phone="79990000000")])
    busy = (await db.contacts.list(phone="79990000000"))[0].id
    assert await db.contacts.claim_for_dialling([busy], now=NOON_UTC) == [busy]
    result = await service.delete([w["ivan"], busy, w["poll"], 404], visible={w["sales"]})
    assert (result.deleted, result.dialing, result.skipped, result.ids) == (1, 1, 3, (w["ivan"],))
    assert {c.id for c in await db.contacts.list()} == {busy, w["poll"]}

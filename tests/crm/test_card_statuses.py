"""A deactivated status (§4.3.2) over a real SQLite file: the card no longer offers it, a card
that holds it keeps showing it, and a save that would give it to another card is refused by
name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from sipspeak.crm.card import CardError, CardService, parse_edit
from sipspeak.storage import Database
from sipspeak.storage.models import NewContact

TODAY = date(2026, 11, 26)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "statuses.sqlite3")
    try:
        yield database
    finally:
        await database.close()


async def world(db: Database) -> dict[str, Any]:
    """«Продажи» chose Перезвон and Отказ; «Опросы» chose none.  Иван (Продажи) is in
    «Отказ»; Мария (Продажи) and Олег (Опросы) have no status."""
    oper = await db.users.create(role="operator", full_name="Оператор", email="o@t.ru",
                                 password_hash="x")
    sales = await db.projects.create("Продажи")
    polls = await db.projects.create("Опросы")
    recall = await db.statuses.create("Перезвон")
    refuse = await db.statuses.create("Отказ")
    await db.projects.set_statuses(sales, [recall, refuse])
    await db.contacts.insert_many(project_id=sales, upload_id=None, contacts=[
        NewContact(phone="+79220000001", full_name="Иван"),
        NewContact(phone="+79220000002", full_name="Мария")])
    await db.contacts.insert_many(project_id=polls, upload_id=None, contacts=[
        NewContact(phone="+79220000003", full_name="Олег")])
    ivan, maria = (c.id for c in await db.contacts.list(project_id=sales))
    oleg = (await db.contacts.list(project_id=polls))[0].id
    service = CardService(db)
    await service.save(ivan, parse_edit({"status_id": refuse}, today=TODAY), visible=None)
    return {"oper": await db.users.get(oper), "recall": recall, "refuse": refuse,
            "ivan": ivan, "maria": maria, "oleg": oleg}


async def offered(db: Database, contact_id: int, viewer: Any) -> list[str]:
    card = await CardService(db).card(contact_id, visible=None, viewer=viewer, now_ms=0)
    return [s.name for s in card.statuses]


async def test_a_deactivated_status_is_no_longer_offered_but_stays_where_it_is(
        db: Database) -> None:
    w = await world(db)
    oper = w["oper"]
    assert await offered(db, w["maria"], oper) == ["Отказ", "Перезвон"]
    assert await offered(db, w["oleg"], oper) == ["Отказ", "Перезвон"]  # no choice: all active
    await db.statuses.update(w["refuse"], active=False)
    assert await offered(db, w["maria"], oper) == ["Перезвон"]
    assert await offered(db, w["oleg"], oper) == ["Перезвон"]
    # Иван holds it: his card still shows it, chosen.
    card = await CardService(db).card(w["ivan"], visible=None, viewer=oper, now_ms=0)
    assert card.status_id == w["refuse"]
    assert [s.name for s in card.statuses] == ["Отказ", "Перезвон"]
    # Active again: offered again.
    await db.statuses.update(w["refuse"], active=True)
    assert await offered(db, w["maria"], oper) == ["Отказ", "Перезвон"]


async def test_a_save_giving_a_deactivated_status_is_refused_by_name(db: Database) -> None:
    w = await world(db)
    service = CardService(db)
    await db.statuses.update(w["refuse"], active=False)
    for contact in ("maria", "oleg"):
        with pytest.raises(CardError) as caught:
            await service.save(w[contact], parse_edit(
                {"full_name": "Новое имя", "status_id": w["refuse"]}, today=TODAY),
                visible=None)
        assert caught.value.field == "status_id"
        assert "Отказ" in str(caught.value) and "деактивирован" in str(caught.value)
        # Nothing of that save was written.
        after = await db.contacts.get(w[contact])
        assert after.status_id is None and after.full_name != "Новое имя"
    # A card that holds it saves its other fields with it, and may leave it for an active one.
    await service.save(w["ivan"], parse_edit({"full_name": "Иван Петров",
                                              "status_id": w["refuse"]}, today=TODAY),
                       visible=None)
    ivan = await db.contacts.get(w["ivan"])
    assert (ivan.full_name, ivan.status_id) == ("Иван Петров", w["refuse"])
    await service.save(w["ivan"], parse_edit({"status_id": w["recall"]}, today=TODAY),
                       visible=None)
    assert (await db.contacts.get(w["ivan"])).status_id == w["recall"]
    # … but once left, it cannot come back.
    with pytest.raises(CardError):
        await service.save(w["ivan"], parse_edit({"status_id": w["refuse"]}, today=TODAY),
                           visible=None)
    # A status of no project stays refused with the project's own message.
    other = await db.statuses.create("Чужой")
    sales_only = await db.contacts.get(w["maria"])
    await db.projects.set_statuses(sales_only.project_id, [w["recall"]])
    with pytest.raises(CardError) as caught:
        await service.save(w["maria"], parse_edit({"status_id": other}, today=TODAY),
                           visible=None)
    assert "деактивирован" not in str(caught.value)

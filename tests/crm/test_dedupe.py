"""«Проверка на дубли номеров в проекте» (§5.5) over a real SQLite file: which contact stays,
where the duplicates' history goes, what is never touched, and that it is all or nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sipspeak.crm.dedupe import (
    DedupeReport,
    duplicate_groups,
    keeper,
    phone_key,
    remove_duplicates,
)
from sipspeak.storage import Database
from sipspeak.storage.models import NewContact
from sipspeak.storage.repositories.contacts import ContactHistory


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "dedupe.sqlite3")
    try:
        yield database
    finally:
        await database.close()


def test_numbers_are_compared_as_e164_and_the_richest_oldest_contact_stays() -> None:
    assert phone_key("8 (922) 871-13-45") == phone_key("79228711345") == "+79228711345"
    assert phone_key("12-345") == "12345"  # no valid number: its digits
    assert duplicate_groups([(1, "+79228711345"), (2, "89228711345"), (3, "+79220000000"),
                             (4, "7 922 871 13 45"), (5, "123"), (6, "1-2-3")]) == [
        [1, 2, 4], [5, 6]]
    old_poor = ContactHistory(1, "new", created_at=100, history=0)
    young_rich = ContactHistory(2, "called", created_at=200, history=3)
    old_rich = ContactHistory(3, "called", created_at=150, history=3)
    twin = ContactHistory(4, "called", created_at=150, history=3)
    assert keeper([old_poor, young_rich]) == young_rich
    assert keeper([old_poor, young_rich, old_rich, twin]) == old_rich
    assert keeper([twin, old_rich]) == old_rich  # at a tie the lower id


async def world(db: Database) -> dict[str, Any]:
    """«Продажи»: one number three times (the middle one has the history), one twice without
    history, one twice with one of them being dialled, an invalid value twice, a unique
    number.  «Опросы» has the first number too."""
    oper = await db.users.create(role="operator", full_name="Оператор", email="o@t.ru",
                                 password_hash="x")
    sales = await db.projects.create("Продажи")
    polls = await db.projects.create("Опросы")
    for phone, tags in (("+79220000001", ["Старая база"]), ("79220000001", []),
                        ("8 (922) 000-00-01", ["Новая база"]), ("+79220000002", []),
                        ("89220000002", []), ("+79220000003", []), ("+79220000003", []),
                        ("12345", []), ("1-2345", []), ("+79220000009", [])):
        await db.contacts.insert_many(project_id=sales, upload_id=None, tags=tags,
                                      contacts=[NewContact(phone=phone)])
    await db.contacts.insert_many(project_id=polls, upload_id=None,
                                  contacts=[NewContact(phone="+79220000001")])
    ids = [c.id for c in sorted(await db.contacts.list(project_id=sales), key=lambda c: c.id)]
    first, rich, third, two_a, two_b, busy_a, busy_b, bad_a, bad_b, unique = ids
    await db.comments.add(contact_id=rich, user_id=oper, text="клиент думает")
    await db.comments.add(contact_id=rich, user_id=oper, text="перезвонить")
    await db.calls.open(direction="outbound", started_at=1, project_id=sales, contact_id=rich,
                        contact_phone="79220000001")
    third_task = await db.tasks.add(contact_id=third, operator_id=oper, text="позвонить",
                                    due_at=10)
    third_call = await db.calls.open(direction="outbound", started_at=2, project_id=sales,
                                     contact_id=third, contact_phone="8 (922) 000-00-01")
    assert await db.contacts.claim_for_task(busy_b, now=5)
    return {"sales": sales, "polls": polls, "oper": oper, "first": first, "rich": rich,
            "third": third, "two_a": two_a, "two_b": two_b, "busy_a": busy_a,
            "busy_b": busy_b, "bad_a": bad_a, "bad_b": bad_b, "unique": unique,
            "third_task": third_task, "third_call": third_call}


async def test_duplicates_go_and_their_history_stays_with_the_contact_kept(
        db: Database) -> None:
    w = await world(db)
    report = await remove_duplicates(db, w["sales"])
    assert report == DedupeReport(removed=4, numbers=3, dialling=1)
    left = {c.id for c in await db.contacts.list(project_id=w["sales"])}
    assert left == {w["rich"], w["two_a"], w["busy_a"], w["busy_b"], w["bad_a"], w["unique"]}
    # Another project's contact with the same number is its own.
    assert len(await db.contacts.list(project_id=w["polls"])) == 1
    # The kept contact has every comment, task, call and tag of its number.
    assert sorted(c.text for c in await db.comments.list(w["rich"])) == [
        "клиент думает", "перезвонить"]
    assert [t.id for t in await db.tasks.list(contact_id=w["rich"])] == [w["third_task"]]
    assert (await db.calls.get(w["third_call"])).contact_id == w["rich"]
    assert set((await db.contacts.get(w["rich"])).tags) == {"Старая база", "Новая база"}
    # The contact being dialled and its twin are as they were.
    assert (await db.contacts.get(w["busy_b"])).dial_state == "dialing"
    # Nothing is left to find, but the number being dialled.
    assert await remove_duplicates(db, w["sales"]) == DedupeReport(0, 0, 1)
    await db.contacts.update(w["busy_b"], dial_state="called")
    assert await remove_duplicates(db, w["sales"]) == DedupeReport(1, 1, 0)


async def test_a_check_that_fails_half_way_changes_nothing(db: Database) -> None:
    w = await world(db)
    before = {c.id for c in await db.contacts.list(project_id=w["sales"])}
    real_execute = db.execute

    async def failing(sql: str, params: Any = ()) -> Any:
        if sql.startswith("DELETE FROM contacts WHERE id IN (SELECT loser"):
            raise RuntimeError("disk gone")
        return await real_execute(sql, params)

    db.execute = failing  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await remove_duplicates(db, w["sales"])
    db.execute = real_execute  # type: ignore[method-assign]
    assert {c.id for c in await db.contacts.list(project_id=w["sales"])} == before
    # The history moved before the failure went back with it.
    assert [t.id for t in await db.tasks.list(contact_id=w["third"])] == [w["third_task"]]
    assert (await db.calls.get(w["third_call"])).contact_id == w["third"]
    assert (await db.contacts.get(w["first"])).tags == ("Старая база",)
    assert await remove_duplicates(db, w["sales"]) == DedupeReport(4, 3, 1)

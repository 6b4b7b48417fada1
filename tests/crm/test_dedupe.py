"""«Проверка на дубли номеров в проекте» (§5.5) over a real SQLite file: which contact stays,
where the duplicates' history goes, which contacts are in use and never touched, and that
every number is merged whole or not at all, batch by batch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sipspeak.crm.dedupe import DedupeReport, InUse, remove_duplicates
from sipspeak.storage import Database
from sipspeak.storage.models import NewContact


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "dedupe.sqlite3")
    try:
        yield database
    finally:
        await database.close()


async def add(db: Database, project: int, phone: str, tags: list[str] | None = None) -> int:
    """One contact as the import stores it (its number in E.164)."""
    await db.contacts.insert_many(project_id=project, upload_id=None, tags=tags or [],
                                  contacts=[NewContact(phone=phone)])
    found = await db.fetchone("SELECT MAX(id) AS id FROM contacts")
    assert found is not None
    return int(found["id"])


async def world(db: Database) -> dict[str, Any]:
    """«Продажи»: one number three times (the middle one has the history), one twice without
    history, one twice with one of them being dialled, a unique number.  «Опросы» has the
    first number too."""
    oper = await db.users.create(role="operator", full_name="Оператор", email="o@t.ru",
                                 password_hash="x")
    sales = await db.projects.create("Продажи")
    polls = await db.projects.create("Опросы")
    first = await add(db, sales, "+79220000001", ["Старая база"])
    rich = await add(db, sales, "+79220000001")
    third = await add(db, sales, "+79220000001", ["Новая база"])
    two_a = await add(db, sales, "+79220000002")
    two_b = await add(db, sales, "+79220000002")
    busy_a = await add(db, sales, "+79220000003")
    busy_b = await add(db, sales, "+79220000003")
    unique = await add(db, sales, "+79220000009")
    await add(db, polls, "+79220000001")
    await db.comments.add(contact_id=rich, user_id=oper, text="клиент думает")
    await db.comments.add(contact_id=rich, user_id=oper, text="перезвонить")
    rich_call = await db.calls.open(direction="outbound", started_at=1, project_id=sales,
                                    contact_id=rich, contact_phone="+79220000001")
    await db.calls.update(rich_call, ended_at=5)
    third_task = await db.tasks.add(contact_id=third, operator_id=oper, text="позвонить",
                                    due_at=10)
    third_call = await db.calls.open(direction="outbound", started_at=2, project_id=sales,
                                     contact_id=third, contact_phone="+79220000001")
    await db.calls.update(third_call, ended_at=3)
    assert await db.contacts.claim_for_task(busy_b, now=5)
    return {"sales": sales, "polls": polls, "oper": oper, "first": first, "rich": rich,
            "third": third, "two_a": two_a, "two_b": two_b, "busy_a": busy_a,
            "busy_b": busy_b, "unique": unique, "third_task": third_task,
            "third_call": third_call}


async def test_duplicates_go_and_their_history_stays_with_the_contact_kept(
        db: Database) -> None:
    w = await world(db)
    report = await remove_duplicates(db, w["sales"])
    assert report == DedupeReport(removed=3, numbers=2, dialling=1)
    left = {c.id for c in await db.contacts.list(project_id=w["sales"])}
    assert left == {w["rich"], w["two_a"], w["busy_a"], w["busy_b"], w["unique"]}
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


async def test_the_richest_then_the_oldest_contact_stays(db: Database) -> None:
    project = await db.projects.create("Продажи")
    old_poor = await add(db, project, "+79220000001")
    young_rich = await add(db, project, "+79220000001")
    await db.tasks.add(contact_id=young_rich, operator_id=None, text="", due_at=1)
    tie_low = await add(db, project, "+79220000002")
    tie_high = await add(db, project, "+79220000002")
    await db.execute("UPDATE contacts SET created_at = 100 WHERE id IN (?, ?)",
                     (tie_low, tie_high))
    younger = await add(db, project, "+79220000003")
    older = await add(db, project, "+79220000003")  # the higher id, but created first
    await db.execute("UPDATE contacts SET created_at = CASE id WHEN ? THEN 50 ELSE 60 END"
                     " WHERE id IN (?, ?)", (older, older, younger))
    assert await remove_duplicates(db, project) == DedupeReport(3, 3, 0)
    assert {c.id for c in await db.contacts.list(project_id=project)} == {
        young_rich, tie_low, older}
    assert old_poor not in {c.id for c in await db.contacts.list(project_id=project)}


async def test_a_contact_in_a_call_or_on_an_operators_card_is_never_deleted(
        db: Database) -> None:
    """A call in progress (its row not ended: an inbound caller is never 'dialing'), a call
    the call service holds before its row is written, and the card of an operator's latest
    call while he is in wrap-up «В карточке»: each keeps its number as it is."""
    project = await db.projects.create("Продажи")
    wrapping = await db.users.create(role="operator", full_name="В карточке", email="w@t.ru",
                                     password_hash="x")
    free = await db.users.create(role="operator", full_name="Свободен", email="f@t.ru",
                                 password_hash="x")
    ids: dict[str, tuple[int, int]] = {}
    for n, name in enumerate(("inbound", "held", "card", "earlier", "free", "plain"), 1):
        # The number's first contact is the one in use; both were called already.
        ids[name] = (await add(db, project, f"+7922000000{n}"),
                     await add(db, project, f"+7922000000{n}"))
        await db.execute("UPDATE contacts SET dial_state = 'called' WHERE id IN (?, ?)",
                         ids[name])
    # An inbound call to the first contact: in progress, no end yet.
    await db.calls.open(direction="inbound", kind="inbound", started_at=10, project_id=project,
                        contact_id=ids["inbound"][0], contact_phone="+79220000001")
    # The wrapping operator talked to «earlier» first, then to «card»; both calls ended.
    for name, started in (("earlier", 20), ("card", 30)):
        call = await db.calls.open(direction="outbound", started_at=started, project_id=project,
                                   contact_id=ids[name][0], operator_id=wrapping,
                                   contact_phone="+7922")
        await db.calls.update(call, ended_at=started + 5)
    # The free operator's last call ended too, and he is not in wrap-up.
    call = await db.calls.open(direction="outbound", started_at=40, project_id=project,
                               contact_id=ids["free"][0], operator_id=free,
                               contact_phone="+7922")
    await db.calls.update(call, ended_at=45)
    seen = InUse(contacts=frozenset({ids["held"][0]}), wrap_up_operators=frozenset({wrapping}))

    report = await remove_duplicates(db, project, in_use=lambda: seen)
    assert report == DedupeReport(removed=3, numbers=3, dialling=3)
    left = {c.id for c in await db.contacts.list(project_id=project)}
    for name in ("inbound", "held", "card"):
        assert set(ids[name]) <= left, name
    for name in ("earlier", "free", "plain"):
        assert len(set(ids[name]) & left) == 1, name
    # The call ends and the operator saves the card: now they go.
    await db.execute("UPDATE calls SET ended_at = 15 WHERE contact_id = ?", (ids["inbound"][0],))
    assert await remove_duplicates(db, project) == DedupeReport(3, 3, 0)
    assert await db.contacts.count(project_id=project) == 6


async def test_numbers_go_in_batches_and_a_failed_batch_leaves_its_numbers_whole(
        db: Database) -> None:
    """With batches of 4 contacts, numbers 1–2, then 3 (three contacts), then 4–5 are merged
    each in a transaction of its own; one failing leaves its numbers untouched, the batches
    before it done, and the check can simply be run again."""
    project = await db.projects.create("Продажи")
    counts = {1: 2, 2: 2, 3: 3, 4: 2, 5: 2}
    ids = {n: [await add(db, project, f"+7922000000{n}") for _ in range(k)]
           for n, k in counts.items()}
    comment_of_4 = await db.comments.add(contact_id=ids[4][1], user_id=None, text="важно")
    # A real failure of the database in the third batch, on the deletion of number 5's
    # duplicate (number 4's history has moved by then, in the same transaction).
    await db.execute(
        "CREATE TEMP TRIGGER fail_delete BEFORE DELETE ON main.contacts"
        f" WHEN OLD.id = {ids[5][1]} BEGIN SELECT RAISE(ABORT, 'disk gone'); END")
    with pytest.raises(Exception, match="disk gone"):
        await remove_duplicates(db, project, batch_contacts=4)
    left = {c.id for c in await db.contacts.list(project_id=project)}
    assert left == {ids[1][0], ids[2][0], ids[3][0], *ids[4], *ids[5]}
    # Number 4's comment moved back with the batch that failed.
    assert [c.id for c in await db.comments.list(ids[4][1])] == [comment_of_4]
    await db.execute("DROP TRIGGER temp.fail_delete")
    assert await remove_duplicates(db, project, batch_contacts=4) == DedupeReport(2, 2, 0)
    assert [c.id for c in await db.comments.list(ids[4][1])] == [comment_of_4]
    assert await db.contacts.count(project_id=project) == 5


async def test_other_writers_get_their_turn_between_batches(db: Database) -> None:
    """A call that starts while a large base is checked is written after the batch in
    progress, not after the whole check; the later batches see it in progress."""
    project = await db.projects.create("Продажи")
    ids = {n: [await add(db, project, f"+7922000000{n}") for _ in range(2)]
           for n in range(1, 4)}
    first_batch = asyncio.Event()
    asked: list[int] = []

    def in_use() -> InUse:
        asked.append(len(asked))
        first_batch.set()
        return InUse()

    async def a_call_starts() -> None:
        await first_batch.wait()
        await db.calls.open(direction="inbound", kind="inbound", started_at=1,
                            project_id=project, contact_id=ids[3][1],
                            contact_phone="+79220000003")

    writer = asyncio.create_task(a_call_starts())
    report = await remove_duplicates(db, project, in_use=in_use, batch_contacts=2)
    await writer
    assert asked == [0, 1, 2]  # asked in every batch's transaction
    assert report == DedupeReport(removed=2, numbers=2, dialling=1)
    assert {c.id for c in await db.contacts.list(project_id=project)} >= set(ids[3])

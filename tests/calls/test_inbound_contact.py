"""The contact of an inbound caller: found in the project's base, created when new; the
contact of a number an operator dials from his desk phone."""

from __future__ import annotations

from pathlib import Path

from sipspeak.calls.contacts import inbound_contact, manual_call_contact
from sipspeak.storage import Database
from sipspeak.storage.models import NewContact


async def test_a_known_caller_is_found_a_new_one_created_once(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "c.db")
    try:
        sales = await db.projects.create("Продажи")
        other = await db.projects.create("Опросы")
        await db.contacts.insert_many(project_id=sales, upload_id=None, contacts=[
            NewContact(phone="+79161234567", full_name="Иван")])
        known = (await db.contacts.list(project_id=sales))[0]
        # Dialled as 8-916…, as +7 916… or as 7916…: the same contact of the project.
        for caller in ("89161234567", "+7 (916) 123-45-67", "79161234567"):
            assert await inbound_contact(db, sales, caller) == known.id
        assert (await db.contacts.get(known.id)).dial_state == "new"  # untouched
        # The same number in another project is another project's contact: created there.
        created = await inbound_contact(db, other, "79161234567")
        assert created is not None and created != known.id
        row = await db.contacts.get(created)
        assert (row.project_id, row.phone, row.dial_state) == (other, "+79161234567", "called")
        assert await inbound_contact(db, other, "79161234567") == created
        assert await db.contacts.count(project_id=other) == 1
        # No usable number, no contact (and nothing written).
        for caller in ("anonymous", "", "101x"):
            assert await inbound_contact(db, sales, caller) is None
        assert await db.contacts.count(project_id=sales) == 1
    finally:
        await db.close()


async def test_a_number_dialled_by_hand_finds_its_contact_in_the_operator_s_projects(
        tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "c.db")
    try:
        sales = await db.projects.create("Продажи")
        polls = await db.projects.create("Опросы")
        elsewhere = await db.projects.create("Чужой")
        operator = await db.users.create(role="operator", full_name="Оператор",
                                         email="op@x.test", password_hash="x")
        group = await db.groups.create("Смена")
        await db.groups.add_members(group, [operator])
        for project in (sales, polls):
            await db.projects.set_groups(project, [group])
        await db.contacts.insert_many(project_id=polls, upload_id=None,
                                      contacts=[NewContact(phone="+79161234567")])
        await db.contacts.insert_many(project_id=elsewhere, upload_id=None,
                                      contacts=[NewContact(phone="+79035550000")])
        known = (await db.contacts.list(project_id=polls))[0]
        assert await manual_call_contact(db, operator, "8 916 123-45-67") == (polls, known.id)
        # A number of a project he does not work in, or of none: two projects to choose
        # from, so no contact is made up.
        assert await manual_call_contact(db, operator, "79035550000") is None
        assert await manual_call_contact(db, operator, "79990001122") is None
        assert await manual_call_contact(db, operator, "101") is None
        assert await db.contacts.count(project_id=sales) == 0
        # In one project only: a new number becomes that project's contact, as called.
        await db.projects.delete(polls)
        linked = await manual_call_contact(db, operator, "79990001122")
        assert linked is not None and linked[0] == sales
        row = await db.contacts.get(linked[1])
        assert (row.project_id, row.phone, row.dial_state) == (sales, "+79990001122", "called")
    finally:
        await db.close()

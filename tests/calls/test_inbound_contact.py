"""The contact of an inbound caller: found in the project's base, created when new."""

from __future__ import annotations

from pathlib import Path

from sipspeak.calls.contacts import inbound_contact
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

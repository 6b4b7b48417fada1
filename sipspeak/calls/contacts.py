"""Whose call is it: the project's contact of an inbound caller, created when he is new, and
the contact an operator dials by hand from his desk phone.

An inbound call pops up the caller's client card like a dialled one, so it needs his contact:
the project's contact with the caller's number (E.164, as the base stores them), or, for a
number the base does not have, a new contact enriched with region, time zone and carrier —
marked as called, so the project's dialling does not ring back someone who just called.  A
caller without a usable number (anonymous, an extension) has no contact.
"""

from __future__ import annotations

import asyncio
import logging
from functools import lru_cache

from sipspeak.crm.enrichment import Enricher, default_enricher
from sipspeak.crm.phones import InvalidPhoneError, normalize_phone
from sipspeak.storage import Database, StorageError
from sipspeak.storage.models import NewContact

__all__ = ["inbound_contact", "manual_call_contact"]

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _enricher() -> Enricher:
    return default_enricher()


async def inbound_contact(db: Database, project_id: int, caller: str) -> int | None:
    """The id of the project's contact for ``caller``; None when the number is unusable or
    storage fails (the call goes on without a card)."""
    try:
        phone = normalize_phone(caller)
    except InvalidPhoneError:
        return None
    try:
        found = await db.contacts.find_in_project(project_id, phone)
        if found is not None:
            return found
        info = (await asyncio.to_thread(_enricher)).info(phone)
        # Stored as called in the one statement: no dialling tick sees him as new meanwhile.
        return await db.contacts.add_caller(project_id=project_id, contact=NewContact(
            phone=phone, region=info.region, timezone=info.timezone, carrier=info.carrier))
    except StorageError as exc:
        log.warning("no contact for the caller %s in project %s: %s", phone, project_id, exc)
        return None


async def manual_call_contact(db: Database, operator_id: int,
                              dialled: str) -> tuple[int, int] | None:
    """``(project id, contact id)`` of a number an operator dialled from his desk phone: the
    latest contact with that number in his projects; for a number none of them has, a new
    contact (stored as called) when he works in exactly one project. ``None``: the call goes
    out without a project or a card (an unusable number, or several projects to choose from).
    """
    try:
        phone = normalize_phone(dialled)
    except InvalidPhoneError:
        return None
    try:
        projects = await db.projects.ids_of_operator(operator_id)
        found = await db.contacts.find_in_projects(projects, phone)
        if found is not None:
            contact_id, project_id = found
            return project_id, contact_id
        if len(projects) != 1:
            return None
        created = await inbound_contact(db, projects[0], phone)
        return None if created is None else (projects[0], created)
    except StorageError as exc:
        log.warning("no contact for %s dialled by operator %s: %s", phone, operator_id, exc)
        return None

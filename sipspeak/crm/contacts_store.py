"""The import target backed by SipSpeak's database.

Batches are committed one by one under an upload marked 'importing'; the import either
completes the upload or removes it with every contact it wrote, so no half-import remains,
and a process stopped mid-import has the unfinished upload removed at its next start.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import date
from pathlib import Path

from sipspeak.crm.contact_rows import ContactRecord
from sipspeak.crm.contacts_import import (
    ImportOptions,
    ImportProgress,
    ImportResult,
    import_contacts,
)
from sipspeak.storage import Database


class _DatabaseSession:
    def __init__(self, db: Database, project_id: int, created_by: int | None) -> None:
        self._db = db
        self._project_id = project_id
        self._created_by = created_by

    upload_id: int | None = None

    async def create_upload(self, *, filename: str, tags: Sequence[str]) -> int:
        self.upload_id = await self._db.uploads.create(
            project_id=self._project_id,
            filename=filename,
            tags=list(tags),
            created_by=self._created_by,
            importing=True,
        )
        return self.upload_id

    async def insert_contacts(
        self, *, upload_id: int, contacts: Sequence[ContactRecord], tags: Sequence[str]
    ) -> int:
        return await self._db.contacts.insert_many(
            project_id=self._project_id,
            upload_id=upload_id,
            contacts=contacts,
            tags=tags,
        )

    async def finish(self, result: ImportResult) -> None:
        await self._db.uploads.set_counts(
            result.upload_id,
            total=result.rows,
            accepted=result.accepted,
            rejected=result.rejected_count,
        )


class ProjectImportTarget:
    """Imports into ``project_id`` of ``db``; uploads are credited to ``created_by``."""

    def __init__(
        self, db: Database, project_id: int, *, created_by: int | None = None
    ) -> None:
        self._db = db
        self._project_id = project_id
        self._created_by = created_by

    async def existing_phones(self) -> set[str]:
        return await self._db.contacts.existing_phones(self._project_id)

    async def blacklisted_phones(self) -> set[str]:
        return await self._db.blacklist.phones()

    def session(self) -> AbstractAsyncContextManager[_DatabaseSession]:
        return self._session()

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[_DatabaseSession]:
        # Each batch commits on its own, so other writers (calls, agents, the UI) are never
        # kept waiting for a whole import. The upload stays 'importing' until ``finish``:
        # the dialer skips its contacts meanwhile, and a failure removes them all.
        session = _DatabaseSession(self._db, self._project_id, self._created_by)
        try:
            yield session
        except BaseException:
            if session.upload_id is not None:
                await asyncio.shield(self._db.uploads.remove_with_contacts(session.upload_id))
            raise


async def import_into_project(
    db: Database,
    project_id: int,
    path: Path,
    *,
    options: ImportOptions | None = None,
    filename: str | None = None,
    created_by: int | None = None,
    progress: Callable[[ImportProgress], None] | None = None,
    today: date | None = None,
) -> ImportResult:
    """Import a contact file into a project of the database (see :func:`import_contacts`)."""
    return await import_contacts(
        path,
        ProjectImportTarget(db, project_id, created_by=created_by),
        options=options,
        filename=filename,
        progress=progress,
        today=today,
    )

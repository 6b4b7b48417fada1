"""SQLite storage (aiosqlite, WAL): migrations and repositories. The only place with SQL.

    db = await Database.open(path)        # creates the file, applies migrations
    async with db.transaction():          # all-or-nothing
        upload_id = await db.uploads.create(project_id=1, filename="base.xlsx", tags=["T1"])
        await db.contacts.insert_many(project_id=1, upload_id=upload_id, contacts=[...])
    await db.close()
"""

from .db import Database, now_ms
from .errors import Conflict, NotFound, StorageError

__all__ = ["Conflict", "Database", "NotFound", "StorageError", "now_ms"]

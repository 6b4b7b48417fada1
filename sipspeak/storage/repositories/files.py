"""File manager: folders (a tree) and files stored under opaque names."""

from __future__ import annotations

import builtins

from ...i18n import Text
from ..db import now_ms
from ..errors import NotFound
from ..models import Folder, StoredFile
from .base import Repo, record, unique_as_conflict

_NAME_TAKEN = {"UNIQUE": ("name", Text("storage.error.name_taken_in_folder"))}


def check_name(name: str) -> str:
    """A file or folder name: no path separators, no dot names, no control characters."""
    cleaned = name.strip()
    if not cleaned or cleaned in (".", "..") or len(cleaned) > 255:
        raise ValueError(Text("storage.error.bad_name"))
    if any(c in cleaned for c in "/\\\x00") or any(ord(c) < 32 for c in cleaned):
        raise ValueError(Text("storage.error.name_chars"))
    return cleaned


class FilesRepo(Repo):
    async def create_folder(self, name: str, *, parent_id: int | None = None,
                            created_by: int | None = None) -> int:
        name = check_name(name)
        if parent_id is not None:
            await self.folder(parent_id)
        with unique_as_conflict(_NAME_TAKEN):
            return await self.db.insert(
                "INSERT INTO folders(parent_id, name, created_by, created_at) VALUES (?,?,?,?)",
                (parent_id, name, created_by, now_ms()))

    async def folder(self, folder_id: int) -> Folder:
        row = await self.db.fetchone("SELECT * FROM folders WHERE id = ?", (folder_id,))
        if row is None:
            raise NotFound(Text("storage.error.folder_not_found", id=folder_id))
        return record(Folder, row)

    async def folders(self) -> builtins.list[Folder]:
        rows = await self.db.fetchall("SELECT * FROM folders ORDER BY parent_id, name")
        return [record(Folder, r) for r in rows]

    async def rename_folder(self, folder_id: int, name: str) -> None:
        name = check_name(name)
        with unique_as_conflict(_NAME_TAKEN):
            cursor = await self.db.execute("UPDATE folders SET name = ? WHERE id = ?", (name, folder_id))
        if cursor.rowcount == 0:
            raise NotFound(Text("storage.error.folder_not_found", id=folder_id))

    async def delete_folder(self, folder_id: int) -> builtins.list[str]:
        """Delete a folder with everything below it; returns stored names to unlink."""
        async with self.db.transaction():
            rows = await self.db.fetchall(
                "WITH RECURSIVE sub(id) AS (SELECT ? UNION ALL"
                " SELECT f.id FROM folders f JOIN sub ON f.parent_id = sub.id)"
                " SELECT stored_name FROM files WHERE folder_id IN (SELECT id FROM sub)",
                (folder_id,))
            cursor = await self.db.execute("DELETE FROM folders WHERE id = ?", (folder_id,))
            if cursor.rowcount == 0:
                raise NotFound(Text("storage.error.folder_not_found", id=folder_id))
            return [r["stored_name"] for r in rows]

    async def add_file(self, *, name: str, stored_name: str, size: int,
                       folder_id: int | None = None, created_by: int | None = None) -> int:
        name = check_name(name)
        with unique_as_conflict(_NAME_TAKEN):
            return await self.db.insert(
                "INSERT INTO files(folder_id, name, stored_name, size, created_by, created_at)"
                " VALUES (?,?,?,?,?,?)", (folder_id, name, stored_name, size, created_by, now_ms()))

    async def file(self, file_id: int) -> StoredFile:
        row = await self.db.fetchone("SELECT * FROM files WHERE id = ?", (file_id,))
        if row is None:
            raise NotFound(Text("storage.error.file_not_found", id=file_id))
        return record(StoredFile, row)

    async def sound_files(self) -> builtins.list[StoredFile]:
        """Every WAV of the file manager (by its name), for the settings that play one."""
        rows = await self.db.fetchall(
            "SELECT * FROM files WHERE lower(name) LIKE '%.wav' ORDER BY name COLLATE NOCASE")
        return [record(StoredFile, r) for r in rows]

    async def files_in(self, folder_id: int | None) -> builtins.list[StoredFile]:
        if folder_id is None:
            rows = await self.db.fetchall("SELECT * FROM files WHERE folder_id IS NULL ORDER BY name")
        else:
            rows = await self.db.fetchall(
                "SELECT * FROM files WHERE folder_id = ? ORDER BY name", (folder_id,))
        return [record(StoredFile, r) for r in rows]

    async def rename_file(self, file_id: int, name: str) -> None:
        name = check_name(name)
        with unique_as_conflict(_NAME_TAKEN):
            cursor = await self.db.execute("UPDATE files SET name = ? WHERE id = ?", (name, file_id))
        if cursor.rowcount == 0:
            raise NotFound(Text("storage.error.file_not_found", id=file_id))

    async def delete_file(self, file_id: int) -> str:
        async with self.db.transaction():
            stored = (await self.file(file_id)).stored_name
            await self.db.execute("DELETE FROM files WHERE id = ?", (file_id,))
            return stored

    async def total_size(self) -> int:
        row = await self.db.fetchone("SELECT COALESCE(SUM(size), 0) AS s FROM files")
        return int(row["s"]) if row else 0

"""Users, groups, API tokens and web sessions."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence

from ...i18n import Text
from ..db import now_ms
from ..errors import Conflict, NotFound
from ..models import ROLES, ApiToken, Group, Role, User, WebSession
from .base import Repo, record, unique_as_conflict

_USER_UNIQUE = {
    "users.email": ("email", Text("storage.error.email_taken")),
    "users.extension": ("extension", Text("storage.error.extension_taken")),
}
_GROUP_TAKEN = Text("storage.error.group_taken")
_USER_FIELDS = ("role", "full_name", "email", "phone", "password_hash", "extension",
                "sip_password", "trunk_id", "language")


class UsersRepo(Repo):
    async def create(self, *, role: Role, full_name: str, email: str, password_hash: str,
                     phone: str = "", extension: str | None = None,
                     sip_password: str | None = None, trunk_id: int | None = None,
                     language: str = "ru") -> int:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        now = now_ms()
        with unique_as_conflict(_USER_UNIQUE):
            return await self.db.insert(
                "INSERT INTO users(role, full_name, email, phone, password_hash, extension,"
                " sip_password, trunk_id, language, created_at, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (role, full_name, email.strip(), phone, password_hash, extension or None,
                 sip_password, trunk_id, language, now, now),
            )

    async def get(self, user_id: int, *, include_deleted: bool = False) -> User:
        row = await self.db.fetchone("SELECT * FROM users WHERE id = ?", (user_id,))
        if row is None or (row["deleted_at"] is not None and not include_deleted):
            raise NotFound(Text("storage.error.user_not_found", id=user_id))
        return record(User, row)

    async def by_email(self, email: str) -> User | None:
        row = await self.db.fetchone(
            "SELECT * FROM users WHERE email = ? AND deleted_at IS NULL", (email.strip(),))
        return record(User, row) if row else None

    async def by_extension(self, extension: str) -> User | None:
        row = await self.db.fetchone(
            "SELECT * FROM users WHERE extension = ? AND deleted_at IS NULL", (extension,))
        return record(User, row) if row else None

    async def count(self) -> int:
        row = await self.db.fetchone("SELECT COUNT(*) AS n FROM users WHERE deleted_at IS NULL")
        return int(row["n"]) if row else 0

    async def list(self, *, role: Role | None = None, search: str = "",
                   include_deleted: bool = False) -> builtins.list[User]:
        sql = "SELECT * FROM users WHERE 1=1"
        params: builtins.list[object] = []
        if not include_deleted:
            sql += " AND deleted_at IS NULL"
        if role:
            sql += " AND role = ?"
            params.append(role)
        if search:
            sql += " AND (full_name LIKE ? OR email LIKE ? OR extension LIKE ? OR phone LIKE ?)"
            like = f"%{search}%"
            params += [like, like, like, like]
        sql += " ORDER BY full_name COLLATE NOCASE, id"
        return [record(User, row) for row in await self.db.fetchall(sql, params)]

    async def update(self, user_id: int, **changes: object) -> None:
        unknown = set(changes) - set(_USER_FIELDS)
        if unknown:
            raise ValueError(f"unknown user fields: {', '.join(sorted(unknown))}")
        if "role" in changes and changes["role"] not in ROLES:
            raise ValueError(f"unknown role {changes['role']!r}")
        if not changes:
            return
        assignments = ", ".join(f"{name} = ?" for name in changes)
        with unique_as_conflict(_USER_UNIQUE):
            cursor = await self.db.execute(
                f"UPDATE users SET {assignments}, updated_at = ? WHERE id = ? AND deleted_at IS NULL",
                (*changes.values(), now_ms(), user_id),
            )
        if cursor.rowcount == 0:
            raise NotFound(Text("storage.error.user_not_found", id=user_id))

    async def soft_delete(self, user_id: int) -> None:
        async with self.db.transaction():
            cursor = await self.db.execute(
                "UPDATE users SET deleted_at = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL",
                (now_ms(), now_ms(), user_id))
            if cursor.rowcount == 0:
                raise NotFound(Text("storage.error.user_not_found", id=user_id))
            await self.db.execute("DELETE FROM web_sessions WHERE user_id = ?", (user_id,))
            await self.db.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
                (now_ms(), user_id))

    async def groups_of(self, user_id: int) -> builtins.list[Group]:
        rows = await self.db.fetchall(
            "SELECT g.* FROM groups g JOIN group_members m ON m.group_id = g.id"
            " WHERE m.user_id = ? ORDER BY g.name", (user_id,))
        return [record(Group, row) for row in rows]


class GroupsRepo(Repo):
    async def create(self, name: str) -> int:
        name = name.strip()
        if not name:
            raise ValueError(Text("people.error.group_name_empty"))
        async with self.db.transaction():
            await self.ensure_name_free("groups", name, message=_GROUP_TAKEN)
            return await self.db.insert(
                "INSERT INTO groups(name, created_at) VALUES (?, ?)", (name, now_ms()))

    async def get(self, group_id: int) -> Group:
        row = await self.db.fetchone("SELECT * FROM groups WHERE id = ?", (group_id,))
        if row is None:
            raise NotFound(Text("storage.error.group_not_found", id=group_id))
        return record(Group, row, member_ids=tuple(await self.member_ids(group_id)))

    async def list(self) -> builtins.list[Group]:
        rows = await self.db.fetchall("SELECT * FROM groups ORDER BY name COLLATE NOCASE")
        members = await self.db.fetchall(
            "SELECT m.group_id, m.user_id FROM group_members m JOIN users u ON u.id = m.user_id"
            " WHERE u.deleted_at IS NULL ORDER BY m.position, m.user_id")
        by_group: dict[int, list[int]] = {}
        for m in members:
            by_group.setdefault(m["group_id"], []).append(m["user_id"])
        return [record(Group, r, member_ids=tuple(by_group.get(r["id"], ()))) for r in rows]

    async def rename(self, group_id: int, name: str) -> None:
        name = name.strip()
        if not name:
            raise ValueError(Text("people.error.group_name_empty"))
        async with self.db.transaction():
            await self.ensure_name_free("groups", name, message=_GROUP_TAKEN, exclude_id=group_id)
            cursor = await self.db.execute("UPDATE groups SET name = ? WHERE id = ?", (name, group_id))
        if cursor.rowcount == 0:
            raise NotFound(Text("storage.error.group_not_found", id=group_id))

    async def delete(self, group_id: int) -> None:
        cursor = await self.db.execute("DELETE FROM groups WHERE id = ?", (group_id,))
        if cursor.rowcount == 0:
            raise NotFound(Text("storage.error.group_not_found", id=group_id))

    async def member_ids(self, group_id: int) -> builtins.list[int]:
        rows = await self.db.fetchall(
            "SELECT m.user_id FROM group_members m JOIN users u ON u.id = m.user_id"
            " WHERE m.group_id = ? AND u.deleted_at IS NULL ORDER BY m.position, m.user_id",
            (group_id,))
        return [row["user_id"] for row in rows]

    async def add_members(self, group_id: int, user_ids: Iterable[int]) -> None:
        async with self.db.transaction():
            await self.get(group_id)
            row = await self.db.fetchone(
                "SELECT COALESCE(MAX(position), 0) AS p FROM group_members WHERE group_id = ?",
                (group_id,))
            position = int(row["p"]) if row else 0
            for user_id in user_ids:
                position += 1
                await self.db.execute(
                    "INSERT OR IGNORE INTO group_members(group_id, user_id, position) VALUES (?,?,?)",
                    (group_id, user_id, position))

    async def remove_member(self, group_id: int, user_id: int) -> None:
        await self.db.execute(
            "DELETE FROM group_members WHERE group_id = ? AND user_id = ?", (group_id, user_id))

    async def set_member_order(self, group_id: int, user_ids: Sequence[int]) -> bool:
        """Put the group's live members in the order of ``user_ids`` (the list order of the
        «по списку» strategy), in one transaction.  False, and nothing changed, unless
        ``user_ids`` names every live member exactly once (the group changed meanwhile, or
        a wrong list); removed users keep their rows, after the live ones."""
        async with self.db.transaction():
            await self.get(group_id)
            live = await self.member_ids(group_id)
            if len(user_ids) != len(live) or set(user_ids) != set(live):
                return False
            rows = await self.db.fetchall(
                "SELECT user_id FROM group_members WHERE group_id = ? ORDER BY position, user_id",
                (group_id,))
            order = [*user_ids, *(r["user_id"] for r in rows if r["user_id"] not in live)]
            await self.db.executemany(
                "UPDATE group_members SET position = ? WHERE group_id = ? AND user_id = ?",
                [(position, group_id, user_id) for position, user_id in enumerate(order, 1)])
        return True


class TokensRepo(Repo):
    async def create(self, *, user_id: int, token_hash: str, name: str = "") -> int:
        with unique_as_conflict({"token_hash": ("token", Text("storage.error.token_taken"))}):
            return await self.db.insert(
                "INSERT INTO api_tokens(user_id, token_hash, name, created_at) VALUES (?,?,?,?)",
                (user_id, token_hash, name, now_ms()))

    async def by_hash(self, token_hash: str) -> ApiToken | None:
        row = await self.db.fetchone(
            "SELECT * FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL", (token_hash,))
        return record(ApiToken, row) if row else None

    async def list_for(self, user_id: int) -> builtins.list[ApiToken]:
        rows = await self.db.fetchall(
            "SELECT * FROM api_tokens WHERE user_id = ? ORDER BY id", (user_id,))
        return [record(ApiToken, row) for row in rows]

    async def touch(self, token_id: int) -> None:
        await self.db.execute(
            "UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (now_ms(), token_id))

    async def revoke(self, token_id: int) -> None:
        await self.db.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (now_ms(), token_id))


class WebSessionsRepo(Repo):
    async def create(self, *, id_hash: str, user_id: int, csrf_token: str, expires_at: int) -> None:
        await self.db.execute(
            "INSERT INTO web_sessions(id_hash, user_id, csrf_token, created_at, expires_at)"
            " VALUES (?,?,?,?,?)", (id_hash, user_id, csrf_token, now_ms(), expires_at))

    async def get(self, id_hash: str, *, now: int) -> WebSession | None:
        row = await self.db.fetchone(
            "SELECT * FROM web_sessions WHERE id_hash = ? AND expires_at > ?", (id_hash, now))
        return record(WebSession, row) if row else None

    async def delete(self, id_hash: str) -> None:
        await self.db.execute("DELETE FROM web_sessions WHERE id_hash = ?", (id_hash,))

    async def delete_for_user(self, user_id: int) -> int:
        """End every session of a user (after an admin sets a new password)."""
        cursor = await self.db.execute("DELETE FROM web_sessions WHERE user_id = ?", (user_id,))
        return cursor.rowcount

    async def purge_expired(self, *, now: int) -> int:
        cursor = await self.db.execute("DELETE FROM web_sessions WHERE expires_at <= ?", (now,))
        return cursor.rowcount


__all__ = ["Conflict", "GroupsRepo", "TokensRepo", "UsersRepo", "WebSessionsRepo"]

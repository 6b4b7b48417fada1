"""The SQLite database: the connection, transactions and versioned migrations.

One connection (aiosqlite runs it on its own thread) serves reads and writes; an asyncio lock
serialises write transactions. ``transaction()`` opens ``BEGIN IMMEDIATE`` and commits or
rolls back as a whole, so an import or any multi-step change is never half-written.
Repository write methods join the caller's transaction when one is open in the same task and
open their own otherwise. Reads are not isolated from another task's open transaction (they
may see its rows before it commits); a second, read-only connection was dropped because an
SQLite connection keeps its WAL snapshot while any statement on it is unfinished, and was
seen returning data older than what had just been committed.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from .errors import StorageError

log = logging.getLogger(__name__)

__all__ = ["Database", "migrations", "now_ms"]


def now_ms() -> int:
    """Wall-clock UTC time in epoch milliseconds, the unit of every stored timestamp."""
    return int(time.time() * 1000)


def migrations() -> list[tuple[int, str, str]]:
    """The shipped migrations as ``(version, name, sql)``, oldest first."""
    found: list[tuple[int, str, str]] = []
    folder = resources.files("sipspeak.storage") / "migrations"
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise StorageError(f"migrations are not numbered 1..N without gaps: {versions}")
    return found


_in_transaction: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "sipspeak_in_transaction", default=False
)


class Database:
    """Open with ``await Database.open(path)``; close with ``await db.close()``."""

    def __init__(self, path: Path, writer: aiosqlite.Connection):
        self.path = path
        self._writer = writer
        self._write_lock = asyncio.Lock()
        from . import repositories as r  # the repositories need the Database type

        self.settings = r.SettingsRepo(self)
        self.users = r.UsersRepo(self)
        self.groups = r.GroupsRepo(self)
        self.statuses = r.StatusesRepo(self)
        self.trunks = r.TrunksRepo(self)
        self.projects = r.ProjectsRepo(self)
        self.tags = r.TagsRepo(self)
        self.uploads = r.UploadsRepo(self)
        self.contacts = r.ContactsRepo(self)
        self.comments = r.CommentsRepo(self)
        self.tasks = r.TasksRepo(self)
        self.calls = r.CallsRepo(self)
        self.intervals = r.OperatorIntervalsRepo(self)
        self.blacklist = r.BlacklistRepo(self)
        self.files = r.FilesRepo(self)
        self.notifications = r.NotificationsRepo(self)
        self.tokens = r.TokensRepo(self)
        self.sessions = r.WebSessionsRepo(self)
        self.phone_bindings = r.PhoneBindingsRepo(self)
        self.crm_leads = r.CrmLeadsRepo(self)
        self.webhooks = r.WebhooksRepo(self)
        self.webhook_deliveries = r.WebhookDeliveriesRepo(self)
        self.money = r.TrunkMoneyRepo(self)
        self.robot = r.RobotRepo(self)

    @classmethod
    async def open(cls, path: str | Path, *, migrate: bool = True) -> Database:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create data directory {path.parent}: {exc.strerror}") from None
        try:
            writer = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open database {path}: {exc}") from None
        try:
            await _configure(writer)
            journal = await (await writer.execute("PRAGMA journal_mode=WAL")).fetchone()
            if journal is None or str(journal[0]).lower() != "wal":
                raise StorageError(f"database {path}: WAL mode is not available")
        except sqlite3.Error as exc:
            await writer.close()
            raise StorageError(f"cannot use database {path}: {exc}") from None
        except BaseException:
            await writer.close()
            raise
        db = cls(path, writer)
        if migrate:
            try:
                await db.migrate()
            except BaseException:
                await db.close()
                raise
        return db

    async def close(self) -> None:
        await self._writer.close()

    # -- migrations ------------------------------------------------------------------

    async def schema_version(self) -> int:
        row = await self.fetchone(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='schema_migrations'"
        )
        if row is None:
            return 0
        row = await self.fetchone("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
        return int(row["v"]) if row else 0

    async def migrate(self) -> list[int]:
        """Apply every shipped migration newer than the database, each in one transaction."""
        applied: list[int] = []
        async with self._write_lock:
            await self._writer.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
            )
            cursor = await self._writer.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            row = await cursor.fetchone()
            current = int(row[0]) if row else 0
            known = migrations()
            if current > len(known):
                raise StorageError(
                    f"database schema version {current} is newer than this SipSpeak ({len(known)})"
                )
            for version, name, sql in known:
                if version <= current:
                    continue
                try:
                    await self._writer.execute("BEGIN IMMEDIATE")
                    for statement in _split_sql(sql):
                        await self._writer.execute(statement)
                    await self._writer.execute(
                        "INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)",
                        (version, name, now_ms()),
                    )
                    await self._writer.execute("COMMIT")
                except BaseException:
                    await self._writer.execute("ROLLBACK")
                    raise
                log.info("applied migration %s", name)
                applied.append(version)
        return applied

    # -- transactions ----------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """One write transaction: everything inside commits together or not at all."""
        if _in_transaction.get():
            yield
            return
        async with self._write_lock:
            token = _in_transaction.set(True)
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            else:
                await self._writer.execute("COMMIT")
            finally:
                _in_transaction.reset(token)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Cursor:
        """Run one write statement inside the current or a new transaction."""
        async with self.transaction():
            return await self._writer.execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self.transaction():
            await self._writer.executemany(sql, rows)

    async def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        cursor = await self.execute(sql, params)
        if cursor.lastrowid is None:
            raise StorageError("insert returned no row id")
        return int(cursor.lastrowid)

    # Cursors are closed at once: a statement left un-finished keeps its read transaction
    # open, and the reader connection would go on seeing that old snapshot of the database
    # (WAL) instead of what writers committed since.
    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        async with self._writer.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        async with self._writer.execute(sql, params) as cursor:
            row: sqlite3.Row | None = await cursor.fetchone()
            return row

    async def ping(self) -> bool:
        try:
            await self.fetchone("SELECT 1")
        except sqlite3.Error:
            return False
        return True


async def _configure(conn: aiosqlite.Connection) -> None:
    conn.row_factory = sqlite3.Row
    await conn.execute("PRAGMA foreign_keys=ON")
    await conn.execute("PRAGMA busy_timeout=5000")
    await conn.execute("PRAGMA synchronous=NORMAL")


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (``sqlite3.complete_statement`` knows the grammar)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        if not buffer and line.strip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise StorageError("migration ends with an incomplete statement")
    return statements

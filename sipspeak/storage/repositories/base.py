"""Helpers shared by the repositories: row → record mapping, unique-violation mapping."""

from __future__ import annotations

import builtins
import sqlite3
import typing
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

from ...i18n import Message
from ..errors import Conflict

if TYPE_CHECKING:
    from ..db import Database

T = TypeVar("T")

_BOOL_FIELDS: dict[type, frozenset[str]] = {}


def _bool_fields(cls: type) -> frozenset[str]:
    cached = _BOOL_FIELDS.get(cls)
    if cached is None:
        hints = typing.get_type_hints(cls)
        cached = frozenset(name for name, hint in hints.items() if hint is bool)
        _BOOL_FIELDS[cls] = cached
    return cached


def record(cls: type[T], row: Mapping[str, Any] | sqlite3.Row, **extra: Any) -> T:
    """Build a dataclass record from a row; 0/1 columns become bools."""
    flags = _bool_fields(cls)
    keys = row.keys()
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type,unused-ignore]
        if f.name in extra:
            values[f.name] = extra[f.name]
        elif f.name in keys:
            value = row[f.name]
            values[f.name] = bool(value) if f.name in flags else value
    return cls(**values)


def columns(cls: type, *, exclude: tuple[str, ...] = ()) -> builtins.list[str]:
    """Column names of a record type (its dataclass fields that are stored columns)."""
    return [f.name for f in fields(cls) if f.name not in exclude]


@contextmanager
def unique_as_conflict(messages: Mapping[str, tuple[str, Message]]) -> typing.Iterator[None]:
    """Turn SQLite UNIQUE failures into :class:`Conflict` with a readable message.

    ``messages`` maps a fragment of SQLite's error text (a column or index name) to
    ``(field, message)``.
    """
    try:
        yield
    except sqlite3.IntegrityError as exc:
        text = str(exc)
        for fragment, (field, message) in messages.items():
            if fragment in text:
                raise Conflict(message, field=field) from None
        raise


class Repo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def ensure_name_free(self, table: str, name: str, *, message: Message,
                               exclude_id: int | None = None) -> None:
        """Names are unique ignoring case in any alphabet (SQLite's NOCASE folds ASCII only).

        Call inside the transaction that writes the name.
        """
        rows = await self.db.fetchall(f"SELECT id, name FROM {table}")
        folded = name.casefold()
        for row in rows:
            if row["id"] != exclude_id and str(row["name"]).casefold() == folded:
                raise Conflict(message, field="name")

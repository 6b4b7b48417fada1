"""Storage errors. Messages are one line, fit to show an admin.

A message a user may read is a catalogue :class:`~sipspeak.i18n.Text` (Russian in
``str(error)``); the web layer says it in the reader's language.
"""

from __future__ import annotations

from ..i18n import Message


class StorageError(Exception):
    """The database cannot be opened, migrated or used."""


class NotFound(StorageError):
    """The row asked for does not exist (or is removed)."""

    def __init__(self, message: Message) -> None:
        super().__init__(message)


class Conflict(StorageError):
    """A unique value is taken (e-mail, extension, name …). ``field`` names it."""

    def __init__(self, message: Message, *, field: str) -> None:
        super().__init__(message)
        self.field = field

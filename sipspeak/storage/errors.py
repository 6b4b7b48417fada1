"""Storage errors. Messages are one line, fit to show an admin."""


class StorageError(Exception):
    """The database cannot be opened, migrated or used."""


class NotFound(StorageError):
    """The row asked for does not exist (or is removed)."""


class Conflict(StorageError):
    """A unique value is taken (e-mail, extension, name …). ``field`` names it."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field

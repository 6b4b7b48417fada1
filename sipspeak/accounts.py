"""Account rules shared by the CLI, the web pages and the REST API."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .i18n import Message, Text
from .security import hash_password, new_api_token
from .storage import Database
from .storage.models import ROLES, Role

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_EXTENSION = re.compile(r"^[0-9]{2,10}$")
MIN_PASSWORD = 6


class AccountError(ValueError):
    """Input that cannot make a valid account; ``field`` names the input."""

    def __init__(self, message: Message, *, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class NewUser:
    role: str
    full_name: str
    email: str
    password: str
    phone: str = ""
    extension: str | None = None
    sip_password: str | None = None
    trunk_id: int | None = None


def validate(user: NewUser, *, password_required: bool = True) -> None:
    if user.role not in ROLES:
        raise AccountError(Text("accounts.error.role", roles=", ".join(ROLES)), field="role")
    if not user.full_name.strip():
        raise AccountError(Text("accounts.error.full_name"), field="full_name")
    if not _EMAIL.match(user.email.strip()):
        raise AccountError(Text("accounts.error.email", email=user.email), field="email")
    if (password_required or user.password) and len(user.password) < MIN_PASSWORD:
        raise AccountError(Text("accounts.error.password", min=MIN_PASSWORD), field="password")
    if user.extension is not None and user.extension != "":
        if not _EXTENSION.match(user.extension):
            raise AccountError(Text("accounts.error.extension"), field="extension")
        if not user.sip_password or len(user.sip_password) < 8:
            raise AccountError(Text("accounts.error.sip_password"), field="sip_password")


async def create_user(db: Database, user: NewUser) -> int:
    """Validate and store a user; raises AccountError or storage Conflict, writes nothing then."""
    validate(user)
    role: Role = user.role  # type: ignore[assignment]
    return await db.users.create(
        role=role, full_name=user.full_name.strip(), email=user.email.strip(),
        password_hash=hash_password(user.password), phone=user.phone.strip(),
        extension=user.extension or None, sip_password=user.sip_password or None,
        trunk_id=user.trunk_id)


async def create_token(db: Database, email: str, *, name: str = "") -> str:
    """A new API token for the user; the token is returned once and stored hashed."""
    user = await db.users.by_email(email)
    if user is None:
        raise AccountError(Text("accounts.error.no_user", email=email), field="email")
    token, digest = new_api_token()
    await db.tokens.create(user_id=user.id, token_hash=digest, name=name)
    return token

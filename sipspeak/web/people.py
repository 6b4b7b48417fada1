"""Users and groups as the admin pages and the API manage them, with the supervisor's scope.

The manual (§1.3) gives the supervisor "управление пользователями / группами" within his
projects.  The rule implemented here:

* a supervisor's **groups** are the groups attached to the projects he supervises
  (``projects.supervisor_id``); he sees and renames them, adds and removes their members, and
  may create a group only for one of his projects (it is attached to it at once);
  deleting a group is for the admin;
* a supervisor's **users** are the members of his groups, plus himself;
* he may create, edit and remove **operators** only, and only within his groups: a new
  operator must be put into at least one of them; he can neither grant nor change a role;
* to staff his groups he may pick any live operator (an operator can be in several groups).

An admin may do everything; an operator manages nobody.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..accounts import NewUser, validate
from ..i18n import Text, message_of
from ..security import hash_password
from ..storage import NotFound
from ..storage.models import ROLES, Group, Role, User
from .errors import Forbidden, Invalid

if TYPE_CHECKING:
    from ..app import Services

_PHONE = re.compile(r"^[0-9+()\- .]*$")
MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class UserChanges:
    """Fields to change; None = keep.  An empty password keeps the old one."""

    role: str | None = None
    full_name: str | None = None
    email: str | None = None
    phone: str | None = None
    password: str | None = None
    extension: str | None = None
    sip_password: str | None = None
    trunk_id: int | None = None
    clear_trunk: bool = False
    language: str | None = None


def user_json(user: User, *, group_ids: Iterable[int] = ()) -> dict[str, object]:
    """A user as the API shows it: never the password hash nor the SIP password."""
    return {
        "id": user.id, "role": user.role, "full_name": user.full_name, "email": user.email,
        "phone": user.phone, "extension": user.extension, "trunk_id": user.trunk_id,
        "has_sip_password": bool(user.sip_password), "language": user.language,
        "created_at": user.created_at, "deleted_at": user.deleted_at,
        "group_ids": sorted(group_ids),
    }


def group_json(group: Group) -> dict[str, object]:
    return {"id": group.id, "name": group.name, "member_ids": list(group.member_ids),
            "created_at": group.created_at}


class People:
    """What ``actor`` may do with users and groups."""

    def __init__(self, services: Services, actor: User) -> None:
        self.services = services
        self.db = services.db
        self.actor = actor
        if actor.role not in ("admin", "supervisor"):
            raise Forbidden(Text("people.error.managers_only"))

    @property
    def is_admin(self) -> bool:
        return self.actor.role == "admin"

    # -- scope ----------------------------------------------------------------------

    async def scope_group_ids(self) -> set[int] | None:
        """None = every group (admin)."""
        if self.is_admin:
            return None
        ids: set[int] = set()
        for project in await self.db.projects.list(supervisor_id=self.actor.id):
            ids |= set(project.group_ids)
        return ids

    async def scope_user_ids(self) -> set[int] | None:
        groups = await self.scope_group_ids()
        if groups is None:
            return None
        ids = {self.actor.id}
        for group_id in groups:
            ids |= set(await self.db.groups.member_ids(group_id))
        return ids

    async def _check_user_in_scope(self, user: User) -> None:
        scope = await self.scope_user_ids()
        if scope is None:
            return
        if user.id not in scope:
            raise Forbidden(Text("people.error.user_scope"))
        if user.id != self.actor.id and user.role != "operator":
            raise Forbidden(Text("people.error.operators_only"))

    async def _check_group_in_scope(self, group_id: int) -> Group:
        group = await self.db.groups.get(group_id)
        scope = await self.scope_group_ids()
        if scope is not None and group_id not in scope:
            raise Forbidden(Text("people.error.group_scope"))
        return group

    # -- users ----------------------------------------------------------------------

    async def list_users(self, *, role: str | None = None, search: str = "",
                         include_deleted: bool = False) -> list[User]:
        if role is not None and role not in ROLES:
            raise Invalid(Text("accounts.error.role", roles=", ".join(ROLES)), field="role")
        users = await self.db.users.list(role=role, search=search,
                                         include_deleted=include_deleted)
        scope = await self.scope_user_ids()
        return users if scope is None else [u for u in users if u.id in scope]

    async def get_user(self, user_id: int) -> User:
        user = await self.db.users.get(user_id, include_deleted=self.is_admin)
        await self._check_user_in_scope(user)
        return user

    async def group_ids_of(self, user_id: int) -> list[int]:
        return [g.id for g in await self.db.users.groups_of(user_id)]

    async def _check_trunk(self, trunk_id: int | None) -> None:
        if trunk_id is None:
            return
        try:
            await self.db.trunks.get(trunk_id)
        except NotFound:
            raise Invalid(Text("people.error.trunk", id=trunk_id), field="trunk_id") from None

    @staticmethod
    def _check_text(user: NewUser) -> None:
        if len(user.full_name) > MAX_NAME:
            raise Invalid(Text("people.error.full_name_long", max=MAX_NAME), field="full_name")
        if len(user.email) > 254:
            raise Invalid(Text("people.error.email_long"), field="email")
        if len(user.phone) > 40 or not _PHONE.match(user.phone):
            raise Invalid(Text("people.error.phone"), field="phone")
        if len(user.password) > 256:
            raise Invalid(Text("people.error.password_long"), field="password")

    async def create_user(self, user: NewUser, *, group_ids: Iterable[int] = ()) -> int:
        groups = list(dict.fromkeys(group_ids))
        if not self.is_admin:
            if user.role != "operator":
                raise Forbidden(Text("people.error.create_operators_only"))
            scope = await self.scope_group_ids() or set()
            if not groups:
                raise Invalid(Text("people.error.operator_group"),
                              field="group_ids")
            if not set(groups) <= scope:
                raise Forbidden(Text("people.error.group_scope"))
        validate(user)
        self._check_text(user)
        await self._check_trunk(user.trunk_id)
        for group_id in groups:
            await self.db.groups.get(group_id)
        role: Role = user.role  # type: ignore[assignment]
        language = self.services.config.get("general", "language")
        password_hash = await asyncio.to_thread(hash_password, user.password)
        async with self.db.transaction():
            user_id = await self.db.users.create(
                role=role, full_name=user.full_name.strip(), email=user.email.strip(),
                password_hash=password_hash, phone=user.phone.strip(),
                extension=user.extension or None, sip_password=user.sip_password or None,
                trunk_id=user.trunk_id, language=language)
            for group_id in groups:
                await self.db.groups.add_members(group_id, [user_id])
        return user_id

    async def update_user(self, user_id: int, changes: UserChanges) -> User:
        current = await self.db.users.get(user_id)
        await self._check_user_in_scope(current)
        if changes.role is not None and changes.role != current.role:
            if not self.is_admin:
                raise Forbidden(Text("people.error.supervisor_role"))
            if current.id == self.actor.id:
                raise Invalid(Text("people.error.own_role"), field="role")
        extension = current.extension if changes.extension is None else changes.extension
        merged = NewUser(
            role=changes.role or current.role,
            full_name=current.full_name if changes.full_name is None else changes.full_name,
            email=current.email if changes.email is None else changes.email,
            password=changes.password or "",
            phone=current.phone if changes.phone is None else changes.phone,
            extension=extension or None,
            sip_password=changes.sip_password or current.sip_password,
            trunk_id=None if changes.clear_trunk else (changes.trunk_id or current.trunk_id))
        validate(merged, password_required=False)
        self._check_text(merged)
        await self._check_trunk(merged.trunk_id)
        if changes.language is not None and changes.language not in ("ru", "en"):
            raise Invalid(Text("people.error.language"), field="language")
        values: dict[str, object] = {
            "role": merged.role, "full_name": merged.full_name.strip(),
            "email": merged.email.strip(), "phone": merged.phone.strip(),
            "extension": merged.extension, "trunk_id": merged.trunk_id,
            "sip_password": merged.sip_password if merged.extension else None,
        }
        if changes.password:
            values["password_hash"] = await asyncio.to_thread(hash_password, changes.password)
        if changes.language is not None:
            values["language"] = changes.language
        async with self.db.transaction():
            await self.db.users.update(user_id, **values)
            if changes.password and user_id != self.actor.id:
                # Whoever knew the old password is signed out everywhere.
                await self.db.sessions.delete_for_user(user_id)
        return await self.db.users.get(user_id)

    async def delete_user(self, user_id: int) -> None:
        target = await self.db.users.get(user_id)
        await self._check_user_in_scope(target)
        if target.id == self.actor.id:
            raise Invalid(Text("people.error.delete_self"), field="id")
        await self.db.users.soft_delete(user_id)

    # -- groups ---------------------------------------------------------------------

    async def list_groups(self) -> list[Group]:
        groups = await self.db.groups.list()
        scope = await self.scope_group_ids()
        return groups if scope is None else [g for g in groups if g.id in scope]

    async def get_group(self, group_id: int) -> Group:
        return await self._check_group_in_scope(group_id)

    async def create_group(self, name: str, *, project_id: int | None = None) -> int:
        if len(name) > MAX_NAME:
            raise Invalid(Text("people.error.name_long", max=MAX_NAME), field="name")
        if not name.strip():
            raise Invalid(Text("people.error.group_name_empty"), field="name")
        if project_id is None and not self.is_admin:
            raise Invalid(Text("people.error.group_project"), field="project_id")
        project = None
        if project_id is not None:
            try:
                project = await self.db.projects.get(project_id)
            except NotFound:
                raise Invalid(Text("storage.error.project_not_found", id=project_id),
                              field="project_id") from None
            if not self.is_admin and project.supervisor_id != self.actor.id:
                raise Forbidden(Text("people.error.not_your_project"))
        async with self.db.transaction():
            group_id = await self.db.groups.create(name)
            if project is not None:
                await self.db.projects.set_groups(project.id, [*project.group_ids, group_id])
        return group_id

    async def rename_group(self, group_id: int, name: str) -> None:
        await self._check_group_in_scope(group_id)
        if len(name) > MAX_NAME:
            raise Invalid(Text("people.error.name_long", max=MAX_NAME), field="name")
        try:
            await self.db.groups.rename(group_id, name)
        except ValueError as exc:
            raise Invalid(message_of(exc), field="name") from None

    async def delete_group(self, group_id: int) -> None:
        if not self.is_admin:
            raise Forbidden(Text("people.error.delete_group"))
        await self.db.groups.delete(group_id)

    async def member_candidates(self) -> list[User]:
        """Users that may be added to a group by the actor."""
        if self.is_admin:
            return await self.db.users.list()
        return await self.db.users.list(role="operator")

    async def add_members(self, group_id: int, user_ids: Iterable[int]) -> None:
        await self._check_group_in_scope(group_id)
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            raise Invalid(Text("people.error.choose_users"), field="user_ids")
        allowed = {u.id for u in await self.member_candidates()}
        for user_id in ids:
            if user_id not in allowed:
                try:
                    await self.db.users.get(user_id)
                except NotFound:
                    raise Invalid(Text("storage.error.user_not_found", id=user_id),
                                  field="user_ids") from None
                raise Forbidden(Text("people.error.add_operators_only"))
        await self.db.groups.add_members(group_id, ids)

    async def remove_member(self, group_id: int, user_id: int) -> None:
        group = await self._check_group_in_scope(group_id)
        if user_id not in group.member_ids:
            raise NotFound(Text("people.error.not_member", user=user_id, group=group_id))
        await self.db.groups.remove_member(group_id, user_id)


__all__ = ["People", "UserChanges", "group_json", "user_json"]

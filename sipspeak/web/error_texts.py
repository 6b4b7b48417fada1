"""The catalogue's section of error messages: what services, accounts, storage and the
contacts import tell a user, in Russian (``str(error)``, logs, the CLI) and in English.

Keys are ``<area>.error.<name>``; the placeholders of both languages are the same.
Imports nothing, so :mod:`.i18n` (and through it every layer that raises) can load it.
"""

from __future__ import annotations

ERRORS_RU: dict[str, str] = {
    # -- the web layer's own answers
    "api.error.forbidden": "нет доступа",
    "api.error.internal": "внутренняя ошибка сервера",
    "api.error.unauthorized": "требуется вход или API-токен",
    "api.error.role": "недостаточно прав для этого действия",
    "api.error.csrf": "неверный или отсутствующий CSRF-токен",
    "api.error.changed": "данные изменились, обновите страницу",
    "api.error.malformed": "неверный формат запроса",
    # -- accounts (sipspeak.accounts)
    "accounts.error.role": "роль должна быть одной из: {roles}",
    "accounts.error.full_name": "ФИО не может быть пустым",
    "accounts.error.email": "неверный e-mail: {email!r}",
    "accounts.error.password": "пароль короче {min} символов",
    "accounts.error.extension": "внутренний номер: от 2 до 10 цифр",
    "accounts.error.sip_password": "SIP-пароль для внутреннего номера: не короче 8 символов",
    "accounts.error.no_user": "нет пользователя с e-mail {email}",
    # -- storage: rows that are gone, unique values that are taken
    "storage.error.call_not_found": "звонок {id} не найден",
    "storage.error.status_not_found": "статус {id} не найден",
    "storage.error.trunk_not_found": "транк {id} не найден",
    "storage.error.upload_not_found": "загрузка {id} не найдена",
    "storage.error.contact_not_found": "контакт {id} не найден",
    "storage.error.task_not_found": "задача {id} не найдена или уже выполнена",
    "storage.error.folder_not_found": "папка {id} не найдена",
    "storage.error.file_not_found": "файл {id} не найден",
    "storage.error.user_not_found": "пользователь {id} не найден",
    "storage.error.group_not_found": "группа {id} не найдена",
    "storage.error.project_not_found": "проект {id} не найден",
    "storage.error.name_taken_in_folder": "в этой папке уже есть элемент с таким именем",
    "storage.error.email_taken": "пользователь с таким e-mail уже есть",
    "storage.error.extension_taken": "этот внутренний номер уже занят",
    "storage.error.group_taken": "группа с таким названием уже есть",
    "storage.error.token_taken": "такой токен уже есть",
    "storage.error.status_taken": "статус с таким названием уже есть",
    "storage.error.trunk_taken": "транк с таким названием уже есть",
}

ERRORS_EN: dict[str, str] = {
    "api.error.forbidden": "access denied",
    "api.error.internal": "internal server error",
    "api.error.unauthorized": "sign-in or an API token is required",
    "api.error.role": "your role does not allow this action",
    "api.error.csrf": "missing or invalid CSRF token",
    "api.error.changed": "the data has changed, reload the page",
    "api.error.malformed": "malformed request",
    "accounts.error.role": "the role must be one of: {roles}",
    "accounts.error.full_name": "the full name cannot be empty",
    "accounts.error.email": "invalid e-mail: {email!r}",
    "accounts.error.password": "the password is shorter than {min} characters",
    "accounts.error.extension": "extension: 2 to 10 digits",
    "accounts.error.sip_password": "the SIP password of an extension: at least 8 characters",
    "accounts.error.no_user": "no user with the e-mail {email}",
    "storage.error.call_not_found": "call {id} not found",
    "storage.error.status_not_found": "status {id} not found",
    "storage.error.trunk_not_found": "trunk {id} not found",
    "storage.error.upload_not_found": "upload {id} not found",
    "storage.error.contact_not_found": "contact {id} not found",
    "storage.error.task_not_found": "task {id} not found or already done",
    "storage.error.folder_not_found": "folder {id} not found",
    "storage.error.file_not_found": "file {id} not found",
    "storage.error.user_not_found": "user {id} not found",
    "storage.error.group_not_found": "group {id} not found",
    "storage.error.project_not_found": "project {id} not found",
    "storage.error.name_taken_in_folder": "this folder already has an item with that name",
    "storage.error.email_taken": "a user with this e-mail already exists",
    "storage.error.extension_taken": "this extension is already taken",
    "storage.error.group_taken": "a group with this name already exists",
    "storage.error.token_taken": "this token already exists",
    "storage.error.status_taken": "a status with this name already exists",
    "storage.error.trunk_taken": "a trunk with this name already exists",
}

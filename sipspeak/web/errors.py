"""Errors of the web layer and their one JSON shape.

Every API error answers ``{"error": {"code": ..., "message": ..., "field": ...}}``:
400 malformed request, 401 not signed in, 403 role or scope, 404 missing, 409 a unique value
is taken, 413 too large, 422 a value is absurd, 429 too many attempts.  Services raise
:class:`ApiError` (or storage / account errors, mapped by :func:`as_api_error`).

An error's message is a catalogue :class:`~.i18n.Text`; the answer says it in the language of
the request (:func:`~.layout.language_of`), ``str(error)`` stays Russian for the log.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ..accounts import AccountError
from ..i18n import DEFAULT_LANGUAGE, Message, Text, message_of, render
from ..storage import Conflict, NotFound


class ApiError(Exception):
    """A request that cannot be served; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, code: str, message: Message, *,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def message_in(self, language: str) -> str:
        """The message as the reader of ``language`` sees it."""
        return render(self.message, language)


_NO_ACCESS = Text("api.error.forbidden")


class Forbidden(ApiError):
    def __init__(self, message: Message = _NO_ACCESS) -> None:
        super().__init__(403, "forbidden", message)


class Invalid(ApiError):
    def __init__(self, message: Message, *, field: str | None = None) -> None:
        super().__init__(422, "invalid", message, field=field)


class BadRequest(ApiError):
    def __init__(self, message: Message, *, field: str | None = None) -> None:
        super().__init__(400, "bad_request", message, field=field)


def as_api_error(exc: BaseException) -> ApiError | None:
    """The API error a domain exception stands for, or None for a programming error."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, Conflict):
        return ApiError(409, "conflict", message_of(exc), field=exc.field)
    if isinstance(exc, NotFound):
        return ApiError(404, "not_found", message_of(exc))
    if isinstance(exc, AccountError):
        return ApiError(422, "invalid", message_of(exc), field=exc.field)
    if isinstance(exc, sqlite3.IntegrityError):
        # A row referred to was removed meanwhile (another user deleted the folder …).
        return ApiError(409, "conflict", Text("api.error.changed"))
    if isinstance(exc, HttpProcessingError):
        # A malformed body part (bad multipart header, broken chunking …).
        return ApiError(400, "bad_request", Text("api.error.malformed"))
    if isinstance(exc, ValueError):
        return ApiError(422, "invalid", message_of(exc))
    return None


def error_body(status: int, code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


def error_response(status: int, code: str, message: Message, *, field: str | None = None,
                   language: str = DEFAULT_LANGUAGE,
                   headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(error_body(status, code, render(message, language), field),
                             status=status, headers=headers, dumps=_dumps)


def api_error_response(error: ApiError, language: str = DEFAULT_LANGUAGE) -> web.Response:
    return error_response(error.status, error.code, error.message, field=error.field,
                          language=language)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def json_ok(value: Any, *, status: int = 200) -> web.Response:
    """A JSON answer with Cyrillic kept readable."""
    return web.json_response(value, status=status, dumps=_dumps)


__all__ = [
    "ApiError",
    "BadRequest",
    "Forbidden",
    "Invalid",
    "api_error_response",
    "as_api_error",
    "error_body",
    "error_response",
    "json_ok",
]

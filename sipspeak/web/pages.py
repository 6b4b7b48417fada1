"""Helpers shared by the page handlers: services of the request, form posts, notices."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from ..i18n import CATALOGUE, DEFAULT_LANGUAGE, translate
from .auth import redirect
from .errors import ApiError, as_api_error
from .layout import ERROR_FIELD, language_of

if TYPE_CHECKING:
    from ..app import Services


def services_of(request: web.Request) -> Services:
    from .app import SERVICES

    return request.app[SERVICES]


def path_id(request: web.Request, name: str = "id") -> int:
    """A numeric path parameter (the route pattern already allows digits only)."""
    return int(request.match_info[name])


async def form_post(request: web.Request, action: Callable[[], Awaitable[str]],
                    on_error: Callable[[ApiError], Awaitable[web.Response]]) -> web.Response:
    """Run a page form's action: redirect (303) on success, re-render the form on bad input.

    Permission and not-found errors go on to the error page; only input errors (400, 409,
    413, 422) come back to the form with their message.
    """
    try:
        location = await action()
    except Exception as exc:
        error = as_api_error(exc)
        if error is None or error.status in (401, 403, 404):
            raise
        request[ERROR_FIELD] = error.field
        return await on_error(error)
    return redirect(location)


def notice(request: web.Request, prefix: str) -> str | None:
    """The success message named by ``?ok=<key>`` (only keys of the catalogue)."""
    key = request.query.get("ok", "")
    full = f"{prefix}.{key}"
    if not key or full not in CATALOGUE[DEFAULT_LANGUAGE]:
        return None
    return translate(full, language_of(request))


def tr(request: web.Request, key: str) -> str:
    return translate(key, language_of(request))


def error_text(request: web.Request, error: ApiError) -> str:
    """A rejected form's message in the reader's language."""
    return error.message_in(language_of(request))


__all__ = ["error_text", "form_post", "notice", "path_id", "services_of", "tr"]

"""Sign-in, sessions, CSRF, API tokens and the role-checked route table.

* Sessions: a random id in the HttpOnly cookie ``sipspeak_session`` (SameSite=Lax, Secure on
  HTTPS); only its SHA-256 digest is stored (``web_sessions``), with an expiry.
* CSRF: each session has a token; every unsafe request authenticated by the cookie must carry
  it in the form field ``csrf`` or the ``X-CSRF-Token`` header.  Bearer API tokens are exempt:
  a browser never attaches them by itself.
* Login is rate-limited per source address (failed attempts in a sliding window).
* :func:`route` registers a handler with the roles allowed to use it; the table is
  ``app[ROUTE_TABLE]`` (the OpenAPI document and the role-walk test read it).  The middleware
  resolves ``request[USER]`` and answers 302 → /login (pages) or 401 JSON (API) to anonymous
  users and 403 to a role that is not allowed.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import ipaddress
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from ..i18n import Text
from ..security import hash_password, token_digest, verify_password
from ..storage import NotFound, now_ms
from ..storage.models import ROLES, User, WebSession
from .errors import ApiError, api_error_response, as_api_error, error_response

if TYPE_CHECKING:
    from ..app import Services

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SESSION_COOKIE = "sipspeak_session"
LOGIN_COOKIE = "sipspeak_login"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
SESSION_TTL_MS = 12 * 3600 * 1000
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ALL_ROLES: tuple[str, ...] = tuple(ROLES)
STAFF: tuple[str, ...] = ("admin", "supervisor")
ADMIN: tuple[str, ...] = ("admin",)

SPEC_ATTR = "__sipspeak_route__"


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One row of the route table: who may call what."""

    method: str
    path: str
    roles: tuple[str, ...]
    api: bool
    name: str | None
    summary: str
    request_schema: dict[str, Any] | None = None
    response_schema: dict[str, Any] | None = None
    query: tuple[str, ...] = ()
    request_media: str = "application/json"


#: The signed-in user of the request (set by the auth middleware).
USER: web.RequestKey[User | None] = web.RequestKey("user", User)
ROUTE_TABLE: web.AppKey[list[RouteSpec]] = web.AppKey("route_table", list)
SESSION_KEY: web.RequestKey[WebSession | None] = web.RequestKey("session", WebSession)
VIA_TOKEN_KEY: web.RequestKey[bool] = web.RequestKey("via_token", bool)


class LoginLimiter:
    """Failed sign-ins per source address in a sliding window; time is a parameter."""

    def __init__(self, *, max_failures: int = 10, window_s: float = 300.0) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, source: str, now: float) -> deque[float]:
        entries = self._failures.setdefault(source, deque())
        while entries and entries[0] <= now - self.window_s:
            entries.popleft()
        return entries

    def blocked(self, source: str, now: float) -> bool:
        return len(self._recent(source, now)) >= self.max_failures

    def failed(self, source: str, now: float) -> None:
        self._recent(source, now).append(now)
        if len(self._failures) > 10_000:  # forget idle addresses, bound the memory
            for key in [k for k, v in self._failures.items() if not v]:
                del self._failures[key]


LOGIN_LIMITER: web.AppKey[LoginLimiter] = web.AppKey("login_limiter", LoginLimiter)


def _services(request: web.Request) -> Services:
    from .app import SERVICES

    return request.app[SERVICES]


# -- the route table --------------------------------------------------------------------


def route(app: web.Application, method: str, path: str, handler: Handler, *,
          roles: tuple[str, ...], api: bool = False, name: str | None = None,
          summary: str | None = None, request_schema: dict[str, Any] | None = None,
          response_schema: dict[str, Any] | None = None,
          query: tuple[str, ...] = (), request_media: str = "application/json") -> RouteSpec:
    """Register ``handler`` for ``method path``, callable by ``roles`` only."""
    unknown = set(roles) - set(ALL_ROLES)
    if not roles or unknown:
        raise ValueError(f"route {method} {path}: roles must be a non-empty subset of {ALL_ROLES}")
    doc = (handler.__doc__ or "").strip().splitlines()
    spec = RouteSpec(method=method.upper(), path=path, roles=tuple(roles), api=api, name=name,
                     summary=summary or (doc[0] if doc else f"{method.upper()} {path}"),
                     request_schema=request_schema, response_schema=response_schema,
                     query=query, request_media=request_media)

    async def endpoint(request: web.Request) -> web.StreamResponse:
        return await handler(request)

    setattr(endpoint, SPEC_ATTR, spec)
    endpoint.__name__ = getattr(handler, "__name__", "endpoint")
    endpoint.__doc__ = handler.__doc__
    if ROUTE_TABLE not in app:
        app[ROUTE_TABLE] = []
    app[ROUTE_TABLE].append(spec)
    app.router.add_route(spec.method, path, endpoint, name=name)
    return spec


def route_spec(request: web.Request) -> RouteSpec | None:
    return getattr(request.match_info.handler, SPEC_ATTR, None)


def is_api_request(request: web.Request) -> bool:
    spec = route_spec(request)
    return spec.api if spec is not None else request.path.startswith("/api/")


# -- who is calling ---------------------------------------------------------------------


@dataclass(slots=True)
class Caller:
    user: User | None = None
    session: WebSession | None = None
    session_id: str | None = None
    via_token: bool = False


async def _resolve(request: web.Request) -> Caller:
    db = _services(request).db
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        token = await db.tokens.by_hash(token_digest(header[7:].strip()))
        if token is None:
            return Caller(via_token=True)
        user = await _live_user(request, token.user_id)
        if user is not None and _stale_use(token.last_used_at):
            # Recording use is a write; once a minute is precise enough and keeps polling
            # API clients from queueing behind the database's single writer.
            await db.tokens.touch(token.id)
        return Caller(user=user, via_token=True)
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id or len(session_id) > 200:
        return Caller()
    session = await db.sessions.get(token_digest(session_id), now=now_ms())
    if session is None:
        return Caller()
    user = await _live_user(request, session.user_id)
    if user is None:
        return Caller()
    return Caller(user=user, session=session, session_id=session_id)


async def _live_user(request: web.Request, user_id: int) -> User | None:
    try:
        return await _services(request).db.users.get(user_id)
    except NotFound:
        return None


async def signed_in_now(request: web.Request) -> User | None:
    """The caller as storage has him now, for a request that lives on (a WebSocket): None
    once the session ended, the token was revoked or the user was removed."""
    user = (await _resolve(request)).user
    return None if user is None or user.deleted else user


def current_user(request: web.Request) -> User:
    """The signed-in user of a route registered with :func:`route`."""
    user: User | None = request.get(USER)
    if user is None:
        raise web.HTTPUnauthorized()
    return user


def csrf_token(request: web.Request) -> str:
    session = request.get(SESSION_KEY)
    return session.csrf_token if session is not None else ""


async def _csrf_ok(request: web.Request, session: WebSession) -> bool:
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent and request.content_type in ("application/x-www-form-urlencoded",
                                             "multipart/form-data"):
        form = await request.post()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else ""
    return bool(sent) and hmac.compare_digest(sent.encode(), session.csrf_token.encode())


# -- middlewares ------------------------------------------------------------------------


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """API errors → the JSON error shape; page errors → the error page."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if not is_api_request(request):
            from .layout import render_error

            return await render_error(request, ApiError(exc.status, "http_error", exc.reason))
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
                413: "too_large"}.get(exc.status, "http_error")
        return error_response(exc.status, code, exc.reason)
    except Exception as exc:
        if _answer_started(request):
            # A streamed answer (a download) is under way: an error page now would be
            # written into its body.  The connection is cut instead; the client sees a
            # broken download, not a corrupt one.
            if not isinstance(exc, ConnectionError):
                log.exception("%s %s failed mid-answer", request.method, request.path)
            raise
        error = as_api_error(exc)
        if error is None:
            log.exception("%s %s failed", request.method, request.path)
            error = ApiError(500, "internal", Text("api.error.internal"))
        if is_api_request(request):
            from .layout import language_of

            return api_error_response(error, language_of(request))
        from .layout import render_error

        return await render_error(request, error)


def _answer_started(request: web.Request) -> bool:
    """Whether bytes of the answer already went out (a prepared StreamResponse)."""
    writer = request.writer
    return writer is not None and writer.output_size > 0


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    caller = await _resolve(request)
    request[USER] = caller.user
    request[SESSION_KEY] = caller.session
    request[VIA_TOKEN_KEY] = caller.via_token
    spec = route_spec(request)
    if spec is None:
        return await handler(request)
    user = caller.user
    if user is None:
        if spec.api:
            from .layout import language_of

            return error_response(401, "unauthorized", Text("api.error.unauthorized"),
                                  language=language_of(request),
                                  headers={"WWW-Authenticate": 'Bearer realm="sipspeak"'})
        target = request.path_qs if request.method == "GET" else "/"
        raise web.HTTPFound(f"/login?next={quote(target, safe='')}")
    if user.role not in spec.roles:
        raise ApiError(403, "forbidden", Text("api.error.role"))
    unsafe = request.method not in SAFE_METHODS
    if unsafe and caller.session is not None and not await _csrf_ok(request, caller.session):
        raise ApiError(403, "csrf", Text("api.error.csrf"), field=CSRF_FIELD)
    return await handler(request)


# -- login / logout ---------------------------------------------------------------------


def _from_trusted_proxy(request: web.Request) -> bool:
    return _in_networks(request.remote, _trusted_networks(request))


def _secure(request: web.Request) -> bool:
    if request.secure:
        return True
    # A TLS-terminating proxy says so; anybody else could claim it.
    return (_from_trusted_proxy(request)
            and request.headers.get("X-Forwarded-Proto", "").lower() == "https")


def safe_next(value: str) -> str:
    # Only a local path: "//host" and "/\host" would leave the site.
    if value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return "/"


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(hash_password(secrets.token_urlsafe(16)))
    return _DUMMY[0]


def redirect(location: str) -> web.Response:
    """A 303 "see other" after a form post (the browser follows it with GET)."""
    return web.Response(status=303, headers={"Location": location})


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def _parse_networks(items: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def _trusted_networks(request: web.Request) -> tuple[Network, ...]:
    from .app import SERVICES

    services = request.app.get(SERVICES)
    if services is None:
        return ()
    return _parse_networks(tuple(services.config.get("web", "trusted_proxies")))


def _in_networks(address: str | None, networks: tuple[Network, ...]) -> bool:
    if not address or not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def source_address(request: web.Request) -> str:
    """The client's address: the TCP peer, or what trusted proxies forwarded.

    Behind proxies listed in ``[web] trusted_proxies`` the client is the
    right-most X-Forwarded-For entry that is not itself a trusted proxy
    (entries left of it could be written by the client).
    """
    peer = request.remote or "unknown"
    networks = _trusted_networks(request)
    if not _in_networks(peer, networks):
        return peer
    hops = [hop.strip() for value in request.headers.getall("X-Forwarded-For", [])
            for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if _in_networks(hop, networks):
            continue
        try:
            return str(ipaddress.ip_address(hop))
        except ValueError:
            return peer  # garbage where an address should be: count the proxy
    return peer


async def login_page(request: web.Request) -> web.Response:
    if request.get(USER) is not None:
        raise web.HTTPFound(safe_next(request.query.get("next", "/")))
    return await _login_form(request, error=None, email=request.query.get("email", ""))


async def _login_form(request: web.Request, *, error: str | None, email: str,
                      status: int = 200, next_path: str | None = None) -> web.Response:
    from .layout import render_public

    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    response = await render_public(request, "login.html", {
        "error": error, "email": email, "csrf": token,
        "next": safe_next(next_path or request.query.get("next", "/")),
    }, status=status)
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="Lax",
                        secure=_secure(request), path="/login")
    return response


async def login_submit(request: web.Request) -> web.StreamResponse:
    from ..i18n import translate
    from .layout import language_of

    services = _services(request)
    limiter = request.app[LOGIN_LIMITER]
    form = await request.post()
    email = str(form.get("email", "")).strip()[:320]
    password = str(form.get("password", ""))[:1024]
    lang = language_of(request)
    source = source_address(request)
    now = time.monotonic()
    next_path = safe_next(str(form.get("next", "/")) or "/")
    cookie_token = request.cookies.get(LOGIN_COOKIE, "")
    sent = str(form.get(CSRF_FIELD, ""))

    async def again(key: str, status: int) -> web.Response:
        return await _login_form(request, error=translate(key, lang), email=email,
                                  status=status, next_path=next_path)

    if not cookie_token or not hmac.compare_digest(cookie_token.encode(), sent.encode()):
        return await again("login.expired", 403)
    if limiter.blocked(source, now):
        log.warning("sign-in from %s refused: too many failures", source)
        return await again("login.too_many", 429)
    user = await services.db.users.by_email(email) if email else None
    # scrypt runs in a thread (the event loop carries calls and media), and also for an
    # unknown e-mail, so the answer time does not tell which e-mails exist.
    stored = user.password_hash if user is not None else await asyncio.to_thread(_dummy_hash)
    valid = await asyncio.to_thread(verify_password, password, stored)
    if user is None or not valid:
        limiter.failed(source, now)
        # One line per failure, with the source address, for fail2ban-style watchers.
        log.warning("failed sign-in for %r from %s", email, source)
        return await again("login.failed", 401)
    session_id = secrets.token_urlsafe(32)
    await services.db.sessions.purge_expired(now=now_ms())
    await services.db.sessions.create(id_hash=token_digest(session_id), user_id=user.id,
                                      csrf_token=secrets.token_urlsafe(32),
                                      expires_at=now_ms() + SESSION_TTL_MS)
    response = redirect(next_path)
    response.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="Lax",
                        secure=_secure(request), path="/", max_age=SESSION_TTL_MS // 1000)
    response.del_cookie(LOGIN_COOKIE, path="/login")
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    """Sign out: the session is deleted on the server and the cookie cleared."""
    from .layout import current_agent_state
    from .profile import set_agent_state

    services = _services(request)
    user = current_user(request)
    if await current_agent_state(services, user.id) != "offline":
        # Nobody takes calls from a closed browser: the dialer is told at once.
        await set_agent_state(services, user, "offline")
    if getattr(services, "campaigns", None) is not None:
        await set_agent_state(services, user, "logged_out")
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        await services.db.sessions.delete(token_digest(session_id))
    # Live sockets of his (the browser softphone) check their sign-in now, not at leisure.
    services.bus.publish("session.ended", user_id=user.id)
    response = redirect("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


# -- scope ------------------------------------------------------------------------------


async def visible_project_ids(request: web.Request) -> set[int] | None:
    """Projects the caller may see: None = all (admin); a supervisor sees the projects he
    supervises; an operator the projects of his groups."""
    user = current_user(request)
    return await project_ids_for(_services(request), user)


async def project_ids_for(services: Services, user: User) -> set[int] | None:
    db = services.db
    if user.role == "admin":
        return None
    if user.role == "supervisor":
        return {p.id for p in await db.projects.list(supervisor_id=user.id)}
    ids: set[int] = set()
    for group in await db.users.groups_of(user.id):
        ids |= {p.id for p in await db.projects.list(group_id=group.id)}
    return ids


def setup_auth(app: web.Application) -> None:
    app[LOGIN_LIMITER] = LoginLimiter()
    app.router.add_get("/login", login_page, name="login")
    app.router.add_post("/login", login_submit)
    route(app, "POST", "/logout", logout, roles=ALL_ROLES, name="logout")


__all__ = [
    "ADMIN",
    "ALL_ROLES",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "LOGIN_LIMITER",
    "ROUTE_TABLE",
    "SESSION_COOKIE",
    "STAFF",
    "LoginLimiter",
    "RouteSpec",
    "auth_middleware",
    "csrf_token",
    "current_user",
    "error_middleware",
    "is_api_request",
    "project_ids_for",
    "redirect",
    "route",
    "route_spec",
    "setup_auth",
    "signed_in_now",
    "visible_project_ids",
]


TOKEN_USE_RESOLUTION_MS = 60_000


def _stale_use(last_used_at: int | None) -> bool:
    return last_used_at is None or now_ms() - last_used_at >= TOKEN_USE_RESOLUTION_MS

"""The aiohttp application: pages, REST API and health probe share the same services."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp_jinja2
import jinja2
from aiohttp import web

from .. import __version__
from ..i18n import translate
from ..media import fastpath
from . import (
    auth,
    blacklist,
    dashboard,
    filemanager,
    groups,
    monitoring,
    openapi,
    profile,
    reports,
    reports_calls,
    reports_contacts,
    statuses,
    trunks,
    users,
    workspace,
)
from .auth import auth_middleware, error_middleware

if TYPE_CHECKING:
    from ..app import Services

SERVICES: web.AppKey[Services] = web.AppKey("services")
HERE = Path(__file__).parent

#: Feature modules built elsewhere, each with ``setup_routes(app)``; used when present.
OPTIONAL_FEATURES = ("projects", "uploads")


def create_app(services: Services) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024,
                          middlewares=[error_middleware, auth_middleware])
    app[SERVICES] = services
    app.on_response_prepare.append(_security_headers)
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    env.globals["_"] = translate
    app.router.add_get("/healthz", healthz)
    app.router.add_static("/static", HERE / "static", name="static")
    auth.setup_auth(app)
    for module in (profile, openapi, users, groups, statuses, trunks, blacklist, filemanager,
                   monitoring, reports, reports_calls, reports_contacts, dashboard, workspace):
        module.setup_routes(app)
    importlib.import_module(f"{__package__}.calls_api").setup_routes(app)
    importlib.import_module(f"{__package__}.softphone").setup_routes(app)
    importlib.import_module(f"{__package__}.card").setup_routes(app)
    importlib.import_module(f"{__package__}.leads").setup_routes(app)
    importlib.import_module(f"{__package__}.mail").setup_routes(app)
    importlib.import_module(f"{__package__}.sms").setup_routes(app)
    importlib.import_module(f"{__package__}.linkspeed").setup_routes(app)
    importlib.import_module(f"{__package__}.webhooks").setup_routes(app)
    importlib.import_module(f"{__package__}.robot_api").setup_routes(app)
    for name in OPTIONAL_FEATURES:
        if importlib.util.find_spec(f"{__package__}.{name}") is not None:
            importlib.import_module(f"{__package__}.{name}").setup_routes(app)
    return app


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    # No framing by other sites (clickjacking), no MIME sniffing, no full URLs in Referer.
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.path.startswith("/api/") or request.get(auth.USER) is not None:
        response.headers.setdefault("Cache-Control", "no-store")


async def healthz(request: web.Request) -> web.Response:
    db = request.app[SERVICES].db
    ok = await db.ping()
    body = {
        "status": "ok" if ok else "degraded",
        "version": __version__,
        "database": {"ok": ok, "schema_version": await db.schema_version() if ok else None},
        # "c": the compiled relay loop; "python": it was not built at install time.
        "media_relay": "c" if fastpath.NATIVE else "python",
    }
    return web.json_response(body, status=200 if ok else 503)

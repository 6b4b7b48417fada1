"""The aiohttp application: pages, REST API and health probe share the same services."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from .. import __version__
from .i18n import DEFAULT_LANGUAGE, translate

if TYPE_CHECKING:
    from ..app import Services

SERVICES: web.AppKey["Services"] = web.AppKey("services")
HERE = Path(__file__).parent


def create_app(services: "Services") -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[SERVICES] = services
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        context_processors=[_context],
    )
    env.globals["_"] = translate
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/", index)
    app.router.add_get("/login", login_page)
    app.router.add_static("/static", HERE / "static", name="static")
    return app


async def _context(request: web.Request) -> dict[str, Any]:
    services = request.app[SERVICES]
    language = services.config.get("general", "language") or DEFAULT_LANGUAGE
    return {
        "lang": language,
        "_": lambda key: translate(key, language),
        "support": dict(services.config["support"]),
    }


async def healthz(request: web.Request) -> web.Response:
    db = request.app[SERVICES].db
    ok = await db.ping()
    body = {
        "status": "ok" if ok else "degraded",
        "version": __version__,
        "database": {"ok": ok, "schema_version": await db.schema_version() if ok else None},
    }
    return web.json_response(body, status=200 if ok else 503)


async def index(request: web.Request) -> web.Response:
    raise web.HTTPFound("/login")


@aiohttp_jinja2.template("login.html")
async def login_page(request: web.Request) -> dict[str, Any]:
    return {"error": None, "email": request.query.get("email", "")}

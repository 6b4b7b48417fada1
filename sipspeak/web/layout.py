"""The base layout: main menu by role, header (operator status, notifications, profile).

``render(request, template, context)`` renders a page template that extends ``layout.html``;
the template gets ``user``, ``menu``, ``_`` (bound to the user's language), ``csrf_input()``,
``csrf_token``, ``notifications`` and ``agent_state`` besides its own context.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp_jinja2
from aiohttp import web
from markupsafe import Markup, escape

from ..i18n import DEFAULT_LANGUAGE, LANGUAGES, translate
from ..storage import now_ms
from ..storage.models import User
from .auth import ROUTE_TABLE, USER, RouteSpec, csrf_token
from .errors import ApiError

if TYPE_CHECKING:
    from ..app import Services

#: The input a rejected form post names (the layout marks it for the user).
ERROR_FIELD: web.RequestKey[str | None] = web.RequestKey("error_field", str)

#: Operator states of the header switcher (§3 "Статус оператора"), in menu order.
AGENT_STATES: tuple[str, ...] = ("offline", "available", "pause", "dnd")


@dataclass(frozen=True, slots=True)
class MenuItem:
    key: str
    route_name: str | None = None
    icon: str = ""
    children: tuple[MenuItem, ...] = ()


#: The main menu of the manual (§3); an item shows when its page exists and the role may open it.
MENU: tuple[MenuItem, ...] = (
    MenuItem("menu.dashboard", "dashboard", "◧"),
    MenuItem("menu.workspace", "workspace", "☎"),
    MenuItem("menu.projects", "projects", "▤"),
    MenuItem("menu.reports", "reports", "▦"),
    MenuItem("menu.settings", None, "⚙", children=(
        MenuItem("menu.users", "settings.users"),
        MenuItem("menu.groups", "settings.groups"),
        MenuItem("menu.statuses", "settings.statuses"),
        MenuItem("menu.trunks", "settings.trunks"),
        MenuItem("menu.webhooks", "settings.webhooks"),
    )),
    MenuItem("menu.blacklist", "blacklist", "⊘"),
    MenuItem("menu.files", "files", "▭"),
    MenuItem("menu.monitoring", "monitoring", "◉"),
    MenuItem("menu.softphone", "softphone", "✆"),
)


@dataclass(frozen=True, slots=True)
class MenuEntry:
    label: str
    url: str
    icon: str
    active: bool
    children: tuple[MenuEntry, ...] = ()


def _services(request: web.Request) -> Services:
    from .app import SERVICES

    return request.app[SERVICES]


def language_of(request: web.Request) -> str:
    user: User | None = request.get(USER)
    if user is not None and user.language in LANGUAGES:
        return user.language
    default = _services(request).config.get("general", "language")
    return default if default in LANGUAGES else DEFAULT_LANGUAGE


def _named_specs(app: web.Application) -> dict[str, RouteSpec]:
    return {s.name: s for s in app[ROUTE_TABLE] if s.name and s.method == "GET" and not s.api}


def build_menu(request: web.Request, user: User, lang: str) -> list[MenuEntry]:
    specs = _named_specs(request.app)
    path = request.path

    def entry(item: MenuItem) -> MenuEntry | None:
        if item.children:
            children = tuple(e for e in (entry(c) for c in item.children) if e is not None)
            if not children:
                return None
            return MenuEntry(translate(item.key, lang), children[0].url, item.icon,
                             any(c.active for c in children), children)
        spec = specs.get(item.route_name or "")
        if spec is None or user.role not in spec.roles:
            return None
        url = str(request.app.router[spec.name].url_for())  # type: ignore[index]
        active = path == url or (url != "/" and path.startswith(url + "/"))
        return MenuEntry(translate(item.key, lang), url, item.icon, active)

    return [e for e in (entry(i) for i in MENU) if e is not None]


async def current_agent_state(services: Services, user_id: int) -> str:
    campaigns = getattr(services, "campaigns", None)
    if campaigns is not None:
        return str(campaigns.agent_status(user_id))
    now = now_ms()
    intervals = await services.db.intervals.between(start=now, end=now + 1, user_id=user_id)
    open_ones = [i for i in intervals if i.ended_at is None]
    return open_ones[-1].state if open_ones else "offline"


def disk_info(services: Services, lang: str) -> str:
    """The header's "Информация": disk size and use of the data directory."""
    try:
        usage = shutil.disk_usage(services.config.data_dir)
    except OSError:
        return ""
    gib = 1024**3
    percent = round(usage.used * 100 / usage.total) if usage.total else 0
    return translate("header.disk", lang).format(
        total=f"{usage.total / gib:.0f}G", used=f"{usage.used / gib:.0f}G", percent=percent)


def _base_context(request: web.Request, lang: str) -> dict[str, Any]:
    services = _services(request)
    token = csrf_token(request)

    def csrf_input() -> Markup:
        return Markup('<input type="hidden" name="csrf" value="%s">') % escape(token)

    return {
        "lang": lang,
        "_": lambda key: translate(key, lang),
        "csrf_token": token,
        "csrf_input": csrf_input,
        "support": dict(services.config["support"]),
    }


async def render(request: web.Request, template: str, context: dict[str, Any] | None = None,
                 *, status: int = 200) -> web.Response:
    """Render a page of the signed-in user inside the base layout."""
    user: User | None = request.get(USER)
    if user is None:
        return await render_public(request, template, context or {}, status=status)
    services = _services(request)
    lang = language_of(request)
    full = _base_context(request, lang)
    full.update({
        "user": user,
        "menu": build_menu(request, user, lang),
        "notifications": await services.db.notifications.unread(user.id),
        "agent_state": await current_agent_state(services, user.id),
        "agent_states": AGENT_STATES,
        "role_label": translate(f"role.{user.role}", lang),
        "disk": disk_info(services, lang),
        "error_field": request.get(ERROR_FIELD),
    })
    from .trunk_money import header_context  # here: trunk_money imports this module

    full.update(await header_context(request))  # «Баланс / Расход (день)»: pages only
    full.update(context or {})
    return aiohttp_jinja2.render_template(template, request, full, status=status)


async def render_public(request: web.Request, template: str, context: dict[str, Any],
                        *, status: int = 200) -> web.Response:
    """Render a page for anyone (the login page): no menu, no header."""
    full = _base_context(request, language_of(request))
    full["user"] = None
    full.update(context)
    return aiohttp_jinja2.render_template(template, request, full, status=status)


async def render_error(request: web.Request, error: ApiError) -> web.Response:
    lang = language_of(request)
    title = translate(f"error.{error.status}", lang)
    return await render(request, "error.html",
                        {"title": title, "message": error.message_in(lang)}, status=error.status)


__all__ = ["AGENT_STATES", "MENU", "MenuItem", "build_menu", "current_agent_state",
           "language_of", "render", "render_error", "render_public"]

"""The operator's browser softphone: the page and its signalling WebSocket.

``GET /softphone`` is a page with the softphone widget (``static/softphone.js``; another
page mounts it with ``SipSoftphone.mount(element, {})``, and the widget then reads its texts
from the API below).  ``GET /api/v1/softphone`` upgrades to
the signalling WebSocket of :mod:`sipspeak.calls.browser_signalling`: while it is open the
user's browser is one of his devices — rung together with his SIP phones, online for the
dialer and the monitoring.  The first message is ``{"type": "hello", "available": bool}``
(false while call control does not run: the socket then only waits).  Without the upgrade
the route answers whether the softphone is available and how many of the user's browsers are
connected, with the widget's texts in his language.

Like the monitoring push: the page opening the socket must be ours (Origin, see
:func:`~sipspeak.web.push.same_origin`), the session is checked again while the socket
lives (every ``RECHECK_S`` and on every message; the socket closes once it is gone), and
shutdown closes every socket with 1001 (going away).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from ..calls.browser import BrowserPhone, BrowserPhones
from ..i18n import Text, translate
from .auth import ALL_ROLES, current_user, route, signed_in_now
from .errors import ApiError, json_ok
from .layout import language_of, render
from .pages import services_of
from .push import same_origin

log = logging.getLogger(__name__)

RECHECK_S = 30.0
"""How often an idle socket checks that its sign-in still holds."""
MAX_QUEUED = 100
"""Messages waiting for a slow browser before the socket is given up."""

#: The widget's texts (catalogue keys ``softphone.<name>``), handed to ``mount()``.
WIDGET_TEXTS: tuple[str, ...] = (
    "title", "connecting", "ready", "offline", "unavailable", "signed_out", "incoming",
    "in_call", "number", "project", "answer", "decline", "hangup", "mute", "unmute",
    "no_microphone", "ended", "error", "auto_answer", "hold", "unhold", "on_hold")

STATUS_OUT: dict[str, Any] = {"type": "object", "properties": {
    "available": {"type": "boolean"}, "connected": {"type": "integer"},
    "texts": {"type": "object", "additionalProperties": {"type": "string"}}}}


def widget_texts(language: str) -> dict[str, str]:
    return {name: translate(f"softphone.{name}", language) for name in WIDGET_TEXTS}


def _browsers(request: web.Request) -> BrowserPhones | None:
    runtime = services_of(request).call_runtime
    browsers: BrowserPhones | None = getattr(runtime, "browsers", None)
    return browsers


async def softphone_page(request: web.Request) -> web.Response:
    """Софтфон оператора в браузере."""
    return await render(request, "softphone.html",
                        {"softphone_texts": widget_texts(language_of(request))})


async def api_softphone(request: web.Request) -> web.StreamResponse:
    """The softphone's signalling WebSocket (without the upgrade: is it available)."""
    user = current_user(request)
    browsers = _browsers(request)
    socket = web.WebSocketResponse(heartbeat=30.0, max_msg_size=64 * 1024)
    if not socket.can_prepare(request).ok:
        return json_ok({"available": browsers is not None,
                        "connected": len(browsers.of(user.id)) if browsers else 0,
                        "texts": widget_texts(language_of(request))})
    if not same_origin(request):
        # A page of another site cannot take calls with the user's cookies.
        raise ApiError(403, "forbidden", Text("api.error.forbidden"))
    await socket.prepare(request)
    sockets = request.app[OPEN_SOCKETS]
    sockets.add(socket)
    try:
        await _serve(request, socket, user.id, browsers)
    finally:
        sockets.discard(socket)
    return socket


async def _serve(request: web.Request, socket: web.WebSocketResponse, user_id: int,
                 browsers: BrowserPhones | None) -> None:
    """Relay between the socket and the user's device in the directory until either ends."""
    outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def send(message: dict[str, Any]) -> None:
        # Called from call control: never blocks; a browser that stopped reading is dropped.
        if outbox.qsize() >= MAX_QUEUED:
            outbox.put_nowait(None)
        else:
            outbox.put_nowait(message)

    async def writer() -> None:
        while (message := await outbox.get()) is not None:
            await socket.send_str(json.dumps(message, ensure_ascii=False))

    subscription = services_of(request).bus.subscribe("session.ended", "user.")

    async def watch() -> None:
        # A sign-out (or his account changed) rings no more: check the sign-in at once.
        async for event in subscription:
            if event.data.get("user_id") == user_id and await signed_in_now(request) is None:
                await socket.close()
                return

    send({"type": "hello", "available": browsers is not None})
    phone: BrowserPhone | None = (
        browsers.connect(user_id, send, language=language_of(request)) if browsers else None)
    writing = asyncio.create_task(writer(), name=f"softphone-write-{user_id}")
    watching = asyncio.create_task(watch(), name=f"softphone-watch-{user_id}")
    try:
        while not socket.closed and not writing.done():
            try:
                message = await socket.receive(timeout=RECHECK_S)
            except TimeoutError:
                message = None
            if message is not None and message.type in (
                    WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                break
            user = await signed_in_now(request)
            if user is None or user.id != user_id:
                break  # signed out or removed: this browser takes no more calls
            if message is None:
                continue
            if message.type is not WSMsgType.TEXT:
                send({"type": "error", "error": "not_text", "message": "text frames only"})
            elif phone is not None and browsers is not None:
                try:
                    browsers.receive(phone, message.data)
                except Exception:  # a fault of ours must not take the socket down
                    log.exception("softphone message of user %s failed", user_id)
                    send({"type": "error", "error": "internal", "message": "internal error"})
            else:
                send({"type": "error", "error": "unavailable",
                      "message": "call control is not running"})
    except ConnectionError:
        pass  # the browser went away between two messages
    finally:
        watching.cancel()
        subscription.close()
        if phone is not None and browsers is not None:
            browsers.disconnect(phone)  # its rings are declined, its call ends
        outbox.put_nowait(None)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writing, 1.0)
        writing.cancel()
        await asyncio.gather(writing, watching, return_exceptions=True)
        await socket.close()


OPEN_SOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("softphone_sockets", set)


async def _close_sockets(app: web.Application) -> None:
    """At shutdown the softphones are told so (1001) and reconnect to the next process."""
    for socket in list(app[OPEN_SOCKETS]):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


def setup_routes(app: web.Application) -> None:
    app[OPEN_SOCKETS] = set()
    app.on_shutdown.append(_close_sockets)
    route(app, "GET", "/softphone", softphone_page, roles=ALL_ROLES, name="softphone")
    route(app, "GET", "/api/v1/softphone", api_softphone, roles=ALL_ROLES, api=True,
          response_schema=STATUS_OUT)

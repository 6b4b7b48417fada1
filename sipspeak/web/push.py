"""Live pages: a JSON picture answered once, or pushed over a WebSocket whenever it changes.

:func:`live_picture` serves both ways from one ``picture(request)`` coroutine.  As a
WebSocket the picture is sent at once and again after bus events on the given topics (a burst
makes one push, at most every ``PUSH_MIN_INTERVAL_S``) or every ``REFRESH_S`` without events
(deadlines that pass without an event); an unchanged picture is not sent again.  Each push
re-checks the sign-in (a logout, a removed user or a changed role ends it), a foreign page
cannot open it (:func:`same_origin`), and at shutdown every open socket is closed with 1001.
:func:`holds_now` tells both live pages which calls are on hold and since when.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from yarl import URL

from ..calls.views import Hold, holds
from ..events import Event
from ..i18n import Text
from ..storage.models import User
from .auth import signed_in_now
from .errors import ApiError, json_ok
from .pages import services_of

__all__ = ["holds_now", "live_picture", "same_origin", "setup_push"]

PUSH_MIN_INTERVAL_S = 0.25
"""Bursts of events (a call answered, bridged, an operator rung …) make one push."""
REFRESH_S = 5.0
"""Without events the picture is re-read this often (wrap-up limits, a phone expiring)."""

log = logging.getLogger(__name__)

Picture = Callable[[web.Request], Awaitable[dict[str, Any]]]
Relevant = Callable[[Event], bool]

OPEN_SOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("push_sockets", set)


def setup_push(app: web.Application) -> None:
    """Keep track of open pushes so that shutdown can close them (once per app)."""
    if OPEN_SOCKETS not in app:
        app[OPEN_SOCKETS] = set()
        app.on_shutdown.append(_close_sockets)


def holds_now(request: web.Request) -> dict[str, Hold]:
    """The live calls on hold now, by call id ({} when call control does not run)."""
    center = services_of(request).calls
    return {} if center is None else holds(center)


async def _close_sockets(app: web.Application) -> None:
    """At shutdown the pages are told so (1001) instead of holding the stop for a minute."""
    for socket in list(app[OPEN_SOCKETS]):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


async def live_picture(request: web.Request, picture: Picture, *, topics: tuple[str, ...],
                       may: Callable[[User], bool],
                       relevant: Relevant | None = None) -> web.StreamResponse:
    """``picture`` as JSON, or pushed over a WebSocket while ``may(user)`` holds; only bus
    events on ``topics`` for which ``relevant(event)`` holds (all of them by default) make
    it read the picture again."""
    socket = web.WebSocketResponse(heartbeat=30.0)
    if not socket.can_prepare(request).ok:
        return json_ok(await picture(request))
    if not same_origin(request):
        # A page of another site cannot open the push with the user's cookies.
        raise ApiError(403, "forbidden", Text("api.error.forbidden"))
    first = await picture(request)  # an ApiError (503 …) answers before the upgrade
    await socket.prepare(request)
    sockets = request.app[OPEN_SOCKETS]
    sockets.add(socket)
    try:
        await _push(request, socket, picture, first, topics=topics, may=may,
                    relevant=relevant)
    finally:
        sockets.discard(socket)
    return socket


def same_origin(request: web.Request) -> bool:
    """Whether the page opening a WebSocket is ours: no Origin (not a browser page), or its
    host and port are the ones the request was sent to (``Host``) or those of ``[web]
    public_url`` (a proxy in front may rewrite Host).  The scheme is not compared: a proxy
    that ends TLS talks plain HTTP to us."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    try:
        seen = URL(origin)
        if seen.scheme not in ("http", "https") or not seen.host:
            return False  # "null" (a sandboxed or file page) and anything else unusual
        host = URL(f"{seen.scheme}://{request.host}")
        ours = {(host.host, host.port)}
    except ValueError:
        return False
    public = str(services_of(request).config.get("web", "public_url") or "")
    if public:
        with contextlib.suppress(ValueError):
            ours.add((URL(public).host, URL(public).port))
    return (seen.host, seen.port) in ours


async def _push(request: web.Request, socket: web.WebSocketResponse, picture: Picture,
                first: dict[str, Any], *, topics: tuple[str, ...],
                may: Callable[[User], bool], relevant: Relevant | None) -> None:
    """Send the picture now and whenever the bus says something changed, until the page
    closes (a message from the page is ignored; closing it ends the push)."""
    changed = asyncio.Event()
    subscription = services_of(request).bus.subscribe(*topics)

    async def watch() -> None:
        while True:
            event = await subscription.get()
            if relevant is None or relevant(event):
                changed.set()

    async def listen() -> None:
        async for message in socket:
            if message.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                break

    watcher = asyncio.create_task(watch(), name="push-watch")
    reader = asyncio.create_task(listen(), name="push-read")
    last: str | None = None
    current: dict[str, Any] | None = first
    try:
        while not reader.done() and not socket.closed:
            if current is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), REFRESH_S)
                changed.clear()
                user = await signed_in_now(request)
                if user is None or not may(user):
                    log.debug("push to %s: the sign-in is gone", request.path)
                    break  # signed out, removed or another role now: the push ends with it
                try:
                    current = await picture(request)
                except ApiError:  # the service behind the picture stopped under the page
                    break
            text = json.dumps(current, ensure_ascii=False)
            current = None
            if text != last:
                await socket.send_str(text)
                last = text
            await asyncio.sleep(PUSH_MIN_INTERVAL_S)
    except ConnectionError:
        log.debug("push to %s: the page went away", request.path)
    finally:
        log.debug("push to %s ends (page closed: %s, socket closed: %s)", request.path,
                  reader.done(), socket.closed)
        watcher.cancel()
        reader.cancel()
        await asyncio.gather(watcher, reader, return_exceptions=True)
        subscription.close()
        await socket.close()

"""«Скорость соединения» in the header: the browser times a download from this server.

The figure is measured, not assumed: app.js fetches :data:`PAYLOAD` (random bytes, so a
compressing proxy on the way cannot shrink them) and divides its size by the time the request
took, round trip included — the throughput the user's browser gets from the call center, not
the line's nominal speed.  A browser keeps the figure for half an hour, so pages do not repeat
the download (half a megabyte).
"""

from __future__ import annotations

import os

from aiohttp import web

from .auth import ALL_ROLES, route

PAYLOAD = os.urandom(512 * 1024)


async def api_link_speed(request: web.Request) -> web.Response:
    """Random bytes for the browser to time (the header's «Скорость соединения»)."""
    return web.Response(body=PAYLOAD, content_type="application/octet-stream")


def setup_routes(app: web.Application) -> None:
    route(app, "GET", "/api/v1/link-speed", api_link_speed, roles=ALL_ROLES, api=True)

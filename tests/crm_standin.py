"""A Bitrix24 stand-in for the CRM tests: the lead import over HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer


class Crm:
    """The lead import of a Bitrix24: answers from ``replies`` in turn (the last repeats)."""

    def __init__(self) -> None:
        self.forms: list[dict[str, str]] = []
        self.replies: list[tuple[int, str]] = [
            (200, "{'error':'201','ID':'501','error_message':'Лид добавлен'}")]

    async def handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.forms.append({k: str(v) for k, v in form.items()})
        status, body = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        return web.Response(status=status, text=body)


@pytest.fixture
async def crm() -> AsyncIterator[tuple[Crm, str]]:
    """The stand-in and its base URL (for a project's «Bitrix хост»)."""
    stand_in = Crm()
    app = web.Application()
    app.router.add_post("/crm/configs/import/lead.php", stand_in.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield stand_in, f"http://127.0.0.1:{server.port}"
    await server.close()

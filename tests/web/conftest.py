"""Web fixtures: a real aiohttp server on 127.0.0.1 (port 0) over a real SQLite file."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).parent))

from fake_calls import FakeCallLayer, StartDialer
from webtools import Site, make_config

from sipspeak.app import Services
from sipspeak.dialer.runtime import CampaignRuntime
from sipspeak.storage import Database
from sipspeak.web.app import create_app


async def _site(tmp_path: Path, overrides: dict[tuple[str, str], object] | None = None,
                ) -> AsyncIterator[Site]:
    config = make_config(tmp_path, overrides)
    db = await Database.open(config.database_path)
    services = Services(config=config, db=db)
    server = TestServer(create_app(services), host="127.0.0.1", port=0)
    await server.start_server()
    s = Site(server=server, services=services, db=db, base=str(server.make_url("/")),
             browsers=[], users={})
    try:
        yield s
    finally:
        for b in s.browsers:
            await b.close()
        await server.close()
        await db.close()


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async for s in _site(tmp_path):
        yield s


@pytest.fixture
async def proxied_site(tmp_path: Path) -> AsyncIterator[Site]:
    """The site behind a reverse proxy on 127.0.0.1 (``[web] trusted_proxies``)."""
    async for s in _site(tmp_path, {("web", "trusted_proxies"): ["127.0.0.1"]}):
        yield s


@pytest.fixture
async def staff(site: Site) -> Site:
    """An admin, a supervisor and an operator (password PASSWORD)."""
    await site.user("admin", "admin@test.ru", full_name="Админ")
    await site.user("supervisor", "sup@test.ru", full_name="Супервайзер")
    await site.user("operator", "oper@test.ru", full_name="Оператор", extension="333")
    return site



@pytest.fixture
async def start_dialer(staff: Site) -> AsyncIterator[StartDialer]:
    """``await start_dialer()`` starts the real campaign runtime on the site's storage and bus
    (the projects it finds launched) over a call layer that records what it is asked
    (tests/fake_calls.py), and wires it into the site's services; stopped at the end."""
    started: list[CampaignRuntime] = []

    async def start() -> tuple[CampaignRuntime, FakeCallLayer]:
        calls = FakeCallLayer()
        runtime = CampaignRuntime(db=staff.db, bus=staff.services.bus, calls=calls,
                                  ringer=calls, tick_ms=20)
        await runtime.start()
        started.append(runtime)
        staff.services.campaigns = runtime
        return runtime, calls

    try:
        yield start
    finally:
        staff.services.campaigns = None
        for runtime in started:
            await runtime.aclose()

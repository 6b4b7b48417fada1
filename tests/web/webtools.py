"""Helpers of the web tests: a browser-like client per user, the running site, test users.

Imported by the tests as ``from webtools import ...`` (conftest puts this folder on sys.path).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from sipspeak.accounts import create_token
from sipspeak.app import Services
from sipspeak.config import load_config
from sipspeak.security import hash_password
from sipspeak.storage import Database

PASSWORD = "secret-pass-1"
_HASH: dict[str, str] = {}
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
_LOGIN_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


def password_hash() -> str:
    # scrypt is slow on purpose; one hash serves every test user.
    if PASSWORD not in _HASH:
        _HASH[PASSWORD] = hash_password(PASSWORD)
    return _HASH[PASSWORD]


class Browser:
    """One client with its own cookie jar (a signed-in user, or anonymous)."""

    def __init__(self, base: str, *, bearer: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        headers = dict(headers or {})
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        self.session = aiohttp.ClientSession(
            base_url=base, cookie_jar=aiohttp.CookieJar(unsafe=True), headers=headers,
            timeout=aiohttp.ClientTimeout(total=30))
        self.csrf = ""

    async def close(self) -> None:
        await self.session.close()

    async def login(self, email: str, password: str = PASSWORD) -> aiohttp.ClientResponse:
        page = await self.session.get("/login")
        token = _LOGIN_CSRF.search(await page.text())
        assert token is not None
        response = await self.session.post("/login", data={
            "email": email, "password": password, "csrf": token.group(1)},
            allow_redirects=False)
        if response.status == 303:
            home = await self.session.get("/profile/devices")
            found = _CSRF_META.search(await home.text())
            assert found is not None
            self.csrf = found.group(1)
        return response

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        kwargs.setdefault("allow_redirects", False)
        return self.session.request(method, path, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self.request("GET", path, **kwargs)

    async def form(self, path: str, data: Any, *, csrf: bool = True) -> aiohttp.ClientResponse:
        if isinstance(data, dict):
            data = list(data.items())
        if csrf:
            data = [*data, ("csrf", self.csrf)]
        return await self.request("POST", path, data=data)

    async def api(self, method: str, path: str, body: Any = None, *,
                  csrf: bool = True) -> aiohttp.ClientResponse:
        headers = {"X-CSRF-Token": self.csrf} if csrf and self.csrf else {}
        return await self.request(method, path, json=body, headers=headers)


@dataclass
class Site:
    server: TestServer
    services: Services
    db: Database
    base: str
    browsers: list[Browser]
    users: dict[str, int]

    def browser(self, *, bearer: str | None = None,
                headers: dict[str, str] | None = None) -> Browser:
        b = Browser(self.base, bearer=bearer, headers=headers)
        self.browsers.append(b)
        return b

    async def user(self, role: str, email: str, *, full_name: str | None = None,
                   extension: str | None = None) -> int:
        user_id = await self.db.users.create(
            role=role, full_name=full_name or email.split("@")[0], email=email,  # type: ignore[arg-type]
            password_hash=password_hash(), extension=extension,
            sip_password="sip-pass-123" if extension else None)
        self.users[email] = user_id
        return user_id

    async def signed_in(self, email: str) -> Browser:
        b = self.browser()
        response = await b.login(email)
        assert response.status == 303, await response.text()
        return b

    async def token_for(self, email: str) -> str:
        return await create_token(self.db, email, name="test")

    async def api_get(self, email: str, path: str) -> tuple[int, Any]:
        """GET an API path with a token of ``email``'s user: (status, JSON body)."""
        api = self.browser(bearer=await self.token_for(email))
        response = await api.get(path)
        return response.status, await response.json()


def make_config(tmp_path: Path, overrides: dict[tuple[str, str], Any] | None = None) -> Any:
    config = load_config(None, environ={})
    values: dict[tuple[str, str], Any] = {("storage", "data_dir"): str(tmp_path / "data")}
    values.update(overrides or {})
    return config.with_overrides(values)


__all__ = ["PASSWORD", "Browser", "Site", "make_config", "password_hash"]

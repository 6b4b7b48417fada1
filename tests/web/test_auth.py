"""Sign-in, sessions, CSRF, bearer tokens and the login rate limit."""

from __future__ import annotations

import re

from aiohttp import ClientResponse
from webtools import PASSWORD, Site

from sipspeak.events import EventBus
from sipspeak.web.auth import SESSION_COOKIE, LoginLimiter


async def test_login_sets_a_hardened_cookie_and_logout_ends_the_session(staff: Site) -> None:
    b = staff.browser()
    response = await b.login("admin@test.ru")
    assert response.status == 303
    assert response.headers["Location"] == "/"
    cookie = response.cookies[SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and not cookie["secure"]
    page = await b.get("/")
    assert page.status == 200
    assert "Дашборд" in await page.text()
    out = await b.form("/logout", {})
    assert out.status == 303 and out.headers["Location"] == "/login"
    again = await b.get("/")
    assert again.status == 302 and again.headers["Location"].startswith("/login")


async def _login_over(site: Site, headers: dict[str, str]) -> ClientResponse:
    """Log in with ``headers`` on the form post only (the proxy's view of one request)."""
    b = site.browser()
    page = await b.get("/login")
    token = re.search(r'name="csrf" value="([^"]*)"', await page.text())
    assert token
    return await b.request("POST", "/login", data={
        "email": "admin@test.ru", "password": PASSWORD, "csrf": token.group(1)},
        headers=headers)


async def test_session_cookie_is_secure_behind_https_proxy(proxied_site: Site) -> None:
    await proxied_site.user("admin", "admin@test.ru")
    response = await _login_over(proxied_site, {"X-Forwarded-Proto": "https"})
    assert response.status == 303
    assert response.cookies[SESSION_COOKIE]["secure"]
    plain = await _login_over(proxied_site, {})
    assert plain.status == 303
    assert not plain.cookies[SESSION_COOKIE]["secure"]


async def test_x_forwarded_proto_from_an_untrusted_peer_is_ignored(staff: Site) -> None:
    response = await _login_over(staff, {"X-Forwarded-Proto": "https"})
    assert response.status == 303
    assert not response.cookies[SESSION_COOKIE]["secure"]


async def test_wrong_password_and_unknown_user_are_refused(staff: Site) -> None:
    b = staff.browser()
    assert (await b.login("admin@test.ru", "wrong-password")).status == 401
    assert (await b.login("nobody@test.ru")).status == 401
    assert (await b.get("/")).status == 302


async def test_login_without_the_form_token_is_refused(staff: Site) -> None:
    b = staff.browser()
    response = await b.request("POST", "/login", data={"email": "admin@test.ru",
                                                       "password": PASSWORD})
    assert response.status == 403
    assert SESSION_COOKIE not in response.cookies


async def test_login_rate_limit_blocks_even_the_right_password(staff: Site) -> None:
    b = staff.browser()
    for _ in range(10):
        assert (await b.login("admin@test.ru", "bad-guess")).status == 401
    blocked = await b.login("admin@test.ru")
    assert blocked.status == 429
    assert "Слишком много" in await blocked.text()


def test_limiter_window_slides() -> None:
    limiter = LoginLimiter(max_failures=3, window_s=60)
    for t in (0.0, 1.0, 2.0):
        limiter.failed("10.0.0.1", t)
    assert limiter.blocked("10.0.0.1", 3.0)
    assert not limiter.blocked("10.0.0.2", 3.0)
    assert not limiter.blocked("10.0.0.1", 60.5)


async def test_next_parameter_only_goes_to_local_paths(staff: Site) -> None:
    b = staff.browser()
    first = await b.get("/profile/devices")
    assert first.status == 302
    from urllib.parse import unquote
    assert unquote(first.headers["Location"]) == "/login?next=/profile/devices"
    page = await b.get("/login?next=//evil.example/")
    import re
    token = re.search(r'name="csrf" value="([^"]*)"', await page.text())
    assert token
    response = await b.request("POST", "/login", data={
        "email": "admin@test.ru", "password": PASSWORD, "csrf": token.group(1),
        "next": "//evil.example/"})
    assert response.headers["Location"] == "/"


async def test_unsafe_request_without_csrf_is_refused(staff: Site) -> None:
    b = await staff.signed_in("oper@test.ru")
    refused = await b.api("POST", "/api/v1/agent/state", {"state": "available"}, csrf=False)
    assert refused.status == 403
    assert (await refused.json())["error"]["code"] == "csrf"
    wrong = await b.request("POST", "/api/v1/agent/state", json={"state": "available"},
                            headers={"X-CSRF-Token": "forged"})
    assert wrong.status == 403
    form = await b.form("/logout", {}, csrf=False)
    assert form.status == 403
    assert (await b.get("/")).status == 200  # still signed in
    ok = await b.api("POST", "/api/v1/agent/state", {"state": "available"})
    assert ok.status == 200


async def test_bearer_token_needs_no_csrf_and_a_bad_token_gets_401(staff: Site) -> None:
    token = await staff.token_for("admin@test.ru")
    api = staff.browser(bearer=token)
    me = await api.get("/api/v1/me")
    assert me.status == 200
    assert (await me.json())["email"] == "admin@test.ru"
    changed = await api.api("POST", "/api/v1/me/language", {"language": "en"})
    assert changed.status == 200
    bad = staff.browser(bearer="ssk_not-a-token")
    refused = await bad.get("/api/v1/me")
    assert refused.status == 401
    body = await refused.json()
    assert body["error"]["code"] == "unauthorized"


async def test_removed_user_loses_session_and_token(staff: Site) -> None:
    b = await staff.signed_in("oper@test.ru")
    token = await staff.token_for("oper@test.ru")
    await staff.db.users.soft_delete(staff.users["oper@test.ru"])
    assert (await b.get("/")).status == 302
    assert (await staff.browser(bearer=token).get("/api/v1/me")).status == 401


async def test_agent_state_is_recorded_and_published(staff: Site) -> None:
    bus: EventBus = staff.services.bus
    subscription = bus.subscribe("agent.")
    b = await staff.signed_in("oper@test.ru")
    response = await b.api("POST", "/api/v1/agent/state", {"state": "pause"})
    assert response.status == 200
    event = subscription.queue.get_nowait()
    assert event.topic == "agent.state"
    assert event.data["state"] == "pause"
    assert event.data["user_id"] == staff.users["oper@test.ru"]
    state = await (await b.get("/api/v1/agent/state")).json()
    assert state["state"] == "pause"
    await b.form("/logout", {})
    offline = subscription.queue.get_nowait()
    assert (offline.topic, offline.data["state"]) == ("agent.state", "offline")
    again = await staff.signed_in("oper@test.ru")
    bad = await again.api("POST", "/api/v1/agent/state", {"state": "sleeping"})
    assert bad.status == 422
    assert (await bad.json())["error"]["field"] == "state"


async def test_user_language_switches_the_ui_to_english(staff: Site) -> None:
    b = await staff.signed_in("admin@test.ru")
    assert "Выход из системы" in await (await b.get("/")).text()
    assert (await b.form("/profile/language", {"language": "en"})).status == 303
    text = await (await b.get("/")).text()
    assert "Sign out" in text and 'lang="en"' in text


async def test_notifications_show_and_can_be_marked_read(staff: Site) -> None:
    uid = staff.users["oper@test.ru"]
    note = await staff.db.notifications.add(text="Проект запущен", user_id=uid)
    other = await staff.db.notifications.add(text="чужое", user_id=staff.users["admin@test.ru"])
    b = await staff.signed_in("oper@test.ru")
    assert "Проект запущен" in await (await b.get("/")).text()
    assert (await b.api("POST", f"/api/v1/notifications/{other}/read")).status == 404
    assert (await b.api("POST", f"/api/v1/notifications/{note}/read")).status == 200
    items = (await (await b.get("/api/v1/notifications")).json())["items"]
    assert items == []


async def test_api_tokens_of_the_caller(staff: Site) -> None:
    b = await staff.signed_in("oper@test.ru")
    created = await b.api("POST", "/api/v1/tokens", {"name": "crm"})
    assert created.status == 201
    token = (await created.json())["token"]
    api = staff.browser(bearer=token)
    assert (await (await api.get("/api/v1/me")).json())["email"] == "oper@test.ru"
    listed = await (await b.get("/api/v1/tokens")).json()
    assert [t["name"] for t in listed["items"]] == ["crm"]
    assert "token" not in listed["items"][0]
    other = await staff.token_for("admin@test.ru")
    admin_tokens = await staff.db.tokens.list_for(staff.users["admin@test.ru"])
    assert (await b.api("DELETE", f"/api/v1/tokens/{admin_tokens[0].id}")).status == 404
    assert (await b.api("DELETE", f"/api/v1/tokens/{listed['items'][0]['id']}")).status == 200
    assert (await api.get("/api/v1/me")).status == 401
    assert (await staff.browser(bearer=other).get("/api/v1/me")).status == 200


async def test_security_headers(staff: Site) -> None:
    b = await staff.signed_in("admin@test.ru")
    page = await b.get("/")
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Cache-Control"] == "no-store"
    assert "Всего:" in await page.text()


async def test_page_forms_without_csrf_change_nothing(staff: Site) -> None:
    b = await staff.signed_in("admin@test.ru")
    refused = await b.form("/settings/groups", {"name": "Взлом"}, csrf=False)
    assert refused.status == 403
    forged = await b.form("/settings/groups", [("name", "Взлом"), ("csrf", "forged")], csrf=False)
    assert forged.status == 403
    assert await staff.db.groups.list() == []
    import aiohttp
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("file", b"data", filename="a.txt")
    upload = await b.request("POST", "/files/upload", data=form)
    assert upload.status == 403
    assert await staff.db.files.total_size() == 0


async def test_expired_session_is_not_accepted(staff: Site) -> None:
    from sipspeak.security import token_digest
    from sipspeak.storage import now_ms

    await staff.db.sessions.create(id_hash=token_digest("old-session"),
                                   user_id=staff.users["admin@test.ru"], csrf_token="t",
                                   expires_at=now_ms() - 1)
    await staff.db.sessions.create(id_hash=token_digest("live-session"),
                                   user_id=staff.users["admin@test.ru"], csrf_token="t",
                                   expires_at=now_ms() + 60_000)
    live = staff.browser()
    live.session.cookie_jar.update_cookies({SESSION_COOKIE: "live-session"})
    assert (await live.get("/")).status == 200  # the cookie does reach the server
    b = staff.browser()
    b.session.cookie_jar.update_cookies({SESSION_COOKIE: "old-session"})
    assert (await b.get("/")).status == 302
    assert (await b.get("/api/v1/me")).status == 401


async def test_language_switch_redirects_only_within_the_site(staff: Site) -> None:
    b = await staff.signed_in("admin@test.ru")
    evil = await b.request("POST", "/profile/language",
                           data={"language": "ru", "csrf": b.csrf},
                           headers={"Referer": f"{staff.base.rstrip('/')}//evil.example/"})
    assert evil.status == 303 and evil.headers["Location"] == "/"
    back = await b.request("POST", "/profile/language",
                           data={"language": "ru", "csrf": b.csrf},
                           headers={"Referer": f"{staff.base.rstrip('/')}/blacklist?q=1"})
    assert back.headers["Location"] == "/blacklist?q=1"


async def test_behind_a_trusted_proxy_failures_count_per_forwarded_client(
        proxied_site: Site) -> None:
    site = proxied_site
    await site.user("admin", "admin@test.ru")
    # The proxy appends the client it saw; what the client wrote itself is further left.
    attacker = site.browser(headers={"X-Forwarded-For": "10.9.9.9, 203.0.113.7"})
    for _ in range(10):
        assert (await attacker.login("admin@test.ru", "bad-guess")).status == 401
    assert (await attacker.login("admin@test.ru")).status == 429
    # Changing the part the client controls does not help him...
    spoofing = site.browser(headers={"X-Forwarded-For": "10.1.1.1, 203.0.113.7"})
    assert (await spoofing.login("admin@test.ru")).status == 429
    # ...and another client behind the same proxy is not locked out with him.
    colleague = site.browser(headers={"X-Forwarded-For": "198.51.100.20"})
    assert (await colleague.login("admin@test.ru")).status == 303


async def test_forwarded_headers_from_an_untrusted_peer_are_ignored(staff: Site) -> None:
    # No trusted proxies: X-Forwarded-For cannot split one client into many.
    attempts = [staff.browser(headers={"X-Forwarded-For": f"192.0.2.{i}"})
                for i in range(11)]
    for b in attempts[:10]:
        assert (await b.login("admin@test.ru", "bad-guess")).status == 401
    assert (await attempts[10].login("admin@test.ru")).status == 429

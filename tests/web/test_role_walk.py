"""Every route of the route table, called by every role, answers exactly what the table says.

anonymous → 302 to /login (pages) or 401 (API); a role outside the route's roles → 403;
an allowed role → 200 for GET (with ids it may see), and for unsafe methods (sent with the
CSRF token and an empty body, ids that do not exist) anything but 401/403/5xx; 503 (a part
that is not started in tests, e.g. call control) is accepted for allowed roles only.
"""

from __future__ import annotations

import re

import aiohttp
from webtools import Browser, Site

from sipspeak.storage.models import NewContact
from sipspeak.web.auth import ROUTE_TABLE, RouteSpec

ROLES = ("operator", "supervisor", "admin")
_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")
MISSING = "999999"


async def world(site: Site) -> dict[str, str]:
    """Objects every role may see: the supervisor's project, its group with the operator."""
    db = site.db
    sup, oper = site.users["sup@test.ru"], site.users["oper@test.ru"]
    group = await db.groups.create("Смена 1")
    await db.groups.add_members(group, [oper])
    project = await db.projects.create("Проект", supervisor_id=sup)
    await db.projects.set_groups(project, [group])
    status = await db.statuses.create("Перезвонить", "#ff0000")
    trunk = await db.trunks.create(name="zadarma", host="sip:zadarma.com")
    folder = await db.files.create_folder("Общее")
    files_dir = site.services.config.files_dir
    files_dir.mkdir(parents=True, exist_ok=True)
    (files_dir / ("a" * 32)).write_bytes(b"x")
    file_id = await db.files.add_file(name="x.txt", stored_name="a" * 32, size=1)
    note = await db.notifications.add(text="n")
    upload = await db.uploads.create(project_id=project, filename="base.xlsx")
    await db.contacts.insert_many(project_id=project, upload_id=upload,
                                  contacts=[NewContact(phone="+79228711345")])
    contact = (await db.contacts.list(project_id=project))[0].id
    recordings = site.services.config.recordings_dir
    recordings.mkdir(parents=True, exist_ok=True)
    (recordings / "call.wav").write_bytes(b"RIFF")
    call = await db.calls.open(direction="outbound", started_at=1, project_id=project,
                               recording_path=str(recordings / "call.wav"))
    return {"users": str(oper), "groups": str(group), "projects": str(project),
            "statuses": str(status), "trunks": str(trunk), "folders": str(folder),
            "files": str(file_id), "notifications": str(note), "uploads": str(upload),
            "contacts": str(contact), "calls": str(call), "phone": "+79228711345"}


def concrete(spec: RouteSpec, ids: dict[str, str], *, existing: bool) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if not existing:
            return MISSING
        if name == "phone":
            return ids["phone"]
        if name.endswith("_id") and name[:-3] + "s" in ids:  # user_id → users, …
            return ids[name[:-3] + "s"]
        before = spec.path[:match.start()].rstrip("/").split("/")
        for part in reversed(before):
            if part in ids:
                return ids[part]
        return ids.get("projects", MISSING)

    return _PARAM.sub(value, spec.path)


async def call(browser: Browser, spec: RouteSpec, path: str) -> aiohttp.ClientResponse:
    if spec.method == "GET":
        return await browser.get(path)
    if spec.api:
        return await browser.api(spec.method, path, {})
    return await browser.form(path, {})


async def test_every_route_for_every_role(staff: Site) -> None:
    ids = await world(staff)
    table = staff.server.app[ROUTE_TABLE]
    assert len(table) > 40
    browsers: dict[str, Browser] = {"anonymous": staff.browser()}
    emails = {"operator": "oper@test.ru", "supervisor": "sup@test.ru", "admin": "admin@test.ru"}
    for role in ROLES:
        browsers[role] = await staff.signed_in(emails[role])
    # Safe methods first, unsafe ones after (on ids that do not exist), sign-out last.
    ordered = sorted(table, key=lambda s: (s.method != "GET", s.path == "/logout"))
    failures: list[str] = []
    for spec in ordered:
        get = spec.method == "GET"
        path = concrete(spec, ids, existing=get)
        for role, browser in browsers.items():
            response = await call(browser, spec, path)
            status = response.status
            where = f"{role:10} {spec.method} {path} → {status}"
            if status >= 500 and not (status == 503 and role in spec.roles):
                # 503 is the deliberate answer of a part that is not running (call control
                # in these tests); any other 5xx is a bug.
                failures.append(where + " (server error)")
            elif status == 503:
                continue
            elif role == "anonymous":
                expected = 401 if spec.api else 302
                if status != expected:
                    failures.append(where + f" (expected {expected})")
                elif status == 302 and not response.headers["Location"].startswith("/login"):
                    failures.append(where + " (not to /login)")
                elif status == 401:
                    body = await response.json()
                    assert body["error"]["code"] == "unauthorized"
            elif role not in spec.roles:
                if status != 403:
                    failures.append(where + " (expected 403)")
                elif spec.api:
                    assert (await response.json())["error"]["code"] == "forbidden"
            elif get and status != 200:
                failures.append(where + " (expected 200)")
            elif not get and status in (401, 403):
                failures.append(where + " (allowed role refused)")
    assert not failures, "\n".join(failures)


async def test_openapi_lists_every_api_route_with_a_summary(staff: Site) -> None:
    api = staff.browser(bearer=await staff.token_for("oper@test.ru"))
    document = await (await api.get("/api/v1/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    table = staff.server.app[ROUTE_TABLE]
    for spec in table:
        if not spec.api:
            continue
        path = _PARAM.sub(lambda m: "{" + m.group(1) + "}", spec.path)
        operation = document["paths"][path][spec.method.lower()]
        assert operation["summary"]
        for name in _PARAM.findall(spec.path):
            assert any(p["name"] == name and p["in"] == "path" for p in operation["parameters"])
    create_user = document["paths"]["/api/v1/users"]["post"]
    schema = create_user["requestBody"]["content"]["application/json"]["schema"]
    assert "email" in schema["required"]
    assert document["components"]["schemas"]["Error"]["required"] == ["error"]
    upload = document["paths"]["/api/v1/files"]["post"]["requestBody"]["content"]
    assert upload["multipart/form-data"]["schema"]["properties"]["file"]["format"] == "binary"

"""Settings → Транки: the «Робот» flag (manual §4.4) through the REST API and the page's form."""

from __future__ import annotations

import re

from webtools import Site


def robot_cell(page: str, trunk_id: int) -> str:
    row = re.search(rf'<tr data-trunk="{trunk_id}">(.*?)</tr>\s*(?:<tr|</tbody>)', page,
                    re.DOTALL)
    assert row is not None
    cell = re.search(r'<td class="robot">([^<]*)</td>', row.group(1))
    assert cell is not None
    return cell.group(1).strip()


async def test_robot_flag_through_the_api(staff: Site) -> None:
    api = staff.browser(bearer=await staff.token_for("admin@test.ru"))
    created = await api.api("POST", "/api/v1/trunks", {
        "name": "voicebot", "host": "sip:bot@127.0.0.1:5090", "robot": True})
    assert created.status == 201, await created.text()
    trunk = await created.json()
    assert trunk["robot"] is True
    assert (await staff.db.trunks.get(trunk["id"])).robot is True
    plain = await (await api.api("POST", "/api/v1/trunks", {
        "name": "zadarma", "host": "sip:1.2.3.4"})).json()
    assert plain["robot"] is False  # off unless asked for

    # Only the fields given change: a PATCH without «robot» keeps it.
    renamed = await api.api("PATCH", f"/api/v1/trunks/{trunk['id']}", {"name": "voicebot 2"})
    assert (await renamed.json())["robot"] is True
    off = await api.api("PATCH", f"/api/v1/trunks/{trunk['id']}", {"robot": False})
    assert off.status == 200 and (await off.json())["robot"] is False
    assert (await staff.db.trunks.get(trunk["id"])).robot is False

    # Not a yes/no: refused with the field named, nothing changed.
    bad = await api.api("PATCH", f"/api/v1/trunks/{plain['id']}",
                        {"robot": "maybe", "name": "renamed"})
    assert bad.status == 422
    error = (await bad.json())["error"]
    assert error["field"] == "robot"
    stored = await staff.db.trunks.get(plain["id"])
    assert stored.robot is False and stored.name == "zadarma"

    listed = {t["name"]: t["robot"] for t in (await (await api.get("/api/v1/trunks")).json())["items"]}
    assert listed == {"voicebot 2": False, "zadarma": False}

    # A supervisor sees the flag but may not change it.
    sup = staff.browser(bearer=await staff.token_for("sup@test.ru"))
    seen = await (await sup.get(f"/api/v1/trunks/{trunk['id']}")).json()
    assert seen["robot"] is False
    refused = await sup.api("PATCH", f"/api/v1/trunks/{trunk['id']}", {"robot": True})
    assert refused.status == 403
    assert (await staff.db.trunks.get(trunk["id"])).robot is False


async def test_robot_flag_in_the_trunks_form_and_list(staff: Site) -> None:
    b = await staff.signed_in("admin@test.ru")
    made = await b.form("/settings/trunks", {"name": "voicebot", "host": "sip:127.0.0.1:5090",
                                            "active": "1", "robot": "1"})
    assert made.status == 303
    trunk = (await staff.db.trunks.list())[0]
    assert trunk.robot and trunk.active
    page = await (await b.get("/settings/trunks")).text()
    assert robot_cell(page, trunk.id) == "Активно"
    # The edit form shows the box ticked.
    assert re.search(r'name="robot" value="1"\s+checked', page)

    # The edit form sends every field; an unticked box is absent: the flag goes off.
    saved = await b.form(f"/settings/trunks/{trunk.id}", {
        "name": "voicebot", "host": "sip:127.0.0.1:5090", "active": "1"})
    assert saved.status == 303
    assert (await staff.db.trunks.get(trunk.id)).robot is False
    page = await (await b.get("/settings/trunks")).text()
    assert robot_cell(page, trunk.id) == "Не активно"

    back = await b.form(f"/settings/trunks/{trunk.id}", {
        "name": "voicebot", "host": "sip:127.0.0.1:5090", "active": "1", "robot": "on"})
    assert back.status == 303 and (await staff.db.trunks.get(trunk.id)).robot is True

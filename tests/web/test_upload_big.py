"""A big base through the API imports completely, streamed, while the server keeps answering.

20,000 rows (a 100,000-row file takes about a minute on a busy two-core machine: the
import itself is measured outside the test suite).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import openpyxl
from webtools import Site

ROWS = 20_000


def big_xlsx(path: Path) -> None:
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("База")
    sheet.append(["Телефон", "ФИО", "Город"])
    for i in range(ROWS):
        sheet.append([f"7922{i:07d}", f"Клиент {i}", "Оренбург"])
    book.save(path)


async def test_a_big_xlsx_imports_completely(staff: Site, tmp_path: Path) -> None:
    pid = await staff.db.projects.create("Большая база")
    path = tmp_path / "big.xlsx"
    await asyncio.to_thread(big_xlsx, path)
    api = staff.browser(bearer=await staff.token_for("admin@test.ru"))
    body = aiohttp.FormData()
    with path.open("rb") as source:
        body.add_field("file", source, filename="big.xlsx")
        sent = await api.request("POST", f"/api/v1/projects/{pid}/uploads/files", data=body)
        assert sent.status == 201, await sent.text()
    preview = await sent.json()
    assert preview["mapping"] == ["phone", "full_name", "city"]
    started = await api.api("POST", f"/api/v1/projects/{pid}/uploads",
                            {"file": preview["file"], "tags": ["Большая"]})
    assert started.status == 202
    upload_id = (await started.json())["upload_id"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    seen: list[int] = []
    while True:
        progress = await (await api.get(f"/api/v1/uploads/{upload_id}/progress")).json()
        seen.append(progress["rows_done"])
        if progress["state"] != "running":
            break
        # the server serves other requests during the import
        assert (await api.get("/healthz")).status == 200
        assert loop.time() < deadline, f"import still running: {progress}"
        await asyncio.sleep(0.2)
    assert progress["state"] == "done", progress
    assert seen == sorted(seen)  # progress only moves forward
    result = await (await api.get(f"/api/v1/uploads/{upload_id}/result")).json()
    assert (result["rows"], result["accepted"], result["rejected_count"]) == (ROWS, ROWS, 0)
    assert await staff.db.contacts.count(project_id=pid) == ROWS
    upload = await staff.db.uploads.get(upload_id)
    assert (upload.rows_total, upload.rows_accepted, upload.tags) == (ROWS, ROWS, ("Большая",))
    last = (await staff.db.contacts.list(project_id=pid, limit=1, offset=ROWS - 1))[0]
    assert (last.phone, last.full_name) == (f"+7922{ROWS - 1:07d}", f"Клиент {ROWS - 1}")

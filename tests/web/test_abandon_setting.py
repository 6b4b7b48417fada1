"""The queue tab's «Сообщение, если оператор не ответил»: a WAV of the file manager, checked
when it is chosen; the page offers the WAV files."""

from __future__ import annotations

import wave

from webtools import Site


async def test_only_a_wav_that_plays_can_be_chosen(staff: Site) -> None:
    files = staff.services.config.files_dir
    files.mkdir(parents=True, exist_ok=True)
    with wave.open(str(files / "s1.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * 800)
    (files / "s2.wav").write_bytes(b"not a wav at all")
    (files / "s3.pdf").write_bytes(b"%PDF")
    db = staff.db
    good = await db.files.add_file(name="Заняты.wav", stored_name="s1.wav", size=1644)
    broken = await db.files.add_file(name="Битый.WAV", stored_name="s2.wav", size=16)
    await db.files.add_file(name="Прайс.pdf", stored_name="s3.pdf", size=4)
    project = await db.projects.create("Продажи")
    admin = await staff.signed_in("admin@test.ru")
    path = f"/api/v1/projects/{project}"
    for value, field_error in ((good + 100, "не найден"), (broken, "не читается как WAV")):
        answer = await admin.api("PATCH", path, {"abandon_message_file_id": value})
        assert answer.status == 422, await answer.text()
        error = (await answer.json())["error"]
        assert error["field"] == "abandon_message_file_id" and field_error in error["message"]
    assert (await db.projects.get(project)).abandon_message_file_id is None
    answer = await admin.api("PATCH", path, {"abandon_message_file_id": good})
    assert answer.status == 200, await answer.text()
    assert (await db.projects.get(project)).abandon_message_file_id == good
    page = await (await admin.get(f"/projects/{project}?tab=queue")).text()
    assert f'<option value="{good}" selected>Заняты.wav</option>' in page
    assert "Битый.WAV" in page and "Прайс.pdf" not in page  # WAV files only
    answer = await admin.api("PATCH", path, {"abandon_message_file_id": None})
    assert answer.status == 200
    assert (await db.projects.get(project)).abandon_message_file_id is None

"""The sipspeak command as admins run it: real subprocesses on a real data directory."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from sipspeak.security import token_digest
from sipspeak.storage.db import migrations


def sipspeak(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    environ = {k: v for k, v in os.environ.items() if not k.startswith("SIPSPEAK_")}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "sipspeak.cli", *args], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=60)


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_db_migrate_then_up_to_date(tmp_path: Path) -> None:
    first = sipspeak("db", "migrate", "--data-dir", "d", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    versions = [version for version, _, _ in migrations()]
    assert f"applied migrations {', '.join(map(str, versions))}" in first.stdout
    again = sipspeak("db", "migrate", "--data-dir", "d", cwd=tmp_path)
    assert again.returncode == 0 and "up to date" in again.stdout
    stored = rows(tmp_path / "d" / "sipspeak.db", "SELECT version FROM schema_migrations ORDER BY version")
    assert stored == [(v,) for v in versions]


def test_user_add_and_duplicates_are_refused_without_writing(tmp_path: Path) -> None:
    ok = sipspeak("user", "add", "--role", "operator", "--name", "Ахматова Анна", "--email",
                  "operator@test.ru", "--password", "111222333", "--extension", "401",
                  "--sip-password", "sip-secret-1", "--data-dir", "d", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    db = tmp_path / "d" / "sipspeak.db"
    stored = rows(db, "SELECT role, full_name, email, extension, password_hash FROM users")
    assert stored[0][:4] == ("operator", "Ахматова Анна", "operator@test.ru", "401")
    assert stored[0][4].startswith("scrypt$") and "111222333" not in stored[0][4]

    for args, named in [
        (("--email", "OPERATOR@test.ru", "--extension", "402"), "e-mail"),
        (("--email", "other@test.ru", "--extension", "401"), "внутренний номер"),
        (("--email", "not-an-email", "--extension", "403"), "e-mail"),
    ]:
        bad = sipspeak("user", "add", "--role", "operator", "--name", "X", "--password", "123456",
                       "--sip-password", "sip-secret-2", *args, "--data-dir", "d", cwd=tmp_path)
        assert bad.returncode != 0
        assert bad.stderr.startswith("sipspeak: error:") and named in bad.stderr
        assert bad.stderr.count("\n") == 1  # one line, no traceback
    assert len(rows(db, "SELECT id FROM users")) == 1


def test_token_create_prints_a_token_stored_only_as_digest(tmp_path: Path) -> None:
    sipspeak("user", "add", "--role", "admin", "--name", "A", "--email", "a@test.ru",
             "--password", "123456", "--data-dir", "d", cwd=tmp_path)
    out = sipspeak("token", "create", "--email", "a@test.ru", "--data-dir", "d", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    stored = rows(tmp_path / "d" / "sipspeak.db", "SELECT token_hash FROM api_tokens")
    assert stored == [(token_digest(token),)]
    missing = sipspeak("token", "create", "--email", "nobody@test.ru", "--data-dir", "d", cwd=tmp_path)
    assert missing.returncode != 0 and "nobody@test.ru" in missing.stderr


def test_config_errors_and_unwritable_data_dir(tmp_path: Path) -> None:
    conf = tmp_path / "bad.toml"
    conf.write_text("[web]\nport = 8080\n", encoding="utf-8")
    bad = sipspeak("db", "migrate", "--config", str(conf), cwd=tmp_path)
    assert bad.returncode != 0 and "[web] port" in bad.stderr and bad.stderr.count("\n") == 1
    env = sipspeak("db", "migrate", cwd=tmp_path, env={"SIPSPEAK_STORAGE_DATADIR": "x"})
    assert env.returncode != 0 and "SIPSPEAK_STORAGE_DATADIR" in env.stderr
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", encoding="utf-8")
    unwritable = sipspeak("db", "migrate", "--data-dir", str(blocker / "data"), cwd=tmp_path)
    assert unwritable.returncode != 0
    assert "data directory" in unwritable.stderr and unwritable.stderr.count("\n") == 1
    usage = sipspeak("user", "add", "--role", "king", cwd=tmp_path)
    assert usage.returncode == 2


def test_numbering_refresh_writes_into_the_data_dir(tmp_path: Path) -> None:
    source = tmp_path / "DEF-9xx.csv"
    source.write_text(
        "АВС/ DEF;От;До;Емкость;Оператор;Регион;Территория ГАР;ИНН\n"
        "922;8000000;8999999;1000000;ПАО \"МЕГАФОН\";Оренбургская обл.;Оренбургская область;7812014560\n",
        encoding="utf-8")
    out = sipspeak("numbering", "refresh", str(source), "--data-dir", "d", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    index = tmp_path / "d" / "numbering.bin"
    assert index.is_file()
    from sipspeak.crm.numbering import NumberingIndex

    found = NumberingIndex.load(index).lookup(9228711345)
    assert found is not None and found.region.name == "Оренбургская обл."
    assert found.region.timezone == "Asia/Yekaterinburg"
    assert NumberingIndex.load(index).lookup(9171959395) is None  # only what the extract holds

"""`sipspeak serve` as a real process: first-start admin, login page, health, SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import sipspeak
from sipspeak.storage.db import migrations


def start(tmp_path: Path) -> tuple[subprocess.Popen[str], list[str], str]:
    return start_in(tmp_path / "data", tmp_path)


def start_in(data_dir: Path, tmp_path: Path) -> tuple[subprocess.Popen[str], list[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIPSPEAK_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sipspeak.cli", "serve", "--data-dir", str(data_dir),
         "--web", "127.0.0.1:0", "--sip", "127.0.0.1:0"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        match = re.search(r"SipSpeak is running: (http://\S+)", line)
        if match:
            return proc, lines, match.group(1)
    proc.kill()
    pytest.fail("serve did not start:\n" + "\n".join(lines))


def stop(proc: subprocess.Popen[str], sig: signal.Signals = signal.SIGTERM) -> tuple[int, str]:
    proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, out


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode("utf-8")


def test_serve_first_start_login_health_and_clean_stop(tmp_path: Path) -> None:
    proc, lines, url = start(tmp_path)
    try:
        text = "\n".join(lines)
        password = re.search(r"password: (\S+)", text)
        assert "login:    admin@sipspeak.local" in text and password
        status, body = get(url + "healthz")
        health = json.loads(body)
        assert status == 200 and health["database"] == {"ok": True, "schema_version": len(migrations())}
        assert health["version"] == sipspeak.__version__
        # The extension is built where the tests run (unless the twin is forced).
        forced = os.environ.get("SIPSPEAK_MEDIA_NATIVE") == "0"
        assert health["media_relay"] == ("python" if forced else "c")
        status, page = get(url + "login")
        assert status == 200 and 'name="password"' in page and "Войти" in page
    finally:
        code, rest = stop(proc)
    assert code == 0, rest
    assert "stopping" in rest

    # The second start keeps the admin and shows no password again.
    proc, lines, url = start(tmp_path)
    code, rest = stop(proc)
    assert code == 0
    assert "password:" not in "\n".join(lines) + rest


def test_serve_refuses_a_taken_port_with_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIPSPEAK_")}
        result = subprocess.run(
            [sys.executable, "-m", "sipspeak.cli", "serve", "--data-dir", str(tmp_path / "d"),
             "--web", f"127.0.0.1:{port}"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr
    # The failed start created no admin: the next start still shows the one-time password.
    assert "password:" not in result.stdout
    proc, lines, _ = start_in(tmp_path / "d", tmp_path)
    code, _ = stop(proc, signal.SIGINT)
    assert code == 0
    assert any(line.startswith("  password: ") for line in lines)

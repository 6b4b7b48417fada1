"""HTTPS for the web UI, the API and the softphone's WebSocket: `sipspeak serve` as a real
process with [web] tls_cert / tls_key pointing at a throw-away CA's server certificate.

A client trusting that CA signs in, gets pages and the API, opens the softphone's signalling
socket over wss://; the cookies carry the Secure flag; a client that does not trust the CA
and a plain-HTTP request to the TLS port are refused without harming the service; a bad
certificate or key stops the start with one line naming the key and the file."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import warnings
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path

import aiohttp
import pytest
from tlscerts import TlsFiles, make_tls_files, other_key

from sipspeak.app import FIRST_ADMIN_EMAIL

_LOGIN_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


def serve_argv(data_dir: Path) -> list[str]:
    return [sys.executable, "-m", "sipspeak.cli", "serve", "--data-dir", str(data_dir),
            "--web", "127.0.0.1:0", "--sip", "127.0.0.1:0"]


def serve_env(cert: Path, key: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIPSPEAK_")}
    env.update(SIPSPEAK_WEB_TLS_CERT=str(cert), SIPSPEAK_WEB_TLS_KEY=str(key))
    return env


class Served:
    def __init__(self, proc: subprocess.Popen[str], url: str, password: str) -> None:
        self.proc = proc
        self.url = url
        self.password = password


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    return make_tls_files(tmp_path / "pki")


@pytest.fixture
def served(tmp_path: Path, tls_files: TlsFiles) -> Iterator[Served]:
    proc = subprocess.Popen(serve_argv(tmp_path / "data"), cwd=tmp_path,
                            env=serve_env(tls_files.cert, tls_files.key),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    url = ""
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if match := re.search(r"SipSpeak is running: (\S+)", line):
            url = match.group(1)
            break
    text = "\n".join(lines)
    password = re.search(r"password: (\S+)", text)
    if not url or password is None:
        proc.kill()
        pytest.fail("serve did not start:\n" + text + (proc.stdout.read() or ""))
    try:
        yield Served(proc, url, password.group(1))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rest, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        assert proc.returncode == 0, rest
        assert "Traceback" not in rest, rest


def cookie_flags(response: aiohttp.ClientResponse, name: str) -> dict[str, object]:
    for header in response.headers.getall("Set-Cookie", []):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        if name in jar:
            morsel = jar[name]
            return {"secure": bool(morsel["secure"]), "httponly": bool(morsel["httponly"]),
                    "samesite": morsel["samesite"]}
    raise AssertionError(f"no Set-Cookie for {name}: {response.headers}")


async def test_the_site_over_https_signs_in_serves_pages_api_and_wss(
        served: Served, tls_files: TlsFiles) -> None:
    assert served.url.startswith("https://127.0.0.1:")
    connector = aiohttp.TCPConnector(ssl=tls_files.client_context())
    # unsafe: the jar keeps cookies of an IP-address host (127.0.0.1), as a browser does.
    async with aiohttp.ClientSession(base_url=served.url, connector=connector,
                                     cookie_jar=aiohttp.CookieJar(unsafe=True),
                                     timeout=aiohttp.ClientTimeout(total=30)) as http:
        login = await http.get("/login")
        assert login.status == 200 and login.url.scheme == "https"
        assert cookie_flags(login, "sipspeak_login")["secure"] is True
        token = _LOGIN_CSRF.search(await login.text())
        assert token is not None
        signed_in = await http.post("/login", allow_redirects=False, data={
            "email": FIRST_ADMIN_EMAIL, "password": served.password, "csrf": token.group(1)})
        assert signed_in.status == 303
        assert cookie_flags(signed_in, "sipspeak_session") == {
            "secure": True, "httponly": True, "samesite": "Lax"}

        page = await http.get("/profile/devices")
        assert page.status == 200 and 'name="csrf-token"' in await page.text()
        me = await http.get("/api/v1/me")
        assert me.status == 200 and (await me.json())["email"] == FIRST_ADMIN_EMAIL
        health = await http.get("/healthz")
        assert health.status == 200 and json.loads(await health.text())["database"]["ok"]

        # The softphone's signalling socket: wss:// on the same port, the session cookie
        # and the page's origin.
        origin = served.url.rstrip("/")
        async with http.ws_connect("/api/v1/softphone", headers={"Origin": origin}) as socket:
            hello = await asyncio.wait_for(socket.receive_json(), 10)
            assert hello == {"type": "hello", "available": True}
            assert socket.get_extra_info("ssl_object") is not None


async def test_strangers_and_plain_http_are_refused_and_the_site_stays_up(
        served: Served, tls_files: TlsFiles, tmp_path: Path) -> None:
    port = served.url.rstrip("/").rsplit(":", 1)[1]
    # A client that does not trust the CA sees a certificate error.
    stranger = make_tls_files(tmp_path / "other", name="other")
    async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=stranger.client_context())) as http:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await http.get(served.url + "login")
    # Plain HTTP to the TLS port: the connection is closed, no page in clear text.
    reader, writer = await asyncio.open_connection("127.0.0.1", int(port))
    writer.write(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    await writer.drain()
    try:
        answer = await asyncio.wait_for(reader.read(), 10)
    except ConnectionResetError:
        answer = b""
    writer.close()
    assert "Войти".encode() not in answer and b"HTTP/1.1" not in answer
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientError):
            await http.get(f"http://127.0.0.1:{port}/login")
    # TLS older than 1.2 is refused by the server (a reset or its protocol_version alert).
    old = tls_files.client_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("ALL:@SECLEVEL=0")
    with pytest.raises((ssl.SSLError, ConnectionResetError)) as refused:
        await asyncio.open_connection("127.0.0.1", int(port), ssl=old,
                                      server_hostname="127.0.0.1")
    assert not isinstance(refused.value, ssl.SSLError) or "ALERT" in str(refused.value)
    # The service goes on serving HTTPS.
    async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=tls_files.client_context())) as http:
        response = await http.get(served.url + "login")
        assert response.status == 200 and "Войти" in await response.text()


@pytest.mark.parametrize("case", ["key of another certificate", "missing certificate",
                                  "key without certificate"])
def test_a_bad_certificate_setting_stops_the_start_with_one_line(
        tmp_path: Path, tls_files: TlsFiles, case: str) -> None:
    cert, key = tls_files.cert, tls_files.key
    if case == "key of another certificate":
        key = other_key(tmp_path / "wrong-key.pem")
        expected = f"[web] tls_key: {key} does not match the certificate in {cert}"
    elif case == "missing certificate":
        cert = tmp_path / "fullchain.pem"
        expected = f"[web] tls_cert: {cert} does not exist"
    else:
        expected = "[web] tls_cert: must be set together with tls_key"
    env = serve_env(cert, key)
    if case == "key without certificate":
        del env["SIPSPEAK_WEB_TLS_CERT"]
    data_dir = tmp_path / "data"
    result = subprocess.run(serve_argv(data_dir), cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert expected in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    # Nothing was started: no admin was created, no one-time password spent.
    assert "password:" not in result.stdout
    assert not (data_dir / "sipspeak.db").exists()

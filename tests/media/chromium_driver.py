"""A tiny W3C WebDriver client for headless Debian Chromium (test helper).

Talks HTTP/JSON to ``/usr/bin/chromedriver`` (W3C WebDriver, §6 "Protocol")
with aiohttp, so a test's event loop keeps running servers and media while the
browser works.  No selenium.

Usage::

    async with ChromiumDriver.launch(fake_audio=wav_path) as browser:
        await browser.navigate(url)
        result = await browser.execute_async("const done = arguments[0]; ...")
        logs = await browser.console_logs()

``launch`` starts chromedriver on a free port it picks itself (``--port=0``),
opens one headless session with a fresh ``--user-data-dir`` and the flags a
WebRTC test needs (fake media device, loopback ICE candidates).  ``quit()``
(run by ``async with``) deletes the session and kills chromedriver's process
group, which takes any chromium it started with it, then removes the profile.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp

__all__ = ["CHROMIUM_FLAGS", "ChromiumDriver", "WebDriverError"]

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"

#: Flags for a quiet, offline, headless browser that can do WebRTC on loopback.
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
    "--window-size=1280,800",
)

#: W3C WebDriver §12.2: the key under which an element reference is returned.
_ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"
_PORT_LINE = re.compile(rb"started successfully on port (\d+)")


class WebDriverError(RuntimeError):
    """A WebDriver command failed (W3C WebDriver §6.6 error object)."""

    def __init__(self, message: str, *, error: str = "") -> None:
        super().__init__(message)
        #: The error code, e.g. ``"no such element"``, ``"script timeout"``.
        self.error = error


class ChromiumDriver:
    """One chromedriver process with one headless Chromium session."""

    def __init__(
        self,
        *,
        process: asyncio.subprocess.Process,
        http: aiohttp.ClientSession,
        base_url: str,
        work_dir: Path,
        command_timeout: float,
    ) -> None:
        self._process = process
        self._http = http
        self._base_url = base_url
        self._work_dir = work_dir
        self._command_timeout = command_timeout
        self._session_id: str | None = None

    # -- lifecycle ---------------------------------------------------------

    @classmethod
    @contextlib.asynccontextmanager
    async def launch(
        cls,
        *,
        fake_audio: str | os.PathLike[str] | None = None,
        extra_flags: Sequence[str] = (),
        startup_timeout: float = 20.0,
        command_timeout: float = 30.0,
    ) -> AsyncIterator[ChromiumDriver]:
        """Start chromedriver and a headless session; quit both on exit."""
        driver = await cls.start(
            fake_audio=fake_audio,
            extra_flags=extra_flags,
            startup_timeout=startup_timeout,
            command_timeout=command_timeout,
        )
        try:
            yield driver
        finally:
            await driver.quit()

    @classmethod
    async def start(
        cls,
        *,
        fake_audio: str | os.PathLike[str] | None = None,
        extra_flags: Sequence[str] = (),
        startup_timeout: float = 20.0,
        command_timeout: float = 30.0,
    ) -> ChromiumDriver:
        """Start chromedriver and a session; the caller must ``await quit()``."""
        work_dir = Path(tempfile.mkdtemp(prefix="sipspeak-chromium-"))
        profile_dir = work_dir / "profile"
        # A new session (process group) so that quit() can kill chromedriver
        # together with every chromium process it spawned.
        process = await asyncio.create_subprocess_exec(
            CHROMEDRIVER,
            "--port=0",
            # Logs go to a file so the stdout pipe only ever carries the banner.
            f"--log-path={work_dir / 'chromedriver.log'}",
            "--log-level=WARNING",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        http = aiohttp.ClientSession()
        driver = cls(
            process=process,
            http=http,
            base_url="",
            work_dir=work_dir,
            command_timeout=command_timeout,
        )
        try:
            port = await asyncio.wait_for(_read_port(process), startup_timeout)
            driver._base_url = f"http://127.0.0.1:{port}"
            flags = [*CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", *extra_flags]
            if fake_audio is not None:
                flags.append(f"--use-file-for-fake-audio-capture={fake_audio}")
            capabilities = {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": CHROMIUM, "args": flags},
                "goog:loggingPrefs": {"browser": "ALL"},
            }
            value = await asyncio.wait_for(
                driver._command(
                    "POST",
                    "/session",
                    {"capabilities": {"alwaysMatch": capabilities}},
                ),
                startup_timeout,
            )
            driver._session_id = str(value["sessionId"])
            await driver._session_command(
                "POST", "/timeouts", {"script": int(command_timeout * 1000)}
            )
        except BaseException:
            await driver.quit()
            raise
        return driver

    async def quit(self) -> None:
        """Delete the session, kill chromedriver's process group, drop the profile."""
        try:
            if self._session_id is not None:
                session, self._session_id = self._session_id, None
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        self._command("DELETE", f"/session/{session}"), 10
                    )
        finally:
            await self._http.close()
            if self._process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._process.pid, signal.SIGKILL)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._process.wait(), 10)
            shutil.rmtree(self._work_dir, ignore_errors=True)

    # -- commands (W3C WebDriver §10 navigation, §13 scripts, §17 screen capture)

    async def navigate(self, url: str) -> None:
        """Load ``url`` and wait for the document to finish loading."""
        await self._session_command("POST", "/url", {"url": url})

    async def current_url(self) -> str:
        return str(await self._session_command("GET", "/url"))

    async def execute(self, script: str, *args: Any) -> Any:
        """Run a function body in the page; ``return`` gives the result."""
        return await self._session_command(
            "POST", "/execute/sync", {"script": script, "args": list(args)}
        )

    async def execute_async(self, script: str, *args: Any) -> Any:
        """Run a function body whose last argument is the completion callback."""
        return await self._session_command(
            "POST", "/execute/async", {"script": script, "args": list(args)}
        )

    async def console_logs(self) -> list[dict[str, Any]]:
        """Browser console entries since the last call (level, message, timestamp)."""
        value = await self._session_command("POST", "/se/log", {"type": "browser"})
        return list(value)

    async def screenshot(self) -> bytes:
        """The viewport as PNG bytes."""
        return base64.b64decode(await self._session_command("GET", "/screenshot"))

    async def find(self, css: str) -> str:
        """The element id of the first element matching the CSS selector."""
        value = await self._session_command(
            "POST", "/element", {"using": "css selector", "value": css}
        )
        return str(value[_ELEMENT_KEY])

    async def wait_for(self, css: str, *, timeout: float = 30.0) -> str:
        """Like :meth:`find`, but retry until the element exists or ``timeout``."""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    return await self.find(css)
                except WebDriverError as exc:
                    if exc.error != "no such element":
                        raise
                await asyncio.sleep(0.1)

    async def click(self, element: str) -> None:
        await self._session_command("POST", f"/element/{element}/click", {})

    async def type_text(self, element: str, text: str) -> None:
        await self._session_command("POST", f"/element/{element}/value", {"text": text})

    async def text(self, element: str) -> str:
        return str(await self._session_command("GET", f"/element/{element}/text"))

    # -- transport ---------------------------------------------------------

    async def _session_command(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> Any:
        if self._session_id is None:
            raise WebDriverError("no WebDriver session")
        return await self._command(method, f"/session/{self._session_id}{path}", body)

    async def _command(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> Any:
        timeout = aiohttp.ClientTimeout(total=self._command_timeout + 10)
        async with self._http.request(
            method, self._base_url + path, json=body, timeout=timeout
        ) as response:
            payload = await response.json(content_type=None)
        value = payload.get("value") if isinstance(payload, dict) else None
        if response.status != 200:
            if isinstance(value, dict):
                raise WebDriverError(
                    f"{method} {path}: {value.get('error')}: {value.get('message')}",
                    error=str(value.get("error", "")),
                )
            raise WebDriverError(f"{method} {path}: HTTP {response.status}")
        return value


async def _read_port(process: asyncio.subprocess.Process) -> int:
    """Read chromedriver's stdout until it says which port it listens on."""
    assert process.stdout is not None
    while True:
        line = await process.stdout.readline()
        if not line:
            raise WebDriverError("chromedriver exited before listening")
        match = _PORT_LINE.search(line)
        if match:
            return int(match.group(1))

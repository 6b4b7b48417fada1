"""Composition root: reads the config, builds every service, starts and stops them."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .config import Config, parse_hostport
from .events import EventBus
from .security import hash_password, random_password
from .sip.tls import TlsFileError, server_context
from .storage import Database, StorageError, now_ms

if TYPE_CHECKING:
    from .calls.entry import CallCenter
    from .calls.runtime import CallRuntime
    from .crm.reminders_aio import ReminderService
    from .dialer.runtime import CampaignRuntime
    from .integrations.outbox import LeadOutbox
    from .integrations.webhook_outbox import WebhookOutbox
    from .media.webrtc_gateway import WebRtcGateway

log = logging.getLogger("sipspeak")

FIRST_ADMIN_EMAIL = "admin@sipspeak.local"


class StartupError(Exception):
    """Start-up cannot go on; the message is one line for the admin."""


@dataclass
class Services:
    config: Config
    db: Database
    bus: EventBus = field(default_factory=EventBus)
    #: SIP endpoint, registrar, trunks, media ports and calls; None until started.
    call_runtime: CallRuntime | None = None
    #: The dialer: launched projects dial through call control; None until started.
    campaigns: CampaignRuntime | None = None
    #: The WebRTC gateway of the operators' browser softphones ([webrtc]); None until started.
    webrtc: WebRtcGateway | None = None
    #: Leads for the projects' CRM (Bitrix24), stored then delivered; None until started.
    leads: LeadOutbox | None = None
    #: Call events for the webhook receivers, stored then delivered; None until started.
    webhooks: WebhookOutbox | None = None

    @property
    def calls(self) -> CallCenter | None:
        """Call control (click-to-call, the dialer's ports), if it runs."""
        return self.call_runtime.calls if self.call_runtime is not None else None

    @property
    def trunk_states(self) -> dict[int, Any]:
        """Live registration state (``TrunkState``) per active trunk id, for the web layer."""
        return self.call_runtime.trunk_states if self.call_runtime is not None else {}

    async def reload_trunks(self) -> None:
        """Re-read the trunks after an edit: registrations start, restart or stop."""
        if self.call_runtime is not None:
            await self.call_runtime.reload_trunks()

    async def reload_campaigns(self) -> None:
        """Re-read the projects after the launch switch or their settings changed: launched
        ones dial, stopped ones start no new call."""
        if self.campaigns is not None:
            await self.campaigns.reload()


def check_data_dir(path: Path) -> None:
    """The data directory must exist (or be creatable) and be writable."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"data directory {path} cannot be created: {exc.strerror}") from None
    probe = path / ".write-test"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StartupError(f"data directory {path} is not writable: {exc.strerror}") from None


def web_tls_context(config: Config) -> ssl.SSLContext | None:
    """HTTPS for the web UI, the API and the softphones' WebSocket when ``[web] tls_cert``
    is set; None: plain HTTP (behind a TLS proxy, or on 127.0.0.1)."""
    if not config.get("web", "tls_cert"):
        return None
    try:
        return server_context(config.get("web", "tls_cert"), config.get("web", "tls_key"))
    except TlsFileError as exc:
        raise StartupError(f"[web] {exc}") from None


async def open_database(config: Config) -> Database:
    check_data_dir(config.data_dir)
    try:
        return await Database.open(config.database_path)
    except StorageError as exc:
        raise StartupError(str(exc)) from None


async def ensure_first_admin(db: Database, out: Callable[[str], None]) -> None:
    """On the very first start, create an admin with a random password and show it once."""
    if await db.users.count() > 0:
        return
    password = random_password()
    await db.users.create(role="admin", full_name="Администратор", email=FIRST_ADMIN_EMAIL,
                          password_hash=hash_password(password))
    out("First start: an admin account was created.")
    out(f"  login:    {FIRST_ADMIN_EMAIL}")
    out(f"  password: {password}")
    out("  (shown only this once: change it after signing in)")


async def recover_after_stop(db: Database) -> None:
    """Calls and operator intervals left open by a stopped process are closed now."""
    now = now_ms()
    lost = await db.calls.close_dangling(now=now)
    unfinished = await db.uploads.remove_unfinished()
    if unfinished:
        log.warning("removed %d contact upload(s) a stopped import left unfinished", unfinished)
    await db.intervals.close_open(at=now)
    if lost:
        log.warning("closed %d call(s) left open by the previous run as lost", lost)


async def serve(config: Config, *, out: Callable[[str], None] = print) -> None:
    """Run until SIGTERM or SIGINT, then stop every service cleanly."""
    logging.basicConfig(level=config.get("log", "level"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await _serve(config, stop, out)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def start_calls(services: Services) -> None:
    """SIP listen sockets, registrar, trunk registrations, RTP ports, the WebRTC gateway of
    the browser softphones and call control."""
    from .calls.runtime import CallRuntime, CallRuntimeError, webrtc_settings
    from .media.webrtc_gateway import WebRtcGateway

    services.webrtc = WebRtcGateway(settings=webrtc_settings(services.config))
    try:
        services.call_runtime = await CallRuntime.start(services.config, services.db,
                                                        services.bus, gateway=services.webrtc)
    except CallRuntimeError as exc:
        raise StartupError(str(exc)) from None


async def stop_calls(services: Services) -> None:
    """Call control first (its calls end, browser legs included), then the gateway."""
    if services.call_runtime is not None:
        await services.call_runtime.aclose()
    if services.webrtc is not None:
        await services.webrtc.close()


async def start_campaigns(services: Services) -> None:
    """The campaign runtime over call control: it takes the dialer's events and the ACD."""
    from .dialer.runtime import CampaignRuntime

    calls = services.calls
    if calls is None:
        return
    runtime = CampaignRuntime(db=services.db, bus=services.bus, calls=calls, ringer=calls)
    calls.attach_dialer(runtime.on_call_event, runtime.on_operator_event)
    services.campaigns = runtime
    await runtime.start()


async def stop_campaigns(services: Services) -> None:
    """Before call control stops: no new dials; after it: the last outcomes are written."""
    if services.campaigns is not None:
        services.campaigns.stop_dialling()


async def start_webhooks(services: Services) -> None:
    """The webhooks outbox: it follows the call events on the bus from now on and delivers
    what a previous run left undelivered."""
    from .integrations.webhook_outbox import WebhookOutbox

    services.webhooks = WebhookOutbox(
        services.db, services.bus, timeout_s=float(services.config.get("webhooks", "timeout")),
        concurrency=int(services.config.get("webhooks", "concurrency")))
    await services.webhooks.start()


NUMBERING_INDEX = "numbering.bin"
"""A refreshed numbering index in the data directory (``sipspeak numbering refresh``)."""


def use_refreshed_numbering(config: Config) -> None:
    from .crm.numbering import use_index_file

    path = config.data_dir / NUMBERING_INDEX
    if path.is_file():
        use_index_file(path)
        log.info("numbering index: %s", path)


async def _serve(config: Config, stop: asyncio.Event, out: Callable[[str], None]) -> None:
    from .media import fastpath
    from .web.app import create_app

    if not fastpath.NATIVE:
        log.warning("the C relay loop (sipspeak.media._rtpfast) is not built: RTP is relayed "
                    "in Python, with fewer calls per core (install with gcc and the Python "
                    "headers present)")

    tls = web_tls_context(config)
    db = await open_database(config)
    use_refreshed_numbering(config)
    services: Services | None = None
    reminders: ReminderService | None = None
    try:
        await recover_after_stop(db)
        services = Services(config=config, db=db)
        app = create_app(services)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        host, port = parse_hostport(config.get("web", "listen"))
        site = web.TCPSite(runner, host, port, ssl_context=tls)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise StartupError(f"web listen address {host}:{port}: {exc.strerror}") from None
        await start_webhooks(services)  # before the first call: it follows every one
        try:
            await start_calls(services)
        except StartupError:
            await runner.cleanup()
            raise
        try:
            await start_campaigns(services)
        except BaseException:
            await runner.cleanup()
            raise
        from .integrations.outbox import LeadOutbox

        services.leads = LeadOutbox(db, services.bus)
        await services.leads.start()
        from .crm.reminders_aio import ReminderService

        # Task reminders: those whose time passed while the service was down go out now.
        reminders = ReminderService(db, services.bus)
        await reminders.start()
        # Only once every port is bound: a start that fails must not use up the one-time
        # password of the first admin.
        await ensure_first_admin(db, out)
        bound = _bound_port(runner) or port
        scheme = "https" if tls is not None else "http"
        url = config.get("web", "public_url") or f"{scheme}://{host}:{bound}/"
        # Everything built at start-up lives as long as the process: keep it out of the
        # cyclic collector's generations so collections on the media path stay short.
        gc.freeze()
        out(f"SipSpeak is running: {url}")
        out(f"data directory: {config.data_dir.resolve()}")
        try:
            await stop.wait()
        finally:
            out("SipSpeak is stopping")
            await runner.cleanup()
    finally:
        if services is not None:
            await stop_campaigns(services)
        if services is not None:
            await stop_calls(services)
        if services is not None and services.campaigns is not None:
            await services.campaigns.aclose()
        if services is not None and services.leads is not None:
            await services.leads.aclose()
        if services is not None and services.webhooks is not None:
            await services.webhooks.aclose()
        if reminders is not None:
            await reminders.aclose()
        await db.close()


def _bound_port(runner: web.AppRunner) -> int | None:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return None


def run_serve(config: Config) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(serve(config, out=_print_flush))
    else:
        uvloop.run(serve(config, out=_print_flush))


def _print_flush(line: str) -> None:
    print(line, flush=True)


__all__ = [
    "FIRST_ADMIN_EMAIL",
    "Services",
    "StartupError",
    "check_data_dir",
    "ensure_first_admin",
    "open_database",
    "recover_after_stop",
    "run_serve",
    "serve",
    "start_calls",
    "start_campaigns",
    "start_webhooks",
    "stop_calls",
    "stop_campaigns",
    "web_tls_context",
]

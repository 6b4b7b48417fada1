"""Starting and stopping call control: SIP endpoint, registrar, trunks, RTP ports, calls.

``CallRuntime.start(config, db, bus)`` binds the SIP listen addresses of ``[sip] listen``,
announces ``[sip] public_address`` (or the listen address) in Via, Contact and SDP, hands
RTP ports out of ``[rtp] port_min..port_max`` and starts the registrar, one registration
per active trunk and the :class:`~sipspeak.calls.entry.CallCenter`.  A ``registrar`` may be
passed in (its expiry limits, e.g. a short ``min_expires`` in tests).  The WebRTC gateway of
the operators' browser softphones (``[webrtc]``, :func:`webrtc_settings`) is passed in by the
composition root, which closes it after the runtime; without one the runtime makes its own.
``aclose()`` ends the calls (their CDRs completed), unregisters the trunks and closes every
socket.
"""

from __future__ import annotations

import logging
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from sipspeak.config import Config, parse_hostport
from sipspeak.events import EventBus
from sipspeak.media.portpool import PortPool
from sipspeak.media.webrtc import IceServer, WebRtcSettings
from sipspeak.media.webrtc_gateway import WebRtcGateway
from sipspeak.sip.events import Address
from sipspeak.sip.registrar import Registrar
from sipspeak.sip.tls import TlsFileError, server_context
from sipspeak.sip.transport import SipEndpoint
from sipspeak.sip.trunk import TrunkState
from sipspeak.sip.trunk_aio import UserAgentChannel
from sipspeak.sip.useragent import UserAgent
from sipspeak.storage import Database

from .browser import BrowserPhones
from .entry import CallCenter
from .phones import PhoneDirectory
from .trunks import TrunkDirectory

__all__ = ["CallRuntime", "CallRuntimeError", "reachable_address", "sip_tls_context",
           "webrtc_settings"]

log = logging.getLogger(__name__)


class CallRuntimeError(RuntimeError):
    """Call control cannot start (a taken SIP port, say); one line for the admin."""


def reachable_address(bind_host: str) -> str:
    """An address peers can reach us at when we listen on a wildcard address."""
    if bind_host not in ("0.0.0.0", "::", ""):
        return bind_host
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: no packet is sent by connect()
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def webrtc_settings(config: Config) -> WebRtcSettings:
    """The gateway's settings from ``[webrtc]``."""
    hosts = tuple(config.get("webrtc", "host_addresses"))
    return WebRtcSettings(
        host_addresses=hosts or None,
        ice_servers=tuple(IceServer(url=url) for url in config.get("webrtc", "stun_servers")),
        media_timeout=float(config.get("webrtc", "media_timeout")))


def sip_tls_context(config: Config) -> ssl.SSLContext:
    """The server context of the ``tls:`` listen addresses from ``[sip] tls_cert / tls_key``."""
    try:
        return server_context(config.get("sip", "tls_cert"), config.get("sip", "tls_key"))
    except TlsFileError as exc:
        raise CallRuntimeError(f"[sip] {exc}") from None


@dataclass(slots=True)
class CallRuntime:
    endpoint: SipEndpoint
    trunks: TrunkDirectory
    phones: PhoneDirectory
    browsers: BrowserPhones
    calls: CallCenter
    addresses: list[Address]
    own_gateway: WebRtcGateway | None = None  # made here (none was passed): closed here

    @property
    def trunk_states(self) -> dict[int, TrunkState]:
        return self.trunks.states

    @classmethod
    async def start(cls, config: Config, db: Database, bus: EventBus, *,
                    recordings_dir: Path | None = None,
                    trunk_reconcile_interval: float = 10.0,
                    trunk_stop_timeout: float = 5.0,
                    registrar: Registrar | None = None,
                    gateway: WebRtcGateway | None = None) -> CallRuntime:
        listen = [(item.split(":", 1)[0], *parse_hostport(item.split(":", 1)[1]))
                  for item in config.get("sip", "listen")]
        # Certificate problems stop the start before any port is bound.
        tls = sip_tls_context(config) if any(t == "tls" for t, _, _ in listen) else None
        first_host = listen[0][1]
        public = config.get("sip", "public_address") or reachable_address(first_host)
        ua = UserAgent(local=Address("UDP", public, listen[0][2]), user="sipspeak",
                       user_agent=config.get("sip", "user_agent"))
        endpoint = SipEndpoint(ua)
        addresses: list[Address] = []
        try:
            for transport, host, port in listen:
                if transport == "udp":
                    bound = await endpoint.listen_udp(host, port)
                elif transport == "tcp":
                    bound = await endpoint.listen_tcp(host, port)
                elif transport == "tls" and tls is not None:
                    bound = await endpoint.listen_tls(host, port, context=tls)
                else:
                    bound = await endpoint.listen_ws(host, port)
                addresses.append(bound)
                # Via and Contact carry the reachable address, not a wildcard bind address.
                ua.add_local_address(Address(bound.transport, public, bound.port))
        except OSError as exc:
            await endpoint.close()
            raise CallRuntimeError(
                f"SIP listen address {transport}:{host}:{port}: {exc.strerror}") from None
        pool = PortPool(first=config.get("rtp", "port_min"), last=config.get("rtp", "port_max"))
        trunks = TrunkDirectory(db=db, channel=UserAgentChannel(ua), bus=bus,
                                reconcile_interval=trunk_reconcile_interval,
                                stop_timeout=trunk_stop_timeout)
        phones = PhoneDirectory(db=db, bus=bus, registrar=registrar)
        own_gateway = None
        if gateway is None:
            gateway = own_gateway = WebRtcGateway(settings=webrtc_settings(config))
        browsers = BrowserPhones(bus=bus, gateway=gateway)
        media_host = first_host if first_host not in ("", "::") else "0.0.0.0"
        calls = CallCenter(db=db, bus=bus, ua=ua, pool=pool, trunks=trunks, phones=phones,
                           recordings_dir=recordings_dir or config.recordings_dir,
                           media_host=media_host, public_host=public,
                           inactivity_timeout=float(config.get("rtp", "inactivity_timeout")),
                           browsers=browsers, files_dir=config.files_dir)
        endpoint.on_event = calls.on_sip_event
        await phones.start(ua)
        await trunks.start()
        log.info("SIP on %s (public address %s)",
                 ", ".join(f"{a.transport.lower()}:{a.host}:{a.port}" for a in addresses), public)
        return cls(endpoint=endpoint, trunks=trunks, phones=phones, browsers=browsers,
                   calls=calls, addresses=addresses, own_gateway=own_gateway)

    async def reload_trunks(self) -> None:
        await self.trunks.reload_trunks()

    async def aclose(self) -> None:
        await self.calls.aclose()
        await self.browsers.aclose()
        if self.own_gateway is not None:
            await self.own_gateway.close()
        await self.trunks.aclose()
        await self.phones.aclose()
        await self.endpoint.close()

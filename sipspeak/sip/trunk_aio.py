"""The asyncio shell of trunk registration (core: ``trunk.TrunkRegistration``).

One ``TrunkRunner`` per active trunk: it sends each REGISTER the core asks for through a
client transaction (RFC 3261 §17.1.2) of the SIP endpoint, feeds back the final response
or the timeout, and sleeps until the core's next deadline on the loop clock.

The endpoint is anything with the ``RequestChannel`` shape: the transport layer's user
agent, or in tests a small UDP endpoint over ``TransactionLayer``.

Public API: ``RequestChannel`` (Protocol), ``UserAgentChannel(ua)`` (the channel over
``useragent.UserAgent``), ``TrunkManager(channel, on_status=…)`` with ``apply(name,
config | None)`` / ``statuses()`` / ``aclose()``, ``TrunkRunner(config, channel, on_status=…)``
with ``async run()``, ``async stop(timeout=…)`` and ``status``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import socket
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from sipspeak.sip.digest import RequestAuthenticator
from sipspeak.sip.events import Address, TransportName
from sipspeak.sip.headers import NameAddr, Via
from sipspeak.sip.message import SipRequest, SipResponse
from sipspeak.sip.trunk import (
    TrunkConfig,
    TrunkRegistration,
    TrunkState,
    TrunkStatus,
)
from sipspeak.sip.uri import SipUri

if TYPE_CHECKING:
    from sipspeak.sip.transaction import ClientTransaction
    from sipspeak.sip.useragent import UserAgent

log = logging.getLogger(__name__)

_TRANSPORTS: dict[str, TransportName] = {
    "UDP": "UDP", "TCP": "TCP", "TLS": "TLS", "WS": "WS", "WSS": "WSS",
}  # fmt: skip


class RequestChannel(Protocol):
    """What a trunk needs from the SIP endpoint."""

    def via_for(self, destination: Address) -> Via:
        """A top Via with a fresh ``z9hG4bK`` branch for a request to ``destination``."""
        ...

    def contact_for(self, destination: Address) -> NameAddr:
        """Our Contact as reachable from ``destination``."""
        ...

    async def send_request(
        self, request: SipRequest, destination: Address
    ) -> SipResponse:
        """Send in a client transaction; the final response, ``TimeoutError`` on Timer F."""
        ...


class _ResponseWaiter:
    """A ``ClientListener`` of the user agent that resolves one future."""

    def __init__(self, future: asyncio.Future[SipResponse]) -> None:
        self.future = future

    def response_received(
        self, response: SipResponse, txn: ClientTransaction, now: float
    ) -> None:
        if response.status >= 200 and not self.future.done():
            self.future.set_result(response)

    def transaction_timed_out(self, txn: ClientTransaction, now: float) -> None:
        if not self.future.done():
            self.future.set_exception(TimeoutError("no final response (Timer F)"))


class UserAgentChannel:
    """``RequestChannel`` over the sans-IO ``UserAgent`` (its shell sends and receives)."""

    def __init__(self, ua: UserAgent) -> None:
        self.ua = ua

    def via_for(self, destination: Address) -> Via:
        return self.ua.via_for(destination)

    def contact_for(self, destination: Address) -> NameAddr:
        return self.ua.contact_for(destination)

    async def send_request(
        self, request: SipRequest, destination: Address
    ) -> SipResponse:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[SipResponse] = loop.create_future()
        self.ua.send_request(
            request, destination, loop.time(), listener=_ResponseWaiter(future)
        )
        return await future


async def resolve(destination: Address) -> Address:
    """The address with its host name resolved to an IP address (RFC 3263 §4.2 A/AAAA
    lookup only; NAPTR and SRV are not consulted).  Raises ``socket.gaierror``."""
    host = destination.host.strip("[]")
    try:
        ipaddress.ip_address(host)
        return destination
    except ValueError:
        pass
    kind = socket.SOCK_DGRAM if destination.transport == "UDP" else socket.SOCK_STREAM
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, destination.port, type=kind
    )
    # Prefer IPv4: the listening sockets are usually IPv4.
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    address = str(infos[0][4][0])
    return replace(destination, host=address)


def trunk_destination(config: TrunkConfig) -> Address:
    """Next hop for the provider: host and port of the trunk's host field (§8.1.2)."""
    target = config.target
    transport = _TRANSPORTS.get(target.transport, "UDP")
    return Address(transport, target.host, target.port)


class TrunkRunner:
    """Keeps one trunk registered until ``stop()`` (or cancellation)."""

    def __init__(
        self,
        config: TrunkConfig,
        channel: RequestChannel,
        *,
        on_status: Callable[[TrunkStatus], None] | None = None,
        destination: Address | None = None,
    ) -> None:
        self.config = config
        self.channel = channel
        self.destination = destination or trunk_destination(config)
        # The provider's address as last resolved: calls through the trunk go there.
        self.resolved: Address | None = None
        self._on_status = on_status
        contact = channel.contact_for(self.destination).uri
        if not isinstance(contact, SipUri):
            raise TypeError(f"contact must be a SIP URI, not {contact}")
        # The provider routes inbound calls to the account's user part.
        contact = replace(contact, user=config.target.aor.user)
        self.registration = TrunkRegistration(
            config,
            contact=contact,
            call_id=f"{secrets.token_hex(10)}@sipspeak",
            from_tag=secrets.token_hex(6),
        )
        self._wake = asyncio.Event()
        self._stopping = False

    @property
    def status(self) -> TrunkStatus:
        return self.registration.status

    def authenticator(self) -> RequestAuthenticator:
        """The ``authenticate`` hook for INVITEs sent through this trunk (407 / 401)."""
        return RequestAuthenticator(self.registration.auth)

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _publish(self) -> None:
        for event in self.registration.pop_events():
            log.info("trunk %s: %s", self.config.host, event.status)
            if self._on_status is not None:
                self._on_status(event.status)

    async def _flush(self) -> None:
        """Send every queued REGISTER in turn, each in its own client transaction."""
        reg = self.registration
        while (pending := reg.pop_request()) is not None:
            try:
                self.resolved = await resolve(self.destination)
                message = pending.to_message(self.channel.via_for(self.resolved))
                response = await self.channel.send_request(message, self.resolved)
            except TimeoutError:
                reg.transaction_failed(self._now(), "timeout")
            except socket.gaierror as exc:
                reg.transaction_failed(self._now(), f"DNS: {exc.strerror or exc}")
            except OSError as exc:
                reg.transaction_failed(self._now(), f"transport error: {exc}")
            except Exception as exc:  # a bug must not end the trunk: log, back off
                log.exception("trunk %s: REGISTER failed", self.config.host)
                reg.transaction_failed(self._now(), f"internal error: {exc}")
            else:
                reg.receive_response(response, self._now())
            self._publish()

    async def run(self) -> None:
        """Register now, then refresh or retry at each deadline until stopped."""
        reg = self.registration
        reg.start(self._now())
        self._publish()
        while True:
            await self._flush()
            if self._stopping:
                break
            deadline = reg.get_timer()
            self._wake.clear()
            delay = None if deadline is None else max(0.0, deadline - self._now())
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass
            if self._stopping:
                break
            reg.handle_timer(self._now())
        reg.stop(self._now())
        self._publish()
        await self._flush()  # the Expires: 0 un-REGISTER, if a binding is live

    async def stop(self, task: asyncio.Task[None], *, timeout: float = 40.0) -> None:
        """Unregister and let ``task`` (running ``run()``) finish, or cancel it after
        ``timeout`` (Timer F is 32 s on UDP)."""
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        except Exception:
            log.exception("trunk %s: runner failed", self.config.host)
        if self.registration.state is not TrunkState.DISABLED:
            self.registration.stop(self._now())
            self._publish()


class TrunkManager:
    """Owns one ``TrunkRunner`` task per enabled trunk (the "Активно" switch).

    ``apply(name, config)`` starts, restarts (changed settings) or, with ``None``, stops
    a trunk; ``statuses()`` is what the web UI shows; ``aclose()`` unregisters all.
    """

    def __init__(
        self,
        channel: RequestChannel,
        *,
        on_status: Callable[[str, TrunkStatus], None] | None = None,
        stop_timeout: float = 40.0,
    ) -> None:
        self.channel = channel
        self._on_status = on_status
        self.stop_timeout = stop_timeout
        self._runners: dict[str, tuple[TrunkRunner, asyncio.Task[None]]] = {}

    def runner(self, name: str) -> TrunkRunner | None:
        entry = self._runners.get(name)
        return None if entry is None else entry[0]

    def statuses(self) -> dict[str, TrunkStatus]:
        return {name: runner.status for name, (runner, _) in self._runners.items()}

    async def apply(self, name: str, config: TrunkConfig | None) -> None:
        current = self._runners.get(name)
        if current is not None:
            if config is not None and current[0].config == config:
                return
            del self._runners[name]
            await current[0].stop(current[1], timeout=self.stop_timeout)
            self._report(name, current[0].status)
        if config is None:
            return

        def report(status: TrunkStatus) -> None:
            self._report(name, status)

        runner = TrunkRunner(config, self.channel, on_status=report)
        task = asyncio.get_running_loop().create_task(
            runner.run(), name=f"trunk {name}"
        )
        self._runners[name] = (runner, task)

    def _report(self, name: str, status: TrunkStatus) -> None:
        if self._on_status is not None:
            self._on_status(name, status)

    async def aclose(self) -> None:
        names = list(self._runners)
        await asyncio.gather(*(self.apply(name, None) for name in names))

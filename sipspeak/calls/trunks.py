"""Trunks from storage: one registration per active trunk, routes for calls, inbound matching.

``TrunkDirectory`` mirrors ``db.trunks`` into the SIP layer's ``TrunkManager`` (manual §4.4,
the «Активно» switch): :meth:`reload_trunks` starts, restarts (changed settings) and stops
registrations; the web layer may call it after an edit, publish ``trunks.changed`` on the
bus, or simply wait for the periodic reconcile.  Every registration state change is
published as ``trunk.state``; :attr:`states` is the live state per trunk id.

Outbound calls ask :meth:`route` for the provider's address (resolved like the REGISTERs),
the Request-URI host and the ``authenticate`` hook answering 401 / 407 with the trunk's
credentials.  Inbound INVITEs are matched to a trunk by :meth:`match_inbound`: the source
address must be the trunk's provider — its resolved address, or any other address its host
name resolves to (providers spread calls over several servers behind one name) — and a
request user naming the trunk's account picks among several trunks on one provider.  A trunk
may also list the provider's networks («адреса провайдера», :mod:`.sources`): an INVITE from
them is the trunk's whatever number it calls, unless it calls another trunk's account.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

from sipspeak.events import EventBus
from sipspeak.sip.digest import DigestClient, RequestAuthenticator
from sipspeak.sip.events import Address
from sipspeak.sip.session import Authenticate
from sipspeak.sip.trunk import TrunkConfig, TrunkState, TrunkStatus
from sipspeak.sip.trunk_aio import RequestChannel, TrunkManager, resolve, trunk_destination
from sipspeak.storage import Database
from sipspeak.storage.models import Trunk

from .sources import Network, SourceListError, parse_sources, source_in

__all__ = ["TrunkDirectory", "TrunkRoute", "trunk_config"]

log = logging.getLogger(__name__)


FAILED_LOOKUP_S = 30.0
"""A provider name that did not resolve is tried again after this long."""
PROVIDER_HOSTS_TTL_S = 300.0
"""How long the provider's set of addresses is trusted before its name is looked up again."""


async def lookup_addresses(host: str) -> frozenset[str]:
    """Every IPv4/IPv6 address ``host`` resolves to (A and AAAA); an IP literal is itself.
    Raises ``socket.gaierror``."""
    bare = host.strip("[]")
    try:
        return frozenset({str(ipaddress.ip_address(bare))})
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(bare, None, type=socket.SOCK_DGRAM)
    return frozenset(str(info[4][0]) for info in infos)


def trunk_config(trunk: Trunk) -> TrunkConfig:
    """The SIP layer's view of a stored trunk (raises ``ValueError`` on a bad host)."""
    return TrunkConfig(username=trunk.username, password=trunk.password, host=trunk.host)


@dataclass(frozen=True, slots=True)
class TrunkRoute:
    """Where an outbound call through one trunk goes and how it authenticates."""

    trunk: Trunk
    config: TrunkConfig
    destination: Address
    authenticate: Authenticate


class TrunkDirectory:
    """See the module docstring."""

    def __init__(self, *, db: Database, channel: RequestChannel, bus: EventBus,
                 reconcile_interval: float = 10.0, stop_timeout: float = 5.0) -> None:
        self.db = db
        self.bus = bus
        self.reconcile_interval = reconcile_interval
        self.manager = TrunkManager(channel, on_status=self._on_status,
                                    stop_timeout=stop_timeout)
        self._trunks: dict[int, Trunk] = {}
        self._addresses: dict[int, Address] = {}
        self._provider_hosts: dict[int, tuple[float, frozenset[str]]] = {}
        self._failed_lookups: dict[int, float] = {}  # trunk id -> loop time of the failure
        self._clients: dict[int, DigestClient] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.on_change: Callable[[int, TrunkState], None] | None = None

    # -- reading -------------------------------------------------------------------------
    @property
    def states(self) -> dict[int, TrunkState]:
        """Live registration state per active trunk id (``DISABLED`` if it cannot register)."""
        statuses = self.manager.statuses()
        return {tid: statuses[str(tid)].state if str(tid) in statuses else TrunkState.DISABLED
                for tid in self._trunks}

    def status(self, trunk_id: int) -> TrunkStatus | None:
        return self.manager.statuses().get(str(trunk_id))

    def trunk(self, trunk_id: int) -> Trunk | None:
        return self._trunks.get(trunk_id)

    # -- life ------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.reload_trunks()
        self._task = asyncio.get_running_loop().create_task(self._watch(), name="trunks")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.manager.aclose()

    async def _watch(self) -> None:
        """Reload on ``trunks.changed`` or every ``reconcile_interval`` seconds."""
        sub = self.bus.subscribe("trunks.changed")
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(sub.get(), self.reconcile_interval)
                try:
                    await self.reload_trunks()
                except Exception:
                    log.exception("reloading trunks failed")
        finally:
            sub.close()

    async def reload_trunks(self) -> None:
        """Bring registrations in line with the active trunks in storage."""
        async with self._lock:
            active = {t.id: t for t in await self.db.trunks.list(only_active=True)}
            for tid in list(self._trunks):
                if tid not in active:
                    await self.manager.apply(str(tid), None)
                    self._forget(tid)
            for tid, trunk in active.items():
                old = self._trunks.get(tid)
                self._trunks[tid] = trunk
                if old is not None and (old.host, old.username, old.password) != (
                        trunk.host, trunk.username, trunk.password):
                    self._addresses.pop(tid, None)
                    self._provider_hosts.pop(tid, None)
                    self._failed_lookups.pop(tid, None)
                    self._clients.pop(tid, None)
                try:
                    config = trunk_config(trunk)
                except ValueError as exc:
                    # No account name: an IP-authenticated trunk, used without REGISTER.
                    log.info("trunk %s does not register: %s", trunk.name, exc)
                    await self.manager.apply(str(tid), None)
                    continue
                await self.manager.apply(str(tid), config)

    def _forget(self, tid: int) -> None:
        self._trunks.pop(tid, None)
        self._addresses.pop(tid, None)
        self._provider_hosts.pop(tid, None)
        self._failed_lookups.pop(tid, None)
        self._clients.pop(tid, None)
        self.bus.publish("trunk.state", trunk_id=tid, state=TrunkState.DISABLED.value,
                         reason="trunk removed or disabled")

    def _on_status(self, name: str, status: TrunkStatus) -> None:
        tid = int(name)
        self.bus.publish("trunk.state", trunk_id=tid, state=status.state.value,
                         reason=status.reason, status_code=status.status_code)
        if self.on_change is not None:
            self.on_change(tid, status.state)

    # -- calls -------------------------------------------------------------------------------
    async def address(self, trunk_id: int) -> Address:
        """The provider's resolved address (raises ``LookupError`` / ``socket.gaierror``).

        A name that did not resolve is not looked up again for ``FAILED_LOOKUP_S``: every
        INVITE from a scanner would otherwise wait on DNS for each such trunk."""
        runner = self.manager.runner(str(trunk_id))
        if runner is not None and runner.resolved is not None:
            self._addresses[trunk_id] = runner.resolved
            return runner.resolved
        cached = self._addresses.get(trunk_id)
        if cached is not None:
            return cached
        now = asyncio.get_running_loop().time()
        failed_at = self._failed_lookups.get(trunk_id)
        if failed_at is not None and now - failed_at < FAILED_LOOKUP_S:
            raise LookupError(f"trunk {trunk_id}: its host did not resolve")
        trunk = self._trunks.get(trunk_id) or await self.db.trunks.get(trunk_id)
        config = TrunkConfig(username=trunk.username or "anonymous",
                             password=trunk.password, host=trunk.host)
        try:
            address = await resolve(trunk_destination(config))
        except OSError:
            self._failed_lookups[trunk_id] = now
            raise
        self._failed_lookups.pop(trunk_id, None)
        self._addresses[trunk_id] = address
        return address

    async def route(self, trunk_id: int) -> TrunkRoute:
        """How to call through ``trunk_id``; raises ``LookupError`` if it is not active."""
        trunk = self._trunks.get(trunk_id)
        if trunk is None:
            raise LookupError(f"trunk {trunk_id} is not active")
        config = TrunkConfig(username=trunk.username or "anonymous", password=trunk.password,
                             host=trunk.host)
        runner = self.manager.runner(str(trunk_id))
        if runner is not None:
            authenticate: Authenticate = runner.authenticator()
        else:
            client = self._clients.setdefault(trunk_id, DigestClient(
                username=trunk.username, password=trunk.password))
            authenticate = RequestAuthenticator(client)
        try:
            destination = await self.address(trunk_id)
        except socket.gaierror as exc:
            raise LookupError(f"trunk {trunk.name}: DNS: {exc.strerror or exc}") from None
        return TrunkRoute(trunk=trunk, config=config, destination=destination,
                          authenticate=authenticate)

    async def provider_hosts(self, trunk_id: int) -> frozenset[str]:
        """Every address the trunk's provider may call from: its resolved address and all the
        addresses its host name resolves to (looked up again after ``PROVIDER_HOSTS_TTL_S``;
        a failed lookup keeps the last known set)."""
        address = await self.address(trunk_id)
        now = asyncio.get_running_loop().time()
        cached = self._provider_hosts.get(trunk_id)
        if cached is not None and now - cached[0] < PROVIDER_HOSTS_TTL_S:
            return cached[1] | {address.host}
        trunk = self._trunks.get(trunk_id)
        hosts = cached[1] if cached is not None else frozenset()
        if trunk is not None:
            try:
                host = trunk_destination(TrunkConfig(
                    username=trunk.username or "anonymous", password=trunk.password,
                    host=trunk.host)).host
                hosts = await lookup_addresses(host)
            except (OSError, ValueError) as exc:
                log.warning("trunk %s: looking up the provider's addresses failed: %s",
                            trunk.name, exc)
        self._provider_hosts[trunk_id] = (now, hosts)
        return hosts | {address.host}

    async def match_inbound(self, source: Address, request_user: str | None) -> Trunk | None:
        """The active trunk an INVITE from ``source`` came through, or None.

        The provider's own address (host and port) identifies the trunk.  Next, a trunk whose
        account the request calls (the user part we registered, the Request-URI of a call to
        our registered Contact) from another port of its provider's host, from another address
        its host name resolves to or from a network it lists.  Last, a trunk that lists the
        source among its provider's networks takes a call to any number (a DID).  A stranger
        on a shared host calling someone else is not a trunk.
        """
        host = _plain_address(source.host)
        listed: list[Trunk] = []
        near: list[Trunk] = []
        for tid, trunk in list(self._trunks.items()):
            in_listed = source_in(host, _networks(trunk.name, trunk.inbound_sources))
            if in_listed:
                listed.append(trunk)
            try:
                address = await self.address(tid)
                if _plain_address(address.host) == host and address.port == source.port:
                    return trunk
                if in_listed or host in {_plain_address(h)
                                         for h in await self.provider_hosts(tid)}:
                    near.append(trunk)
            except (OSError, LookupError):
                if in_listed:
                    near.append(trunk)
        called = [t for t in near if request_user and request_user in _accounts(t)]
        if called:
            return called[0]
        return listed[0] if listed else None


def _plain_address(host: str) -> str:
    """An address as compared here: IPv4 seen as IPv4-mapped IPv6 (a dual-stack socket) is
    the IPv4 address; anything else as written."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


@functools.lru_cache(maxsize=256)
def _networks(trunk_name: str, text: str) -> tuple[Network, ...]:
    """A trunk's listed networks, parsed once per stored text."""
    try:
        return parse_sources(text)
    except SourceListError as exc:  # stored before validation existed, or edited by hand
        log.warning("trunk %s: provider networks ignored: %s", trunk_name, exc)
        return ()


def _accounts(trunk: Trunk) -> set[str]:
    """The user parts that call a trunk's account: its user name and its host's user."""
    users = {trunk.username}
    with contextlib.suppress(ValueError):
        users.add(trunk_config(trunk).target.aor.user or "")
    users.discard("")
    return users

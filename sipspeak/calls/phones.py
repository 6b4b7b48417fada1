"""Operators' SIP phones: registration with Digest auth, who is online, where to ring.

An operator is a user with an extension and a SIP password (manual §4.1).  His phones
REGISTER to the built-in registrar (``RegisterHandler``, 401 challenge, lock-out after
repeated failures); ``phone.online`` / ``phone.offline`` go on the bus.  His INVITEs (a
manual call) are authenticated with a 407 challenge (RFC 3261 §22.3) by
:meth:`PhoneDirectory.authenticate_invite`.  :meth:`PhoneDirectory.targets` lists where to
fork an offered call: every live binding of the extension, each reached at the address
its REGISTER came from (RFC 5626 practice for phones behind NAT), else its Contact.

Bindings are kept in storage (``phone_bindings``) after every accepted REGISTER and put
back at start, so a restart does not leave the phones unreachable until they next
register (desk phones do so every 10–60 minutes) — unless the operator's SIP extension or
password changed since (an administrator locking a phone out must not see it come back).  Only bindings reached over UDP come
back: a TCP or WebSocket connection does not outlive the process, and such phones
reconnect and register again by themselves.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal

from sipspeak.events import EventBus
from sipspeak.sip.auth import DigestServer, StoredSecret
from sipspeak.sip.digest import Algorithm
from sipspeak.sip.events import Address, TransportName
from sipspeak.sip.message import SipRequest, SipResponse, make_response
from sipspeak.sip.errors import SipParseError
from sipspeak.sip.headers import NameAddr
from sipspeak.sip.registrar import (
    Binding,
    ExtensionOffline,
    ExtensionOnline,
    Registrar,
    RegistrarEvent,
)
from sipspeak.sip.registrar_aio import RegisterHandler, authenticate_request
from sipspeak.sip.uri import SipUri, Uri
from sipspeak.sip.useragent import UserAgent
from sipspeak.storage import Database
from sipspeak.storage.models import PhoneBindingRow, User

__all__ = ["PhoneDirectory", "PhoneTarget"]

log = logging.getLogger(__name__)
_NONCE_KEY_SETTING = "sip.nonce_key"
_TRANSPORTS: dict[str, TransportName] = {"udp": "UDP", "tcp": "TCP", "ws": "WS", "wss": "WSS",
                                         "tls": "TLS"}


def credentials_tag(user: User) -> str:
    """A short digest of an operator's SIP credentials (extension and password): a stored
    binding whose tag differs was made with credentials he no longer has."""
    text = f"{user.extension}:{user.sip_password}".encode()
    return hashlib.sha256(b"sipspeak binding " + text).hexdigest()[:32]


def binding_row(binding: Binding, *, now: float, wall_ms: int,
                tag: str = "") -> PhoneBindingRow:
    """A binding as stored: its expiry moved from the loop's clock (``now``) to the wall
    clock (``wall_ms``), its source as ``"UDP host port"``, the credentials ``tag``."""
    source = binding.source
    return PhoneBindingRow(
        extension=binding.extension, contact=str(binding.contact),
        expires_at=wall_ms + round((binding.expires_at - now) * 1000),
        q=None if binding.q is None else str(binding.q), call_id=binding.call_id,
        cseq=binding.cseq,
        source=None if source is None else f"{source.transport} {source.host} {source.port}",
        user_agent=binding.user_agent, credentials_tag=tag)


def restorable_binding(row: PhoneBindingRow, *, now: float, wall_ms: int) -> Binding | None:
    """The stored binding on the loop's clock, or None if it cannot be reached again after a
    restart (not over UDP) or does not parse (a corrupt row is skipped, not fatal)."""
    if row.source is None:
        return None
    transport, _, rest = row.source.partition(" ")
    host, _, port = rest.rpartition(" ")
    if transport != "UDP" or not host or not port.isdigit():
        return None
    try:
        contact = NameAddr.parse(row.contact)
        q = None if row.q is None else Decimal(row.q)
    except (SipParseError, ArithmeticError, ValueError):
        log.warning("stored binding of %s does not parse: %r", row.extension, row.contact)
        return None
    return Binding(extension=row.extension, contact=contact,
                   expires_at=now + (row.expires_at - wall_ms) / 1000, q=q,
                   call_id=row.call_id, cseq=row.cseq,
                   source=Address("UDP", host, int(port)), user_agent=row.user_agent)


@dataclass(frozen=True, slots=True)
class PhoneTarget:
    """One registered phone of an operator: the URI to INVITE and the next hop."""

    uri: Uri
    destination: Address


class PhoneDirectory:
    """See the module docstring."""

    def __init__(self, *, db: Database, bus: EventBus, realm: str = "sipspeak",
                 registrar: Registrar | None = None,
                 algorithms: tuple[Algorithm, ...] = ("MD5",)) -> None:
        # MD5 alone by default: libre-based phones (baresip) give up on the whole 401 when
        # any challenge in it names an algorithm they lack (SHA-256, RFC 8760), and so do
        # many desk phones.  Pass ("SHA-256", "MD5") when every phone supports it.
        self.algorithms = algorithms
        self.db = db
        self.bus = bus
        self.realm = realm
        self.registrar = registrar or Registrar()
        self.auth: DigestServer | None = None
        self.handler: RegisterHandler | None = None
        self._expiry: asyncio.Task[None] | None = None
        self._extensions: dict[str, int] = {}  # extension -> user id, for the events
        self._unsaved: set[str] = set()  # extensions whose bindings changed since saved
        self._saver: asyncio.Task[None] | None = None

    async def start(self, ua: UserAgent) -> None:
        key_hex = await self.db.settings.get(_NONCE_KEY_SETTING)
        if not key_hex:
            key_hex = secrets.token_hex(32)
            await self.db.settings.set(_NONCE_KEY_SETTING, key_hex)
        # One DigestServer for REGISTER and INVITE: lock-out counts failures of both.
        self.auth = DigestServer(realm=self.realm, key=bytes.fromhex(key_hex),
                                 algorithms=self.algorithms)
        self.handler = RegisterHandler(registrar=self.registrar, auth=self.auth,
                                       lookup=self._secret, on_event=self._on_event,
                                       on_update=self._bindings_changed)
        await self._restore()
        self.handler.attach(ua)
        self._expiry = asyncio.get_running_loop().create_task(self.handler.run_expiry(),
                                                               name="registrar expiry")

    async def aclose(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            await asyncio.gather(self._expiry, return_exceptions=True)
        if self.handler is not None:
            await self.handler.aclose()
        if self._saver is not None:  # the last changes are kept, not dropped
            await asyncio.gather(self._saver, return_exceptions=True)

    # -- bindings kept across restarts -------------------------------------------------------
    async def _restore(self) -> None:
        now, wall_ms = asyncio.get_running_loop().time(), int(time.time() * 1000)
        kept = []
        for row in await self.db.phone_bindings.live(wall_ms):
            binding = restorable_binding(row, now=now, wall_ms=wall_ms)
            user = await self.operator(row.extension) if binding is not None else None
            if binding is None or user is None or row.credentials_tag != credentials_tag(user):
                continue  # unreachable now, no longer an operator, or made with old credentials
            self._extensions[row.extension] = user.id
            kept.append(binding)
        for event in self.registrar.restore(kept, now):
            log.info("registration kept from before the restart: %s", event.extension)
            self._on_event(event)
        if self.handler is not None:
            self.handler.reschedule()

    def _bindings_changed(self, extension: str) -> None:
        self._unsaved.add(extension)
        if self._saver is None or self._saver.done():
            self._saver = asyncio.get_running_loop().create_task(
                self._save(), name="registrar bindings")

    async def _save(self) -> None:
        """Write the current bindings of every changed extension (latest state wins)."""
        while self._unsaved:
            extension = self._unsaved.pop()
            try:
                user = await self.operator(extension)
                tag = credentials_tag(user) if user is not None else ""
                now, wall_ms = asyncio.get_running_loop().time(), int(time.time() * 1000)
                rows = [binding_row(b, now=now, wall_ms=wall_ms, tag=tag)
                        for b in self.registrar.lookup(extension, now)]
                await self.db.phone_bindings.replace(extension, rows)
            except Exception:
                log.exception("keeping the registration of %s failed", extension)

    async def operator(self, extension: str) -> User | None:
        user = await self.db.users.by_extension(extension)
        if user is None or user.deleted or not user.sip_password:
            return None
        return user

    async def _secret(self, username: str) -> StoredSecret | None:
        user = await self.operator(username)
        if user is None or user.sip_password is None:
            return None
        self._extensions[username] = user.id
        return StoredSecret.from_password(user.sip_password)

    def _on_event(self, event: RegistrarEvent) -> None:
        user_id = self._extensions.get(event.extension)
        if isinstance(event, ExtensionOnline):
            self.bus.publish("phone.online", extension=event.extension, user_id=user_id,
                             contacts=[str(b.contact.uri) for b in event.contacts])
        elif isinstance(event, ExtensionOffline):
            self.bus.publish("phone.offline", extension=event.extension, user_id=user_id,
                             reason=event.reason.value)

    def is_online(self, extension: str, now: float) -> bool:
        return self.registrar.is_online(extension, now)

    def targets(self, extension: str, now: float) -> list[PhoneTarget]:
        out: list[PhoneTarget] = []
        for binding in self.registrar.lookup(extension, now):
            uri = binding.uri
            if binding.source is not None:
                destination = binding.source
            elif isinstance(uri, SipUri):
                transport = _TRANSPORTS.get(uri.transport.lower(), "UDP")
                destination = Address(transport, uri.host, uri.port or 5060)
            else:
                continue
            out.append(PhoneTarget(uri=uri, destination=destination))
        return out

    async def authenticate_invite(self, request: SipRequest, source: Address,
                                  now: float) -> User | SipResponse:
        """The operator placing this INVITE, or the 407 / 403 to send instead."""
        if self.auth is None:
            raise RuntimeError("phone directory not started")
        verdict = await authenticate_request(
            self.auth, request, source=source, lookup=self._secret,
            clock=asyncio.get_running_loop().time, proxy=True,
            to_tag=secrets.token_hex(6))
        if isinstance(verdict, SipResponse):
            return verdict
        user = await self.operator(verdict)
        if user is None:
            return make_response(request, 403, "Forbidden (not an operator)",
                                 to_tag=secrets.token_hex(6))
        return user

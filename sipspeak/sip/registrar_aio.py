"""REGISTER handling for the call center's phones: Digest challenge, then the registrar.

Binds the sans-IO ``DigestServer`` (auth.py) and ``Registrar`` (registrar.py) to the
asyncio world: the secret lookup may be a coroutine (storage is aiosqlite), the clock is
the loop's, and ``run_expiry()`` purges bindings at ``Registrar.next_expiry()``.

RFC 3261 §10.3 steps, in order:

1. the Request-URI names one of our domains, else 404 (we are not a proxy);
2. Require lists nothing we do not support, else 420 with Unsupported (§8.2.2.3);
3. the request is authenticated (§22: 401 challenge, 403 while locked out);
4. the authenticated user may register this address-of-record (own extension), else 403;
5. the To URI is a sip:/sips: URI with a user part, else 404;
6-8. bindings are updated and the 200 lists them (``Registrar.handle_request``).

``RegisterHandler.attach(ua)`` plugs it into ``UserAgent.add_handler("REGISTER", …)``:
the handler answers later through ``UserAgent.respond`` once the lookup finished.

Public API: ``authenticate_request(auth, request, source=…, lookup=…, clock=…,
proxy=…)`` → user name or the response to send (also for operators' INVITEs);
``RegisterHandler(registrar=…, auth=…, lookup=…, domains=…, clock=…,
on_event=…)`` with ``async handle(request, source) -> SipResponse`` and
``async run_expiry()``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from email.utils import formatdate
from typing import TYPE_CHECKING

from sipspeak.sip.auth import (
    Accepted,
    Challenge,
    DigestServer,
    SecretNeeded,
    StoredSecret,
)
from sipspeak.sip.events import Address
from sipspeak.sip.message import SipRequest, SipResponse, make_response
from sipspeak.sip.registrar import Registrar, RegistrarEvent
from sipspeak.sip.uri import SipUri

if TYPE_CHECKING:
    from sipspeak.sip.transaction import ServerTransaction
    from sipspeak.sip.useragent import UserAgent

log = logging.getLogger(__name__)

SecretLookup = Callable[[str], Awaitable[StoredSecret | None] | StoredSecret | None]


async def authenticate_request(
    auth: DigestServer,
    request: SipRequest,
    *,
    source: Address,
    lookup: SecretLookup,
    clock: Callable[[], float],
    proxy: bool = False,
    to_tag: str | None = None,
) -> str | SipResponse:
    """Digest-check ``request`` (RFC 3261 §22): the authenticated user name, or the
    response to send instead (401 / 407 challenge, 403 locked out, 400 malformed).

    ``proxy=True`` challenges with 407 / Proxy-Authenticate, as for operators' INVITEs
    (§22.3); ``lookup`` may be a plain function or a coroutine function.
    """
    header = "Proxy-Authorization" if proxy else "Authorization"
    step = auth.inspect(
        method=request.method,
        uri=str(request.uri),
        authorization=request.headers.get_all(header),
        source=source.host,
        now=clock(),
        proxy=proxy,
        body=request.body,
    )
    if isinstance(step, SecretNeeded):
        found = lookup(step.username)
        secret = await found if inspect.isawaitable(found) else found
        decision = auth.verify(step, secret, now=clock())
    else:
        decision = step
    if isinstance(decision, Accepted):
        return decision.username
    if isinstance(decision, Challenge):
        return make_response(
            request,
            decision.status,
            decision.reason,
            to_tag=to_tag,
            headers=[(decision.header, value) for value in decision.values],
        )
    headers = []
    if decision.retry_after is not None:
        headers.append(("Retry-After", str(decision.retry_after)))
    return make_response(
        request, decision.status, decision.reason, to_tag=to_tag, headers=headers
    )


class RegisterHandler:
    """Answers REGISTER requests from operators' phones (RFC 3261 §10.3)."""

    def __init__(
        self,
        *,
        registrar: Registrar,
        auth: DigestServer,
        lookup: SecretLookup,
        domains: Iterable[str] | None = None,
        clock: Callable[[], float] | None = None,
        on_event: Callable[[RegistrarEvent], None] | None = None,
        on_update: Callable[[str], None] | None = None,
    ) -> None:
        self.registrar = registrar
        self.auth = auth
        self._lookup = lookup
        self.domains = None if domains is None else {d.lower() for d in domains}
        self._clock = clock
        self._on_event = on_event
        # Called with the extension after every accepted REGISTER (a binding was added,
        # refreshed or removed): the shell may keep the bindings, e.g. across a restart.
        self._on_update = on_update
        self._changed = asyncio.Event()
        self._ua: UserAgent | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def attach(self, ua: UserAgent) -> None:
        """Take REGISTER requests from the user agent (``UserAgent.add_handler``)."""
        self._ua = ua
        ua.add_handler("REGISTER", self._on_register)

    def _on_register(
        self, request: SipRequest, txn: ServerTransaction, now: float
    ) -> SipResponse | None:
        # The secret lookup may await storage: answer later through ``ua.respond``.
        task = asyncio.get_running_loop().create_task(self._answer(request, txn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return None

    async def _answer(self, request: SipRequest, txn: ServerTransaction) -> None:
        try:
            response = await self.handle(request, txn.peer)
        except Exception:
            log.exception("REGISTER from %s failed", txn.peer)
            response = make_response(request, 500, to_tag=secrets.token_hex(6))
        if self._ua is not None:
            self._ua.respond(txn, response, asyncio.get_running_loop().time())

    async def aclose(self) -> None:
        """Cancel REGISTER answers still waiting for a secret lookup."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _now(self) -> float:
        if self._clock is not None:
            return self._clock()
        return asyncio.get_running_loop().time()

    def _emit(self, events: Iterable[RegistrarEvent]) -> None:
        for event in events:
            log.info("registration: %s", event)
            if self._on_event is None:
                continue
            try:
                self._on_event(event)
            except Exception:
                log.exception("registration event handler failed on %s", event)

    async def handle(self, request: SipRequest, source: Address) -> SipResponse:
        """The final response to one REGISTER (the caller sends it in its transaction)."""
        to_tag = secrets.token_hex(6)
        if request.method != "REGISTER":
            raise ValueError(f"not a REGISTER: {request.method}")
        uri = request.uri
        # Step 1: the Request-URI must name a domain we are the registrar for.
        if (
            not isinstance(uri, SipUri)
            or self.domains is not None
            and uri.host.lower() not in self.domains
        ):
            return make_response(
                request, 404, "Not Found (unknown domain)", to_tag=to_tag
            )
        # Step 2 (§8.2.2.3): we support no option tags in Require.
        required = request.headers.get_list("Require")
        if required:
            return make_response(
                request,
                420,
                to_tag=to_tag,
                headers=[("Unsupported", ", ".join(required))],
            )
        # Step 5 first, so authorisation can compare names: the AOR is the To URI.
        aor = request.to.uri
        if not isinstance(aor, SipUri) or not aor.user:
            return make_response(
                request, 404, "Not Found (bad address-of-record)", to_tag=to_tag
            )
        extension = aor.user_unescaped or ""
        # Step 3: authentication (§22.4: a registrar challenges with 401).
        verdict = await authenticate_request(
            self.auth,
            request,
            source=source,
            lookup=self._lookup,
            clock=self._now,
            to_tag=to_tag,
        )
        if isinstance(verdict, SipResponse):
            return verdict
        # Step 4: a phone may only bind its own extension.
        if verdict != extension:
            return make_response(
                request, 403, "Forbidden (not your address-of-record)", to_tag=to_tag
            )
        result = self.registrar.handle_request(
            request,
            extension=extension,
            now=self._now(),
            source=source,
        )
        self._emit(result.events)
        self.reschedule()
        if result.status == 200 and self._on_update is not None:
            try:
                self._on_update(extension)
            except Exception:
                log.exception("registration update handler failed for %s", extension)
        response = result.response(request, to_tag=to_tag)
        if response.status == 200:
            # §10.3 step 8: "The response SHOULD include a Date header field."
            response.headers.add("Date", formatdate(usegmt=True))
        return response

    def reschedule(self) -> None:
        """Make ``run_expiry`` re-read the deadline (bindings or the clock changed)."""
        self._changed.set()

    async def run_expiry(self) -> None:
        """Purge expired bindings at each ``next_expiry()`` deadline until cancelled."""
        while True:
            deadline = self.registrar.next_expiry()
            self._changed.clear()
            delay = None if deadline is None else max(0.0, deadline - self._now())
            try:
                await asyncio.wait_for(self._changed.wait(), delay)
            except TimeoutError:
                pass
            self._emit(self.registrar.expire(self._now()))

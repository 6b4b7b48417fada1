"""The sans-IO SIP user agent core: transactions + dialogs + INVITE sessions (RFC 3261 §8).

``UserAgent`` is what the asyncio shell (``transport.py``) feeds and drains:

* inputs — ``receive_data(data, source, now)`` (one datagram, one framed TCP
  message or one WebSocket message; never raises on bad input: a request
  understood well enough is answered with the error's ``status_hint``, anything
  else dropped and reported as ``MessageRejected``), ``handle_timer(now)``,
  ``process_pending(now)`` after the application acted on a session.
* outputs — ``messages_to_send() -> list[Transmit]``, ``next_event()``,
  ``get_timer()`` (the one deadline the shell arms), and ``wakeup`` — a callback
  the shell sets, called when an application action queued something outside
  input processing.

Extension points:

* ``add_handler(method, handler)`` — out-of-dialog requests of ``method`` (e.g.
  REGISTER for the registrar) go to ``handler(request, transaction, now)``,
  which returns a ``SipResponse`` to send, or None and answers later with
  ``respond(transaction, response, now)``.  OPTIONS is answered 200 unless a
  handler takes it; INVITE creates an ``InviteSession`` and an ``IncomingCall``.
* ``send_request(request, destination, now, *, listener=None, authenticate=None)``
  — any request through a client transaction (e.g. REGISTER from the trunk
  client).  ``listener.response_received(response, txn, now)`` /
  ``listener.transaction_timed_out(txn, now)``, or events
  ``ResponseReceived`` / ``TransactionTimedOut`` without a listener.
  ``authenticate(request, response)`` returns headers to retry a 401/407 with
  (next CSeq, new branch) or None to give up.
* ``build_request(method, uri, *, from_, to, destination, …)`` — an
  out-of-dialog request with Via, Contact, Max-Forwards, tags and Call-ID.
* ``invite(uri=…, from_=…, destination=…, body=…, now=…)`` -> ``InviteSession``.
"""

from __future__ import annotations

import logging
import secrets
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Protocol

from sipspeak.sip.errors import SipError
from sipspeak.sip.events import (
    Address,
    MessageRejected,
    RequestReceived,
    ResponseReceived,
    TransactionTimedOut,
    Transmit,
    TransportName,
)
from sipspeak.sip.headers import CSeq, NameAddr, Via
from sipspeak.sip.message import (
    Headers,
    SipRequest,
    SipResponse,
    make_response,
    parse_message,
)
from sipspeak.sip.sdp import extract_sdp
from sipspeak.sip.session import Authenticate, InviteSession, LateAnswer, new_tag
from sipspeak.sip.timers import TimerQueue, TimerValues
from sipspeak.sip.transaction import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    ClientTransaction,
    ServerTransaction,
)
from sipspeak.sip.transaction_layer import (
    TransactionLayer,
    new_branch,
    response_destination,
)
from sipspeak.sip.uri import SipUri, Uri

log = logging.getLogger("sipspeak.sip.useragent")

RequestHandler = Callable[[SipRequest, ServerTransaction, float], SipResponse | None]
_SCHEMES = frozenset({"sip", "sips"})
_ALWAYS_ALLOWED = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO", "NOTIFY")
# Methods of RFC 3261 and its extensions: recognised (405 if unsupported), others get 501.
_KNOWN_METHODS = frozenset(
    {
        "REGISTER",
        "SUBSCRIBE",
        "NOTIFY",
        "REFER",
        "MESSAGE",
        "PRACK",
        "PUBLISH",
        "UPDATE",
    }
)


class ClientListener(Protocol):
    """Receives what a client transaction started with ``send_request`` produces."""

    def response_received(
        self, response: SipResponse, txn: ClientTransaction, now: float
    ) -> None: ...

    def transaction_timed_out(self, txn: ClientTransaction, now: float) -> None: ...


class _AuthenticatingClient:
    """Retries a challenged request with credentials (RFC 3261 §22.2), then reports."""

    def __init__(
        self, ua: UserAgent, listener: ClientListener | None, authenticate: Authenticate
    ) -> None:
        self._ua = ua
        self._listener = listener
        self._authenticate = authenticate
        self._retries = 0

    def response_received(
        self, response: SipResponse, txn: ClientTransaction, now: float
    ) -> None:
        if response.status in (401, 407) and self._retries < 3:
            headers = self._authenticate(txn.request, response)
            if headers:
                self._retries += 1
                old = txn.request
                new_headers = Headers(old.headers)
                for name, _ in headers:
                    new_headers.remove(name)
                for name, value in headers:
                    new_headers.add(name, value)
                retry = replace(
                    old,
                    via=[self._ua.via_for(txn.peer)],
                    cseq=CSeq(old.cseq.seq + 1, old.method),
                    headers=new_headers,
                )
                self._ua.send_request(retry, txn.peer, now, listener=self)
                return
        self._ua.deliver_response(self._listener, response, txn, now)

    def transaction_timed_out(self, txn: ClientTransaction, now: float) -> None:
        self._ua.deliver_timeout(self._listener, txn, now)


class UserAgent:
    """See the module docstring."""

    def __init__(
        self,
        *,
        local: Address,
        user: str = "sipspeak",
        user_agent: str = "SipSpeak",
        timer_values: TimerValues | None = None,
        supported: Iterable[str] = (),
    ) -> None:
        self.timer_values = timer_values or TimerValues()
        self.queue = TimerQueue()
        self.transactions = TransactionLayer(
            queue=self.queue, timer_values=self.timer_values
        )
        self.addresses: dict[TransportName, Address] = {local.transport: local}
        self.user = user
        self.user_agent = user_agent
        self.supported = frozenset(s.lower() for s in supported)
        self.wakeup: Callable[[], None] | None = None
        self._events: deque[object] = deque()
        self._to_send: list[Transmit] = []
        self._handlers: dict[str, RequestHandler] = {}
        self._dialogs: dict[tuple[str, str, str], InviteSession] = {}
        self._busy = False
        self._now = 0.0

    # ------------------------------------------------------------ configuration
    def add_local_address(self, address: Address) -> None:
        """Announce a listening transport (the shell does this after binding)."""
        self.addresses[address.transport] = address

    def add_handler(self, method: str, handler: RequestHandler) -> None:
        self._handlers[method.upper()] = handler

    @property
    def allow(self) -> str:
        methods = list(_ALWAYS_ALLOWED) + [
            m for m in self._handlers if m not in _ALWAYS_ALLOWED
        ]
        return ", ".join(methods)

    # ------------------------------------------------------------ outputs
    def messages_to_send(self) -> list[Transmit]:
        out, self._to_send = self._to_send, []
        return out

    def next_event(self) -> object | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        return self.queue.get_timer()

    @property
    def session_count(self) -> int:
        return len(self._dialogs)

    # ------------------------------------------------------------ inputs
    def receive_data(self, data: bytes, source: Address, now: float) -> None:
        """One whole message from the network; bad input never raises (§18.3, §21.4)."""
        try:
            message = parse_message(data, stream=source.transport in ("TCP", "TLS"))
        except SipError as exc:
            request = exc.request
            if request is not None and request.method != "ACK":
                via = request.via[0].stamped(source.host, source.port)
                request.via[0] = via
                response = make_response(
                    request,
                    exc.status_hint,
                    exc.reason[:100].replace("\r", " ").replace("\n", " "),
                )
                self._to_send.append(
                    Transmit(response, response_destination(via, source))
                )
            self._events.append(MessageRejected(exc.reason, source))
            return
        self.receive_message(message, source, now)

    def receive_message(
        self, message: SipRequest | SipResponse, source: Address, now: float
    ) -> None:
        self._now = now
        self._busy = True
        try:
            if isinstance(message, SipResponse):
                if not self.transactions.receive_response(message, now):
                    self._events.append(
                        MessageRejected("response matches no transaction", source)
                    )
            else:
                self.transactions.receive_request(message, source, now)
            self._drain(now)
        finally:
            self._busy = False

    def handle_timer(self, now: float) -> None:
        self._now = now
        self._busy = True
        try:
            for owner in self.queue.pop_due(now):
                owner.handle_timer(now)
                self._drain(now)
        finally:
            self._busy = False

    def process_pending(self, now: float) -> None:
        """Handle whatever application calls queued (responses, BYE …)."""
        self._now = now
        self._drain(now)

    def _drain(self, now: float) -> None:
        outbox = self.transactions.outbox
        while outbox:
            items = list(outbox)
            outbox.clear()
            for item in items:
                if isinstance(item, Transmit):
                    self._to_send.append(item)
                elif isinstance(item, RequestReceived):
                    self._dispatch_request(item, now)
                elif isinstance(item, ResponseReceived):
                    self.deliver_response(
                        item.transaction.owner, item.response, item.transaction, now
                    )
                elif isinstance(item, TransactionTimedOut):
                    self._timed_out(item.transaction, item.owner, now)

    # ------------------------------------------------------------ SessionHost
    def via_for(self, destination: Address) -> Via:
        local = self.addresses.get(destination.transport) or next(
            iter(self.addresses.values())
        )
        return Via(
            transport=destination.transport,
            host=local.host,
            port=local.port,
            parameters=(("branch", new_branch()), ("rport", None)),
        )

    def contact_for(self, destination: Address) -> NameAddr:
        local = self.addresses.get(destination.transport) or next(
            iter(self.addresses.values())
        )
        params: tuple[tuple[str, str | None], ...] = ()
        if local.transport != "UDP":
            params = (("transport", local.transport.lower()),)
        return NameAddr(
            uri=SipUri(
                user=self.user, host=local.host, port=local.port, parameters=params
            )
        )

    def emit(self, event: object) -> None:
        self._events.append(event)

    def dialog_created(self, session: InviteSession) -> None:
        if session.dialog is not None:
            self._dialogs[session.dialog.id] = session

    def session_ended(self, session: InviteSession) -> None:
        if (
            session.dialog is not None
            and self._dialogs.get(session.dialog.id) is session
        ):
            del self._dialogs[session.dialog.id]

    def changed(self) -> None:
        """An application action queued messages: move them out, wake the shell."""
        if self._busy:
            return
        self._drain(self._now)
        if self.wakeup is not None:
            self.wakeup()

    # ------------------------------------------------------------ UAC API
    def build_request(
        self,
        method: str,
        uri: Uri,
        *,
        from_: NameAddr,
        to: NameAddr,
        destination: Address,
        call_id: str | None = None,
        cseq: int = 1,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> SipRequest:
        """An out-of-dialog request (§8.1.1); a From tag is added if missing."""
        all_headers = Headers(headers)
        if "User-Agent" not in all_headers:
            all_headers.add("User-Agent", self.user_agent)
        return SipRequest(
            method=method,
            uri=uri,
            via=[self.via_for(destination)],
            from_=from_ if from_.tag else from_.with_tag(new_tag()),
            to=to,
            call_id=call_id or f"{secrets.token_hex(12)}",
            cseq=CSeq(cseq, method),
            max_forwards=70,
            contact=[self.contact_for(destination)]
            if method in ("INVITE", "REGISTER", "SUBSCRIBE")
            else [],
            headers=all_headers,
            body=body,
        )

    def send_request(
        self,
        request: SipRequest,
        destination: Address,
        now: float,
        *,
        listener: ClientListener | None = None,
        authenticate: Authenticate | None = None,
    ) -> ClientTransaction:
        """Send ``request`` through a new client transaction (§17.1)."""
        txn = self.transactions.send_request(request, destination, now)
        txn.owner = (
            _AuthenticatingClient(self, listener, authenticate)
            if authenticate
            else listener
        )
        self.changed()
        return txn

    def invite(
        self,
        *,
        uri: Uri,
        from_: NameAddr,
        destination: Address,
        now: float,
        to: NameAddr | None = None,
        body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
        authenticate: Authenticate | None = None,
        ring_timeout: float | None = None,
        late_answer: LateAnswer | None = None,
    ) -> InviteSession:
        """Start an outgoing call (UAC, §13.2.1)."""
        all_headers = list(headers)
        if body and not any(name.lower() == "content-type" for name, _ in all_headers):
            all_headers.append(("Content-Type", "application/sdp"))
        request = self.build_request(
            "INVITE",
            uri,
            from_=from_,
            to=to or NameAddr(uri=uri),
            destination=destination,
            headers=all_headers,
            body=body,
        )
        session = InviteSession(
            self,
            is_uac=True,
            invite=request,
            peer=destination,
            authenticate=authenticate,
            late_answer=late_answer,
        )
        session.start(now, ring_timeout)
        self.changed()
        return session

    def respond(
        self, txn: ServerTransaction, response: SipResponse, now: float
    ) -> None:
        """Answer a request handed to a handler, later than the handler call."""
        txn.send_response(response, now)
        self.changed()

    def deliver_response(
        self, owner: object, response: SipResponse, txn: ClientTransaction, now: float
    ) -> None:
        if owner is None:
            self._events.append(ResponseReceived(response, txn))
        else:
            owner.response_received(response, txn, now)  # type: ignore[attr-defined]

    def deliver_timeout(
        self, owner: object, txn: ClientTransaction, now: float
    ) -> None:
        if owner is None:
            self._events.append(TransactionTimedOut(txn))
        else:
            owner.transaction_timed_out(txn, now)  # type: ignore[attr-defined]

    def _timed_out(
        self, txn: ClientTransaction | ServerTransaction, owner: object, now: float
    ) -> None:
        if isinstance(owner, InviteSession):
            owner.transaction_timed_out(txn, now)
        elif isinstance(txn, ClientInviteTransaction | ClientNonInviteTransaction):
            self.deliver_timeout(owner, txn, now)

    # ------------------------------------------------------------ UAS
    def _reply(
        self,
        txn: ServerTransaction,
        status: int,
        now: float,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        txn.send_response(
            make_response(txn.request, status, to_tag=new_tag(), headers=headers), now
        )

    def _dispatch_request(self, event: RequestReceived, now: float) -> None:
        request = event.request
        txn = event.transaction
        if txn is None:  # ACK for a 2xx (§13.3.1.4)
            session = self._dialogs.get(
                (request.call_id, request.to.tag or "", request.from_.tag or "")
            )
            if session is not None:
                session.ack_received(request, now)
            return
        method = request.method
        if event.merged:
            self._reply(txn, 482, now)  # §8.2.2.2: the same request by another path
            return
        if request.uri.scheme not in _SCHEMES:
            self._reply(txn, 416, now)  # §8.2.2.1
            return
        if method != "CANCEL":
            unknown = [
                o
                for o in request.headers.get_list("Require")
                if o.lower() not in self.supported
            ]
            if unknown:
                self._reply(
                    txn, 420, now, [("Unsupported", ", ".join(unknown))]
                )  # §8.2.2.3
                return
        to_tag = request.to.tag
        if to_tag:
            session = self._dialogs.get(
                (request.call_id, to_tag, request.from_.tag or "")
            )
            if session is not None:
                session.request_received(request, txn, now)
                return
            if method not in self._handlers:
                self._reply(txn, 481, now)  # §12.2.2
                return
        if method == "CANCEL":
            self._cancel(request, txn, now)
        elif method == "INVITE" and not to_tag:
            self._incoming_invite(request, txn, now)
        elif method in self._handlers:
            try:
                response = self._handlers[method](request, txn, now)
            except Exception:
                # A broken handler must not stall the transaction: answer 500 (§21.5.1).
                log.exception("%s handler failed (Call-ID %s)", method, request.call_id)
                response = make_response(request, 500, to_tag=new_tag())
            if response is not None:
                txn.send_response(response, now)
        elif method == "OPTIONS":
            self._reply(
                txn,
                200,
                now,
                [
                    ("Allow", self.allow),
                    ("Accept", "application/sdp"),
                    ("User-Agent", self.user_agent),
                ],
            )
        elif method in ("BYE", "INFO", "NOTIFY"):
            self._reply(txn, 481, now)
        elif method in _KNOWN_METHODS:
            self._reply(txn, 405, now, [("Allow", self.allow)])  # §8.2.1
        else:
            self._reply(
                txn, 501, now, [("Allow", self.allow)]
            )  # §21.5.2: not recognised

    def _cancel(self, cancel: SipRequest, txn: ServerTransaction, now: float) -> None:
        """§9.2: 200 to a CANCEL matching a transaction, 487 to that INVITE."""
        invite_txn = self.transactions.find_invite(cancel)
        if invite_txn is None:
            self._reply(txn, 481, now)
            return
        txn.send_response(
            make_response(cancel, 200, to_tag=invite_txn.request.to.tag or new_tag()),
            now,
        )
        owner = invite_txn.owner
        if isinstance(owner, InviteSession):
            owner.cancelled(now)

    def _incoming_invite(
        self, request: SipRequest, txn: ServerTransaction, now: float
    ) -> None:
        accept = [
            a.split(";")[0].strip().lower() for a in request.headers.get_list("Accept")
        ]
        if accept and not {"application/sdp", "application/*", "*/*"} & set(accept):
            self._reply(txn, 406, now, [("Accept", "application/sdp")])  # §21.4.7
            return
        if (
            request.body
            and extract_sdp(request.headers.get("Content-Type"), request.body) is None
        ):
            self._reply(txn, 415, now, [("Accept", "application/sdp")])  # §8.2.3
            return
        if request.headers.get("Content-Encoding"):
            self._reply(txn, 415, now, [("Accept-Encoding", "identity")])
            return
        session = InviteSession(self, is_uac=False, invite=request, peer=txn.peer)
        session.accept_invite(txn, now)

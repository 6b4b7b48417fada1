"""The transaction layer: matching messages to transactions (RFC 3261 §17.1.3, §17.2.3).

Public API (sans-IO; ``now`` is always a parameter):

* ``TransactionLayer(queue=TimerQueue(), timer_values=TimerValues())``
  - ``outbox`` — ordered list of ``Transmit`` items and events
    (``RequestReceived``, ``ResponseReceived``, ``TransactionTimedOut``); the owner
    drains it after every call.
  - ``receive_request(request, source, now)`` — stamps the top Via with
    ``received`` / ``rport`` (§18.2.1, RFC 3581), absorbs retransmissions into
    their transaction (which resends its last response), creates a server
    transaction for a new request, and passes an ACK that matches no
    transaction (the ACK for a 2xx, §17.2.3) straight up with ``transaction=None``.
  - ``receive_response(response, now)`` — to the client transaction or dropped
    (returns False) as a stray / multi-Via response (§18.1.2).
  - ``send_request(request, destination, now) -> ClientTransaction`` — the
    request's top Via must carry a fresh ``branch`` (``new_branch()``).
  - ``send_stateless(message, destination)`` — ACK for a 2xx, 2xx retransmissions.
  - ``find_invite(cancel) -> ServerInviteTransaction | None`` — the INVITE a
    CANCEL targets (§9.2).
* ``response_destination(via, source) -> Address`` — §18.2.2 with RFC 3581.
* ``new_branch() -> str`` — a branch starting with the magic cookie ``z9hG4bK``.
"""

from __future__ import annotations

import itertools
import secrets

from sipspeak.sip.errors import LocalProtocolError
from sipspeak.sip.events import Address, RequestReceived, Transmit
from sipspeak.sip.headers import Via
from sipspeak.sip.message import SipRequest, SipResponse
from sipspeak.sip.timers import TimerQueue, TimerValues
from sipspeak.sip.transaction import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    ClientTransaction,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    ServerTransaction,
    State,
    _Transaction,
)

MAGIC_COOKIE = "z9hG4bK"
_BRANCH_PREFIX = MAGIC_COOKIE + secrets.token_hex(4)
_branch_counter = itertools.count(1)


def new_branch() -> str:
    """A branch unique in space and time, starting with ``z9hG4bK`` (§8.1.1.7)."""
    return f"{_BRANCH_PREFIX}.{next(_branch_counter):x}{secrets.token_hex(3)}"


def server_key(request: SipRequest) -> tuple[str, ...]:
    """§17.2.3: branch + sent-by + method (ACK matches INVITE); RFC 2543 fallback."""
    top = request.via[0]
    method = "INVITE" if request.method == "ACK" else request.method
    branch = top.branch
    if branch and branch.startswith(MAGIC_COOKIE):
        return (branch, top.sent_by.lower(), method)
    # RFC 2543 peers: Request-URI, From tag, Call-ID, CSeq number and the top Via
    # (To tag left out: an ACK carries the tag our response added, §17.2.3).
    return (
        "2543",
        str(request.uri),
        request.from_.tag or "",
        request.call_id,
        str(request.cseq.seq),
        str(top),
        method,
    )


def client_key(branch: str, method: str) -> tuple[str, ...]:
    """§17.1.3: branch of the top Via + CSeq method."""
    return (branch, method)


def _merge_key(request: SipRequest) -> tuple[str, str, str]:
    return (request.call_id, request.from_.tag or "", str(request.cseq))


def response_destination(via: Via, source: Address) -> Address:
    """Where responses to a request go (RFC 3261 §18.2.2, RFC 3581 §4)."""
    if source.connection is not None:
        return source
    host = via.received or via.host
    rport = via.rport
    if isinstance(rport, int) and not isinstance(rport, bool):
        port = rport
    else:
        port = via.port or 5060
    if host.startswith("["):
        host = host[1:-1]
    return Address(source.transport, host, port)


class TransactionLayer:
    """Holds every live transaction and routes messages to them."""

    def __init__(
        self,
        *,
        queue: TimerQueue | None = None,
        timer_values: TimerValues | None = None,
    ) -> None:
        self.timer_values = timer_values or TimerValues()
        self.queue = queue if queue is not None else TimerQueue()
        self.outbox: list[object] = []
        self._client: dict[tuple[str, ...], ClientTransaction] = {}
        self._server: dict[tuple[str, ...], ServerTransaction] = {}
        # §8.2.2.2 merged-request detection: (Call-ID, From tag, CSeq) -> first transaction
        self._merge: dict[tuple[str, str, str], ServerTransaction] = {}

    # TransactionContext
    def schedule(self, deadline: float, owner: _Transaction) -> None:
        self.queue.schedule(deadline, owner)

    def terminated(self, transaction: _Transaction) -> None:
        table: (
            dict[tuple[str, ...], ClientTransaction]
            | dict[tuple[str, ...], ServerTransaction]
        )
        if isinstance(
            transaction, ClientInviteTransaction | ClientNonInviteTransaction
        ):
            table = self._client
        else:
            table = self._server
        if table.get(transaction.key) is transaction:
            del table[transaction.key]
        if table is self._server and transaction.request.to.tag is None:
            merge_key = _merge_key(transaction.request)
            if self._merge.get(merge_key) is transaction:
                del self._merge[merge_key]
        # The owner usually points back at the transaction (a session's INVITE):
        # breaking the cycle here spares the cyclic GC ~40 objects per call.
        transaction.owner = None

    @property
    def transaction_count(self) -> int:
        return len(self._client) + len(self._server)

    def receive_request(self, request: SipRequest, source: Address, now: float) -> None:
        top = request.via[0].stamped(source.host, source.port)
        request.via[0] = top
        key = server_key(request)
        existing = self._server.get(key)
        if existing is not None:
            existing.receive_request(request, now)
            return
        if request.method == "ACK":
            self.outbox.append(RequestReceived(request, None, source))
            return
        peer = response_destination(top, source)
        transaction: ServerTransaction
        if request.method == "INVITE":
            transaction = ServerInviteTransaction(
                key=key, state=State.PROCEEDING, request=request, peer=peer, ctx=self
            )
        else:
            transaction = ServerNonInviteTransaction(
                key=key, state=State.TRYING, request=request, peer=peer, ctx=self
            )
        self._server[key] = transaction
        merged = False
        if request.to.tag is None:
            merge_key = _merge_key(request)
            first = self._merge.get(merge_key)
            if first is None:
                self._merge[merge_key] = transaction
            else:
                merged = True
        transaction.start(now, merged)

    def receive_response(self, response: SipResponse, now: float) -> bool:
        """Feed a response to its client transaction; False if it was dropped."""
        if len(response.via) != 1:
            return False  # §18.1.2: more than one Via — not for us
        branch = response.via[0].branch
        if not branch:
            return False
        transaction = self._client.get(client_key(branch, response.cseq.method))
        if transaction is None:
            return False
        transaction.receive_response(response, now)
        return True

    def send_request(
        self, request: SipRequest, destination: Address, now: float
    ) -> ClientTransaction:
        """Start a client transaction for ``request`` (§17.1)."""
        if request.method == "ACK":
            raise LocalProtocolError(
                "ACK is not sent through a client transaction (§17.1)"
            )
        branch = request.branch
        if not branch or not branch.startswith(MAGIC_COOKIE):
            raise LocalProtocolError("a request needs a top Via with a z9hG4bK branch")
        key = client_key(branch, request.method)
        if key in self._client:
            raise LocalProtocolError(f"branch {branch} already in use")
        transaction: ClientTransaction
        if request.method == "INVITE":
            transaction = ClientInviteTransaction(
                key=key,
                state=State.CALLING,
                request=request,
                peer=destination,
                ctx=self,
            )
        else:
            transaction = ClientNonInviteTransaction(
                key=key, state=State.TRYING, request=request, peer=destination, ctx=self
            )
        self._client[key] = transaction
        transaction.start(now)
        return transaction

    def send_stateless(
        self, message: SipRequest | SipResponse, destination: Address
    ) -> None:
        self.outbox.append(Transmit(message, destination))

    def find_invite(self, cancel: SipRequest) -> ServerInviteTransaction | None:
        """The server INVITE transaction a CANCEL matches (§9.2)."""
        key = server_key(cancel)
        found = self._server.get((*key[:-1], "INVITE"))
        return found if isinstance(found, ServerInviteTransaction) else None

    def abandon(self, transaction: ClientTransaction | ServerTransaction) -> None:
        """Drop a transaction the TU has given up on, e.g. an INVITE still in
        Proceeding 64*T1 after its CANCEL (§9.1), which no timer would end."""
        transaction.state = State.TERMINATED
        transaction.abandon_timers()
        self.terminated(transaction)

    def find_client(self, branch: str, method: str) -> ClientTransaction | None:
        return self._client.get(client_key(branch, method))

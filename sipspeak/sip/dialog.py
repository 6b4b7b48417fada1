"""SIP dialogs (RFC 3261 §12): state, route set, CSeq, remote target, request building.

Public API:

* ``Dialog.for_uac(request, response, flow)`` — dialog of the UAC from a 1xx (with
  To tag) or 2xx to its request (§12.1.2); ``Dialog.for_uas(request, local_tag,
  local_contact, flow)`` — dialog of the UAS (§12.1.1).
* ``Dialog.create_request(method, *, via, body=b"", headers=(), cseq=None)`` —
  an in-dialog request (§12.2.1.1): Request-URI, Route (loose and strict routing
  §16.12.1.2), From/To with tags, Call-ID, the next local CSeq.
* ``Dialog.check_request(request)`` — §12.2.2: raises ``SipError`` (500) for an
  out-of-order CSeq; updates the remote CSeq and, for a target refresh
  (re-INVITE / UPDATE), the remote target.
* ``Dialog.confirm(response)`` — early -> confirmed on a 2xx; refreshes the target.
* ``Dialog.destination(default_transport)`` — the ``Address`` of the next hop.
* ``Dialog.id`` — ``(call_id, local_tag, remote_tag)`` (§12).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from sipspeak.sip.errors import SipError
from sipspeak.sip.events import Address, TransportName
from sipspeak.sip.headers import CSeq, NameAddr, Via
from sipspeak.sip.message import Headers, SipRequest, SipResponse
from sipspeak.sip.uri import SipUri, Uri

TARGET_REFRESH = frozenset({"INVITE", "UPDATE"})
_TRANSPORTS: dict[str, TransportName] = {
    "UDP": "UDP", "TCP": "TCP", "TLS": "TLS", "WS": "WS", "WSS": "WSS",
}  # fmt: skip


class DialogState(enum.Enum):
    """Dialog states of RFC 3261 §12."""

    EARLY = "Early"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


class OutOfOrderRequest(SipError):
    """§12.2.2: a request with a lower CSeq than the last one gets a 500."""

    status_hint = 500


def _contact_target(contact: list[NameAddr], fallback: Uri) -> Uri:
    return contact[0].uri if contact else fallback


@dataclass(slots=True, kw_only=True)
class Dialog:
    """One dialog; mutable as it evolves (CSeq, target refresh, state)."""

    call_id: str
    local_tag: str
    remote_tag: str
    local: NameAddr  # our From in requests we send
    remote: NameAddr  # our To in requests we send
    local_seq: int
    remote_seq: int | None
    remote_target: Uri
    route_set: list[NameAddr] = field(default_factory=list)
    local_contact: NameAddr | None = None
    secure: bool = False
    state: DialogState = DialogState.EARLY
    is_uac: bool = True
    # The connection the dialog's messages flow over (TCP / WebSocket), so a
    # browser behind a ".invalid" Contact stays reachable (RFC 7118 §5).
    flow: Address | None = None

    @property
    def id(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def for_uac(
        cls, request: SipRequest, response: SipResponse, flow: Address | None
    ) -> Dialog:
        """§12.1.2: route set is the Record-Route of the response, reversed."""
        remote_tag = response.to.tag or ""
        return cls(
            call_id=request.call_id,
            local_tag=request.from_.tag or "",
            remote_tag=remote_tag,
            local=request.from_,
            remote=response.to,
            local_seq=request.cseq.seq,
            remote_seq=None,
            remote_target=_contact_target(response.contact, request.uri),
            route_set=list(reversed(response.record_route)),
            local_contact=request.contact[0] if request.contact else None,
            secure=isinstance(request.uri, SipUri) and request.uri.scheme == "sips",
            state=DialogState.CONFIRMED
            if 200 <= response.status < 300
            else DialogState.EARLY,
            is_uac=True,
            flow=flow if flow is not None and flow.connection is not None else None,
        )

    @classmethod
    def for_uas(
        cls,
        request: SipRequest,
        *,
        local_tag: str,
        local_contact: NameAddr | None,
        flow: Address | None,
    ) -> Dialog:
        """§12.1.1: route set is the Record-Route of the request, in order."""
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=request.from_.tag or "",
            local=request.to.with_tag(local_tag),
            remote=request.from_,
            local_seq=0,
            remote_seq=request.cseq.seq,
            remote_target=_contact_target(request.contact, request.from_.uri),
            route_set=list(request.record_route),
            local_contact=local_contact,
            secure=isinstance(request.uri, SipUri) and request.uri.scheme == "sips",
            state=DialogState.EARLY,
            is_uac=False,
            flow=flow if flow is not None and flow.connection is not None else None,
        )

    def confirm(self, response: SipResponse) -> None:
        """A 2xx for the dialog's INVITE (or a target refresh) arrived (§12.1.2, §12.2.1.2)."""
        if response.contact:
            self.remote_target = response.contact[0].uri
        if self.state is DialogState.EARLY and 200 <= response.status < 300:
            self.state = DialogState.CONFIRMED
            if self.is_uac:
                self.route_set = list(reversed(response.record_route))

    def check_request(self, request: SipRequest) -> None:
        """§12.2.2 processing of an in-dialog request."""
        seq = request.cseq.seq
        if request.method not in ("ACK", "CANCEL"):
            if self.remote_seq is not None and seq < self.remote_seq:
                raise OutOfOrderRequest(
                    f"CSeq {seq} lower than {self.remote_seq} (§12.2.2)"
                )
            self.remote_seq = seq
        if request.method in TARGET_REFRESH and request.contact:
            self.remote_target = request.contact[0].uri

    def next_seq(self) -> int:
        self.local_seq += 1
        return self.local_seq

    def _request_uri_and_routes(self) -> tuple[Uri, list[NameAddr]]:
        if not self.route_set:
            return self.remote_target, []
        first = self.route_set[0].uri
        if isinstance(first, SipUri) and first.has_param("lr"):
            return self.remote_target, list(self.route_set)
        # Strict router (§12.2.1.1): it becomes the Request-URI, the target the last Route.
        return first, [*self.route_set[1:], NameAddr(uri=self.remote_target)]

    def create_request(
        self,
        method: str,
        *,
        via: Via,
        body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
        cseq: int | None = None,
    ) -> SipRequest:
        """A request within the dialog (§12.2.1.1); ``cseq`` for ACK (INVITE's number)."""
        uri, routes = self._request_uri_and_routes()
        seq = cseq if cseq is not None else self.next_seq()
        return SipRequest(
            method=method,
            uri=uri,
            via=[via],
            from_=self.local,
            to=self.remote,
            call_id=self.call_id,
            cseq=CSeq(seq, method),
            max_forwards=70,
            route=routes,
            contact=[self.local_contact]
            if self.local_contact and method != "BYE"
            else [],
            headers=Headers(headers),
            body=body,
        )

    def destination(self, default_transport: TransportName = "UDP") -> Address:
        """Next hop of in-dialog requests: the flow, else first Route / remote target (§8.1.2)."""
        if self.flow is not None:
            return self.flow
        uri, routes = self._request_uri_and_routes()
        hop = routes[0].uri if routes else uri
        return uri_destination(hop, default_transport)


def uri_destination(uri: Uri, default_transport: TransportName = "UDP") -> Address:
    """Host, port and transport a SIP URI points at, without DNS (RFC 3263 §4 defaults)."""
    if not isinstance(uri, SipUri):
        raise SipError(f"cannot route to {uri}")
    transport = (
        _TRANSPORTS.get(uri.transport, default_transport)
        if uri.param("transport")
        else default_transport
    )
    host = uri.host[1:-1] if uri.host.startswith("[") else uri.host
    maddr = uri.param("maddr")
    if maddr:
        host = maddr
    port = uri.port or (5061 if uri.scheme == "sips" or transport == "TLS" else 5060)
    return Address(transport, host, port)

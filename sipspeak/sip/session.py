"""INVITE sessions: the dialog usage created by an INVITE (RFC 3261 §13, §14, §15, §9).

An ``InviteSession`` is one call leg seen from the SIP core, UAC or UAS.  It owns
its ``Dialog`` and drives it through the INVITE, re-INVITE, ACK, CANCEL and BYE
exchanges; the application (the calls layer) drives it with a few methods and
learns what happened from events in ``UserAgent.next_event()``.

UAC (``UserAgent.invite(...)`` returns the session):
  ``cancel(now)`` (§9.1; sent once a provisional response arrived),
  ``hangup(now)`` (CANCEL before answer, BYE after), ``reinvite(body, now)``.
  Events: ``CallProgress`` (1xx), ``CallAnswered`` (2xx, ACK already sent; every
  retransmitted 2xx is ACKed again, §13.2.2.4), ``CallFailed`` (final >= 300,
  timeout, or 487 after our CANCEL).  A 2xx racing our CANCEL is ACKed and the
  call is ended with BYE (``CallEnded`` with ``reason="cancelled"``).  A 401/407
  goes to the ``authenticate`` hook: headers it returns are added to a new
  INVITE (same Call-ID and From tag, next CSeq, new branch, §22.2).  For an
  INVITE sent without SDP, ``late_answer(response)`` gives the SDP answer the
  ACK carries.
UAS (event ``IncomingCall``):
  ``ring(now)``, ``answer(body, now)`` (2xx retransmitted every T1..T2 until the
  ACK, BYE after 64*T1 without one, §13.3.1.4), ``reject(status, now)``,
  ``hangup(now)``.  Events: ``CallConfirmed`` (ACK), ``CallFailed`` (CANCEL -> 487).
Both: ``ReinviteReceived`` -> ``accept_reinvite(body, now)`` / ``reject_reinvite``;
``ReinviteAnswered``; ``CallEnded`` (BYE either way); ``RequestInDialog`` for an
OPTIONS / INFO / NOTIFY in the call (answered 200 already, e.g. INFO DTMF).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from sipspeak.sip.dialog import Dialog, DialogState, OutOfOrderRequest
from sipspeak.sip.events import Address
from sipspeak.sip.headers import CSeq, NameAddr, Via
from sipspeak.sip.message import Headers, SipRequest, SipResponse, make_response
from sipspeak.sip.session_events import CallAnswered as CallAnswered
from sipspeak.sip.session_events import CallConfirmed as CallConfirmed
from sipspeak.sip.session_events import CallEnded as CallEnded
from sipspeak.sip.session_events import CallFailed as CallFailed
from sipspeak.sip.session_events import CallProgress as CallProgress
from sipspeak.sip.session_events import IncomingCall as IncomingCall
from sipspeak.sip.session_events import ReinviteAnswered as ReinviteAnswered
from sipspeak.sip.session_events import ReinviteReceived as ReinviteReceived
from sipspeak.sip.session_events import RequestInDialog as RequestInDialog
from sipspeak.sip.session_events import SessionState as SessionState
from sipspeak.sip.transaction import State

if TYPE_CHECKING:
    from sipspeak.sip.timers import TimerQueue, TimerValues
    from sipspeak.sip.transaction import ClientTransaction, ServerTransaction
    from sipspeak.sip.transaction_layer import TransactionLayer

_ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY"
LateAnswer = Callable[[SipResponse], bytes]
Authenticate = Callable[[SipRequest, SipResponse], list[tuple[str, str]] | None]


class SessionHost(Protocol):
    """What a session needs from the user agent."""

    queue: TimerQueue
    timer_values: TimerValues
    transactions: TransactionLayer

    def via_for(self, destination: Address) -> Via: ...

    def contact_for(self, destination: Address) -> NameAddr: ...

    def emit(self, event: object) -> None: ...

    def dialog_created(self, session: InviteSession) -> None: ...

    def session_ended(self, session: InviteSession) -> None: ...

    def changed(self) -> None: ...


def new_tag() -> str:
    return secrets.token_hex(6)


class _PendingOk:
    """A 2xx to (re-)INVITE being retransmitted until its ACK (§13.3.1.4)."""

    __slots__ = ("give_up_at", "interval", "next_at", "response", "seq")

    def __init__(
        self, response: SipResponse, now: float, t1: float, timeout: float
    ) -> None:
        self.response = response
        self.seq = response.cseq.seq
        self.interval = t1
        self.next_at = now + t1
        self.give_up_at = now + timeout


class InviteSession:
    """One INVITE-created dialog usage; see the module docstring."""

    def __init__(
        self,
        host: SessionHost,
        *,
        is_uac: bool,
        invite: SipRequest,
        peer: Address,
        authenticate: Authenticate | None = None,
        late_answer: LateAnswer | None = None,
    ) -> None:
        self.host = host
        self.is_uac = is_uac
        self.invite = (
            invite  # the latest initial INVITE (after auth retries, the last one)
        )
        self.peer = peer
        self.state = SessionState.INITIAL
        self.dialog: Dialog | None = None
        self.local_tag = invite.from_.tag if is_uac and invite.from_.tag else new_tag()
        self.final_status: int | None = None
        self._authenticate = authenticate
        self._late_answer = late_answer
        self._invite_txn: ClientTransaction | ServerTransaction | None = None
        self._cancel_requested = False
        self._cancel_sent = False
        self._ack: SipRequest | None = None  # UAC: ACK re-sent for retransmitted 2xx
        self._pending_ok: _PendingOk | None = None  # UAS
        self._bye_after_ack = False
        self._reinvite_in: ServerTransaction | None = None
        self._reinvite_out: ClientTransaction | None = None
        self._deadlines: dict[str, float] = {}

    @property
    def call_id(self) -> str:
        return self.invite.call_id

    def __repr__(self) -> str:
        role = "UAC" if self.is_uac else "UAS"
        return f"<InviteSession {role} {self.call_id} {self.state.value}>"

    # ------------------------------------------------------------------ timers
    def _set_deadline(self, name: str, when: float) -> None:
        self._deadlines[name] = when
        self.host.queue.schedule(when, self)

    def get_timer(self) -> float | None:
        return min(self._deadlines.values(), default=None)

    def handle_timer(self, now: float) -> None:
        for name, when in sorted(self._deadlines.items(), key=lambda item: item[1]):
            if when <= now and self._deadlines.get(name) == when:
                del self._deadlines[name]
                self._fire(name, now)

    def _fire(self, name: str, now: float) -> None:
        if name == "ring_timeout" and self.state is not SessionState.CONFIRMED:
            self.cancel(now)
        elif name == "cancel_wait" and self.state is not SessionState.CONFIRMED:
            # §9.1: no final response 64*T1 after CANCEL — consider the INVITE cancelled.
            if self._invite_txn is not None and not self._invite_txn.is_terminated:
                self.host.transactions.abandon(self._invite_txn)
            self._fail(487, "cancelled (no final response)")
        elif name == "retransmit_ok":
            self._retransmit_ok(now)

    # ------------------------------------------------------------------ helpers
    def _send_request(self, request: SipRequest, now: float) -> ClientTransaction:
        destination = (
            self.dialog.destination(self.peer.transport) if self.dialog else self.peer
        )
        txn = self.host.transactions.send_request(request, destination, now)
        txn.owner = self
        return txn

    def _dialog_request(self, method: str, now: float, **kw: object) -> SipRequest:
        dialog = self._require_dialog()
        via = self.host.via_for(dialog.destination(self.peer.transport))
        return dialog.create_request(method, via=via, **kw)  # type: ignore[arg-type]

    def _require_dialog(self) -> Dialog:
        if self.dialog is None:
            raise OutOfOrderRequest("no dialog yet")
        return self.dialog

    def _terminate(self) -> None:
        if self.state is SessionState.TERMINATED:
            return
        self.state = SessionState.TERMINATED
        if self.dialog is not None:
            self.dialog.state = DialogState.TERMINATED
        self._deadlines.clear()
        self.host.session_ended(self)

    def _fail(self, status: int, reason: str) -> None:
        if self.state is SessionState.TERMINATED:
            return
        self.final_status = status
        self._terminate()
        self.host.emit(CallFailed(self, status, reason))

    def _send_bye(self, now: float, reason: str, by_remote: bool = False) -> None:
        bye = self._dialog_request("BYE", now)
        self._send_request(bye, now)
        self._terminate()
        self.host.emit(CallEnded(self, by_remote, reason))

    # ------------------------------------------------------------------ UAC
    def start(self, now: float, ring_timeout: float | None = None) -> None:
        """Send the initial INVITE (UAC)."""
        self._invite_txn = self._send_request(self.invite, now)
        if ring_timeout is not None:
            self._set_deadline("ring_timeout", now + ring_timeout)

    def cancel(self, now: float) -> None:
        """Cancel the pending INVITE (§9.1); a CANCEL waits for the first provisional."""
        if not self.is_uac or self.state in (
            SessionState.CONFIRMED,
            SessionState.TERMINATED,
        ):
            return
        self._cancel_requested = True
        if self.state is SessionState.EARLY or self._got_provisional:
            self._send_cancel(now)
        self.host.changed()

    @property
    def _got_provisional(self) -> bool:
        txn = self._invite_txn
        return txn is not None and txn.state is State.PROCEEDING

    def _send_cancel(self, now: float) -> None:
        if self._cancel_sent:
            return
        self._cancel_sent = True
        invite = self.invite
        cancel = SipRequest(
            method="CANCEL",
            uri=invite.uri,
            via=invite.via[:1],  # §9.1: same top Via (branch) as the INVITE
            from_=invite.from_,
            to=invite.to,
            call_id=invite.call_id,
            cseq=CSeq(invite.cseq.seq, "CANCEL"),
            max_forwards=70,
            route=list(invite.route),
        )
        txn = self.host.transactions.send_request(cancel, self.peer, now)
        txn.owner = self
        self._set_deadline("cancel_wait", now + self.host.timer_values.timeout)

    def response_received(
        self, response: SipResponse, txn: ClientTransaction, now: float
    ) -> None:
        method = txn.request.method
        if method == "INVITE" and txn is self._invite_txn:
            self._initial_response(response, txn, now)
        elif method == "INVITE":
            self._reinvite_response(response, txn, now)
        # Responses to CANCEL and BYE need nothing: the INVITE's 487 or the
        # already-terminated session carry the outcome.

    def transaction_timed_out(
        self, txn: ClientTransaction | ServerTransaction, now: float
    ) -> None:
        if txn is self._invite_txn:
            if self.is_uac:
                self._fail(408, "no final response (Timer B)")
            elif self.state is not SessionState.TERMINATED and self._pending_ok is None:
                self._terminate()  # Timer H: our non-2xx was never ACKed
        elif txn is self._reinvite_out:
            self._reinvite_out = None
            self._send_bye(now, "re-INVITE timed out")  # §14.1: 408 ends the dialog

    def _initial_response(
        self, response: SipResponse, txn: ClientTransaction, now: float
    ) -> None:
        status = response.status
        if status < 200:
            if status > 100 and response.to.tag and self.dialog is None:
                self.dialog = Dialog.for_uac(self.invite, response, self.peer)
                self.host.dialog_created(self)
            if self.state is SessionState.INITIAL and status > 100:
                self.state = SessionState.EARLY
            if self._cancel_requested:
                self._send_cancel(now)
            if status > 100 and self.state is not SessionState.TERMINATED:
                self.host.emit(CallProgress(self, response))
            return
        if status < 300:
            self._success(response, now)
            return
        if (
            status in (401, 407)
            and self._authenticate is not None
            and not self._cancel_requested
        ):
            headers = self._authenticate(self.invite, response)
            if headers:
                self._retry_with(headers, now)
                return
        self._fail(status, response.reason)

    def _retry_with(self, headers: list[tuple[str, str]], now: float) -> None:
        """A new INVITE carrying credentials: same Call-ID and From tag, next CSeq (§22.2)."""
        old = self.invite
        new_headers = Headers(old.headers)
        for name, _ in headers:
            new_headers.remove(name)
        for name, value in headers:
            new_headers.add(name, value)
        self.invite = replace(
            old,
            via=[self.host.via_for(self.peer)],
            cseq=CSeq(old.cseq.seq + 1, "INVITE"),
            headers=new_headers,
        )
        if self.dialog is not None:
            self.host.session_ended(
                self
            )  # forget the early dialog; the answer may differ
            self.dialog = None
        self.state = SessionState.INITIAL
        self._invite_txn = self._send_request(self.invite, now)

    def _success(self, response: SipResponse, now: float) -> None:
        tag = response.to.tag or ""
        dialog = self.dialog
        if dialog is not None and dialog.remote_tag == tag and self._ack is not None:
            self._send_ack(self._ack)  # §13.2.2.4: ACK every retransmitted 2xx
            return
        if dialog is not None and dialog.state is DialogState.CONFIRMED:
            if tag == dialog.remote_tag and self._ack is not None:
                self._send_ack(self._ack)  # §13.2.2.4: ACK every retransmitted 2xx
            else:
                self._ack_and_bye_stray(response, now)  # a forked second answer
            return
        if self.state is SessionState.TERMINATED:
            # Answered after we gave up (e.g. after the CANCEL timer): ACK, then BYE.
            self._ack_and_bye_stray(response, now)
            return
        if dialog is None or dialog.remote_tag != tag:
            if dialog is not None:
                self.host.session_ended(self)
            self.dialog = dialog = Dialog.for_uac(self.invite, response, self.peer)
            self.host.dialog_created(self)
        dialog.confirm(response)
        self.state = SessionState.CONFIRMED
        self.final_status = response.status
        self._deadlines.pop("ring_timeout", None)
        self._deadlines.pop("cancel_wait", None)
        ack_body = b""
        if self._late_answer is not None and not self.invite.body and response.body:
            # §13.2.2.4 / RFC 3264 §5: an INVITE without offer gets the offer in
            # the 2xx, and the answer goes in the ACK.
            ack_body = self._late_answer(response)
        ack = self._dialog_request(
            "ACK",
            now,
            cseq=self.invite.cseq.seq,
            body=ack_body,
            headers=[("Content-Type", "application/sdp")] if ack_body else [],
        )
        self._ack = ack
        self._send_ack(ack)
        if self._cancel_requested:
            # §9.1 race: the 200 crossed our CANCEL; the call is up, so end it with BYE.
            self._send_bye(now, "cancelled")
            return
        self.host.emit(CallAnswered(self, response))

    def _send_ack(self, ack: SipRequest) -> None:
        self.host.transactions.send_stateless(
            ack, self._require_dialog().destination(self.peer.transport)
        )

    def _ack_and_bye_stray(self, response: SipResponse, now: float) -> None:
        stray = Dialog.for_uac(self.invite, response, self.peer)
        stray.state = DialogState.CONFIRMED
        destination = stray.destination(self.peer.transport)
        via = self.host.via_for(destination)
        self.host.transactions.send_stateless(
            stray.create_request("ACK", via=via, cseq=self.invite.cseq.seq), destination
        )
        bye = stray.create_request("BYE", via=self.host.via_for(destination))
        txn = self.host.transactions.send_request(bye, destination, now)
        txn.owner = self

    # ------------------------------------------------------------------ UAS
    def accept_invite(self, txn: ServerTransaction, now: float) -> None:
        """Called by the user agent for a new INVITE: 100 Trying, early dialog, IncomingCall."""
        self._invite_txn = txn
        txn.owner = self
        txn.send_response(make_response(self.invite, 100), now)
        contact = self.host.contact_for(self.peer)
        self.dialog = Dialog.for_uas(
            self.invite, local_tag=self.local_tag, local_contact=contact, flow=self.peer
        )
        self.host.dialog_created(self)
        self.host.emit(IncomingCall(self, self.invite))

    def _server_txn(self) -> ServerTransaction:
        txn = self._invite_txn
        if self.is_uac or txn is None or txn.request.method != "INVITE":
            raise OutOfOrderRequest("not a UAS session")
        return txn  # type: ignore[return-value]

    def _respond_invite(
        self,
        status: int,
        now: float,
        body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
    ) -> SipResponse:
        dialog = self._require_dialog()
        all_headers = list(headers)
        if body and not any(n.lower() == "content-type" for n, _ in all_headers):
            all_headers.append(("Content-Type", "application/sdp"))
        response = make_response(
            self.invite,
            status,
            to_tag=self.local_tag,
            contact=[dialog.local_contact]
            if dialog.local_contact and status < 300
            else [],
            headers=all_headers,
            body=body,
        )
        self._server_txn().send_response(response, now)
        self.host.changed()
        return response

    def ring(self, now: float, status: int = 180, body: bytes = b"") -> None:
        """Send a provisional response (180 Ringing, 183 with early media SDP)."""
        if self.state in (SessionState.INITIAL, SessionState.EARLY) and not self.is_uac:
            self.state = SessionState.EARLY
            self._respond_invite(status, now, body)

    def answer(
        self, body: bytes, now: float, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        """Send 200 OK and retransmit it until the ACK comes (§13.3.1.4)."""
        if self.is_uac or self.state in (
            SessionState.CONFIRMED,
            SessionState.TERMINATED,
        ):
            return
        response = self._respond_invite(200, now, body, headers)
        self._require_dialog().state = DialogState.CONFIRMED
        self.state = SessionState.CONFIRMED
        self.final_status = 200
        self._start_ok_retransmission(response, now)

    def reject(
        self, status: int, now: float, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        """Refuse the INVITE with a final response >= 300."""
        if self.is_uac or self.state in (
            SessionState.CONFIRMED,
            SessionState.TERMINATED,
        ):
            return
        self._respond_invite(status, now, headers=headers)
        self.final_status = status
        self._terminate()

    def _start_ok_retransmission(self, response: SipResponse, now: float) -> None:
        """Wait for the ACK; over UDP resend the 2xx at T1, 2*T1 … T2 (§13.3.1.4)."""
        values = self.host.timer_values
        self._pending_ok = _PendingOk(response, now, values.t1, values.timeout)
        if self.peer.reliable:
            self._set_deadline("retransmit_ok", self._pending_ok.give_up_at)
        else:
            self._set_deadline("retransmit_ok", now + values.t1)

    def _retransmit_ok(self, now: float) -> None:
        pending = self._pending_ok
        if pending is None or self.state is SessionState.TERMINATED:
            return
        if now >= pending.give_up_at:
            self._pending_ok = None
            self._send_bye(now, "no ACK for 2xx (§13.3.1.4)")
            return
        if self.peer.reliable:
            return
        destination = self._require_dialog().flow or self.peer
        self.host.transactions.send_stateless(pending.response, destination)
        pending.interval = min(pending.interval * 2, self.host.timer_values.t2)
        self._set_deadline(
            "retransmit_ok", min(now + pending.interval, pending.give_up_at)
        )

    def ack_received(self, ack: SipRequest, now: float) -> None:
        """The ACK for our 2xx (§13.3.1.4) — stops the retransmissions."""
        pending = self._pending_ok
        if pending is None or ack.cseq.seq != pending.seq:
            return
        self._pending_ok = None
        self._deadlines.pop("retransmit_ok", None)
        if (
            self._reinvite_in is None
            and pending.response.cseq.seq == self.invite.cseq.seq
        ):
            self.host.emit(CallConfirmed(self, ack))
        if self._bye_after_ack:
            self._send_bye(now, "local hangup")

    def cancelled(self, now: float) -> bool:
        """A CANCEL matched our INVITE (§9.2): 487 if no final response was sent yet."""
        if self.state in (SessionState.CONFIRMED, SessionState.TERMINATED):
            return False
        self._respond_invite(487, now)
        self._fail(487, "cancelled by the caller")
        return True

    # ------------------------------------------------------------------ both
    def hangup(self, now: float, status: int = 603) -> None:
        """End the call whatever its state: CANCEL, reject with ``status``, or BYE (§15)."""
        if self.state is SessionState.TERMINATED:
            return
        if self.state is SessionState.CONFIRMED:
            if self._pending_ok is not None:
                self._bye_after_ack = True  # §15: the UAS waits for the ACK before BYE
            else:
                self._send_bye(now, "local hangup")
        elif self.is_uac:
            self.cancel(now)
        else:
            self.reject(status, now)
        self.host.changed()

    def request_received(
        self, request: SipRequest, txn: ServerTransaction, now: float
    ) -> None:
        """An in-dialog request (§12.2.2)."""
        dialog = self._require_dialog()
        try:
            dialog.check_request(request)
        except OutOfOrderRequest:
            txn.send_response(
                make_response(request, 500, headers=[("Retry-After", "1")]), now
            )
            return
        method = request.method
        if method == "BYE":
            txn.send_response(make_response(request, 200), now)
            if not self.is_uac and self.state is SessionState.EARLY:
                self._respond_invite(487, now)
            self._terminate()
            self.host.emit(CallEnded(self, True, "remote hangup"))
        elif method == "INVITE":
            if (
                self._reinvite_in is not None
                or self._reinvite_out is not None
                or self._pending_ok
            ):
                txn.send_response(make_response(request, 491), now)  # §14.2 glare
                return
            txn.owner = self
            self._reinvite_in = txn
            self.host.emit(ReinviteReceived(self, request))
        elif method in ("OPTIONS", "INFO", "NOTIFY"):
            txn.send_response(make_response(request, 200), now)
            # e.g. INFO with application/dtmf-relay for the calls layer
            self.host.emit(RequestInDialog(self, request))
        else:
            # §8.2.1: 405 for a method we know but do not support here (UPDATE,
            # REFER, PRACK …), 501 for one we do not recognise.
            known = method in (
                "UPDATE",
                "REFER",
                "PRACK",
                "SUBSCRIBE",
                "MESSAGE",
                "PUBLISH",
            )
            txn.send_response(
                make_response(
                    request, 405 if known else 501, headers=[("Allow", _ALLOW)]
                ),
                now,
            )

    def accept_reinvite(self, body: bytes, now: float) -> None:
        """Answer a received re-INVITE with 200 and ``body`` (e.g. the hold answer)."""
        txn = self._reinvite_in
        if txn is None:
            return
        self._reinvite_in = None
        dialog = self._require_dialog()
        response = make_response(
            txn.request,
            200,
            to_tag=self.local_tag,
            contact=[dialog.local_contact] if dialog.local_contact else [],
            headers=[("Content-Type", "application/sdp")] if body else [],
            body=body,
        )
        txn.send_response(response, now)
        self._start_ok_retransmission(response, now)
        self.host.changed()

    def reject_reinvite(self, status: int, now: float) -> None:
        txn = self._reinvite_in
        if txn is None:
            return
        self._reinvite_in = None
        txn.send_response(
            make_response(txn.request, status, to_tag=self.local_tag), now
        )
        self.host.changed()

    def reinvite(self, body: bytes, now: float) -> None:
        """Send a re-INVITE (target refresh / new offer, e.g. hold and unhold, §14.1)."""
        if (
            self.state is not SessionState.CONFIRMED
            or self._reinvite_out
            or self._reinvite_in
        ):
            raise OutOfOrderRequest(
                "a re-INVITE needs a confirmed dialog and none pending"
            )
        request = self._dialog_request(
            "INVITE",
            now,
            body=body,
            headers=[("Content-Type", "application/sdp")] if body else [],
        )
        self._reinvite_out = self._send_request(request, now)
        self.host.changed()

    def _reinvite_response(
        self, response: SipResponse, txn: ClientTransaction, now: float
    ) -> None:
        if response.status < 200 or self.dialog is None:
            return
        if response.status < 300:
            if txn is self._reinvite_out:
                self.dialog.confirm(response)  # target refresh (§12.2.1.2)
            # every 2xx, retransmissions included, is ACKed (§13.2.2.4)
            ack = self._dialog_request("ACK", now, cseq=txn.request.cseq.seq)
            self._send_ack(ack)
        if txn is not self._reinvite_out:
            return
        self._reinvite_out = None
        self.host.emit(ReinviteAnswered(self, response))
        if response.status in (408, 481):
            self._send_bye(now, f"re-INVITE failed with {response.status}")  # §14.1

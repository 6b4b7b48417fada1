"""One SIP call leg with its media: an INVITE session and our RTP endpoint (no direct media).

Every leg, towards a trunk or an operator's phone, terminates on an RTP endpoint of the
media engine: our SDP is offered / answered on both sides (RFC 3264), so the bridge sees
all audio and can record it, play music on hold and survive a re-INVITE.

``MediaOffer`` builds the SDP for one endpoint (session id, increasing version);
``apply_remote`` points the endpoint at the far end a negotiated SDP names and adopts its
codec.  Hold (RFC 3264 §8.4): a re-INVITE whose offer is ``sendonly`` / ``inactive`` (or
``c=0.0.0.0``) is answered ``recvonly`` / ``inactive``; the leg reports ``on_hold``.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field

from sipspeak.media.endpoint import RtpEndpoint
from sipspeak.sip.errors import NotAcceptableHere, SipParseError
from sipspeak.sip.sdp import (
    NegotiatedMedia,
    SessionDescription,
    answer_offer,
    build_offer,
    extract_sdp,
    negotiate_answer,
    parse_sdp,
)
from sipspeak.sip.session import InviteSession, SessionState

__all__ = ["MediaOffer", "SipLeg", "sdp_of", "apply_remote"]

log = logging.getLogger(__name__)


def sdp_of(content_type: str | None, body: bytes) -> SessionDescription | None:
    """The parsed SDP of a body, or None (no SDP, or SDP we cannot read)."""
    raw = extract_sdp(content_type, body)
    if raw is None:
        return None
    try:
        return parse_sdp(raw)
    except SipParseError:
        return None


def apply_remote(endpoint: RtpEndpoint, media: NegotiatedMedia) -> None:
    """Send to where the negotiated SDP says, in its codec (latching may move it later)."""
    endpoint.configure(codec=media.codec, dtmf_payload_type=media.telephone_event)
    if media.remote_address != "0.0.0.0" and media.remote_port:
        endpoint.relatch((media.remote_address, media.remote_port), rtcp=media.remote_rtcp)


@dataclass(slots=True)
class MediaOffer:
    """Our side of the SDP exchange for one endpoint."""

    address: str
    port: int
    session_id: int = field(default_factory=lambda: secrets.randbits(31))
    version: int = 1
    offer: SessionDescription | None = None

    def make_offer(self) -> bytes:
        self.offer = build_offer(address=self.address, port=self.port,
                                 session_id=self.session_id, version=self.version)
        return self.offer.serialize()

    def answer(self, remote: SessionDescription) -> tuple[bytes, NegotiatedMedia]:
        """Answer ``remote`` (raises ``NotAcceptableHere``); each answer bumps the version."""
        answer, media = answer_offer(remote, address=self.address, port=self.port,
                                     session_id=self.session_id, version=self.version,
                                     direction="sendrecv")
        self.version += 1
        return answer.serialize(), media

    def negotiate(self, remote: SessionDescription) -> NegotiatedMedia:
        if self.offer is None:
            raise NotAcceptableHere("an answer without our offer")
        return negotiate_answer(self.offer, remote)


@dataclass(eq=False, slots=True)
class SipLeg:
    """A session, the RTP endpoint behind it and what was negotiated."""

    session: InviteSession
    endpoint: RtpEndpoint
    sdp: MediaOffer
    role: str  # "customer" or "operator"
    media: NegotiatedMedia | None = None
    on_hold: bool = False
    hold_since_ms: int | None = None  # when this hold began (call control's clock)
    local_sdp: bytes = b""  # our answer to a received offer, sent again in the 200

    @property
    def call_id(self) -> str:
        return self.session.call_id

    @property
    def media_leg(self) -> RtpEndpoint:
        """What the bridge relays (an operator leg may also be a browser's)."""
        return self.endpoint

    def hangup(self, now: float, status: int | None = None) -> None:
        """BYE, CANCEL or a final refusal, whatever the session's state (RFC 3261 §15)."""
        if self.session.state is SessionState.TERMINATED:
            return
        if status is None:
            self.session.hangup(now)
        else:
            self.session.hangup(now, status)

    def close_media(self, reason: str) -> None:
        self.endpoint.close(reason)

    def remote_answer(self, content_type: str | None, body: bytes) -> bool:
        """Our offer was answered (183 early media or 2xx); True if media is now set."""
        remote = sdp_of(content_type, body)
        if remote is None:
            return False
        try:
            self.media = self.sdp.negotiate(remote)
        except NotAcceptableHere as exc:
            log.info("%s: unusable SDP answer: %s", self.call_id, exc)
            return False
        apply_remote(self.endpoint, self.media)
        return True

    def answer_offer(self, content_type: str | None, body: bytes) -> bytes:
        """Answer the far end's (re-)offer; hold is read from it.  Raises NotAcceptableHere."""
        remote = sdp_of(content_type, body)
        if remote is None:
            # An offer-less re-INVITE (§14.2): offer in the 200, the ACK carries the answer.
            return self.sdp.make_offer()
        answer, media = self.sdp.answer(remote)
        self.media = media
        self.on_hold = media.on_hold
        if not media.on_hold:
            apply_remote(self.endpoint, media)
        self.local_sdp = answer
        return answer

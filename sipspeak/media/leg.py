"""The media leg: what the bridge, the recorder taps and the players talk to.

A leg is one party's audio path: an RTP endpoint towards a SIP phone or trunk
(:class:`sipspeak.media.endpoint.RtpEndpoint`), or the browser side of the
WebRTC gateway.  The bridge only needs the three members below, so anything
that provides them can be bridged, recorded or played to.

Contract
--------
* ``codec`` is the negotiated G.711 variant (RFC 3551 §4.5.14): ``"PCMU"`` is
  payload type 0, ``"PCMA"`` payload type 8, 8000 Hz, 20 ms = 160 samples.
* ``dtmf_payload_type`` is the dynamic payload type negotiated for RFC 4733
  ``telephone-event`` on this leg, or ``None`` when the far end did not offer it.
* ``send(packet)`` puts the packet on the wire towards this leg's far end as it
  is: the caller (bridge, player) has already set SSRC, sequence number and
  timestamp so that the far end sees one continuous stream (RFC 3550 §5.1).
  It never blocks and never raises for network trouble (a UDP send that fails
  is logged and dropped, as the network would).  The leg takes ownership of
  the packet object.
* ``set_receiver(cb)`` installs the one callback that gets every packet coming
  from the far end, already validated (version 2, parsed) and, for RTP
  endpoints, only from the latched source; ``None`` detaches it (packets are
  then dropped).  The callback runs on the event loop thread, must not block,
  and owns the packet it is given (it may rewrite and forward it).

The datagram fast path
----------------------
A leg that is itself an RTP socket (:class:`RawRtpLeg`) can also skip the
:class:`~sipspeak.media.rtp.RtpPacket` object altogether, which is what the
bridge uses between two RTP endpoints (two per call, 50 packets a second
each: the engine's hot loop):

* ``set_receivers(cb, raw)`` installs ``raw`` for every packet with a plain
  12-byte header (first octet ``0x80``: version 2, no padding, extension or
  CSRC -- every G.711 packet in practice), called as
  ``raw(datagram, second_octet, sequence_number, timestamp, ssrc)`` with the
  header fields already read, and ``cb`` for every other packet (it gets an
  :class:`~sipspeak.media.rtp.RtpPacket` as above).  ``set_receiver`` and
  ``set_receivers`` replace each other; ``set_receiver(None)`` detaches both.
* ``send_datagram(datagram, timestamp, payload_size)`` sends a complete RTP
  datagram whose SSRC the caller already set to the leg's ``ssrc``;
  ``timestamp`` and ``payload_size`` feed the RTCP sender report.

The relay loop
--------------
An RTP endpoint also exposes its socket as a
:class:`~sipspeak.media.fastpath.Port` (:class:`NativeRtpLeg`).  The bridge
hands the source's port the direction's rewriter (``set_relay``) and the
rewriter the target's port; with the C module built, the port's reader then
relays plain audio packets by itself and only the rest reaches ``raw``/``cb``.
``set_receiver``/``set_receivers`` drop the relay again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from sipspeak.media.fastpath import Port, RewriterCore
from sipspeak.media.rtp import Codec, RtpPacket

__all__ = [
    "MediaLeg",
    "NativeRtpLeg",
    "PacketReceiver",
    "RawPacketReceiver",
    "RawRtpLeg",
]

PacketReceiver = Callable[[RtpPacket], None]
#: ``raw(datagram, second_octet, sequence_number, timestamp, ssrc)``: a plain-header RTP packet.
RawPacketReceiver = Callable[[bytes, int, int, int, int], None]


class MediaLeg(Protocol):
    """One party's audio path, as seen by the bridge (see the module docstring)."""

    @property
    def codec(self) -> Codec:
        """``"PCMU"`` (PT 0) or ``"PCMA"`` (PT 8)."""
        ...

    @property
    def dtmf_payload_type(self) -> int | None:
        """Negotiated RFC 4733 telephone-event payload type, or ``None``."""
        ...

    def send(self, packet: RtpPacket) -> None:
        """Send ``packet`` towards this leg's far end (takes ownership, never blocks)."""
        ...

    def set_receiver(self, cb: PacketReceiver | None) -> None:
        """Deliver every packet from the far end to ``cb``; ``None`` detaches."""
        ...


@runtime_checkable
class RawRtpLeg(MediaLeg, Protocol):
    """A leg that is an RTP socket: the datagram fast path of the module docstring."""

    @property
    def ssrc(self) -> int:
        """The SSRC this leg sends with (RFC 3550 §8: its RTCP reports advertise it)."""
        ...

    def set_receivers(
        self, cb: PacketReceiver | None, raw: RawPacketReceiver | None
    ) -> None:
        """``raw`` gets the plain-header packets, ``cb`` every other packet."""
        ...

    def send_datagram(
        self, datagram: bytes | bytearray, timestamp: int, payload_size: int
    ) -> None:
        """Send a whole RTP datagram already carrying :attr:`ssrc` (never blocks)."""
        ...


@runtime_checkable
class NativeRtpLeg(RawRtpLeg, Protocol):
    """An RTP endpoint whose socket can relay by itself (see "The relay loop")."""

    @property
    def native_port(self) -> Port:
        """The endpoint's RTP socket as the relay loop sees it."""
        ...

    def set_relay(self, rewriter: RewriterCore | None) -> None:
        """Relay plain audio packets through ``rewriter`` without calling back."""
        ...

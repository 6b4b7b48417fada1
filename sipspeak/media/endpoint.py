"""RTP endpoints on non-blocking UDP sockets: the media layer's thin I/O shell.

One :class:`RtpEndpoint` is one :class:`~sipspeak.media.leg.MediaLeg` towards a
SIP phone or trunk: an RTP socket on an even port of the :class:`PortPool`
and an RTCP socket on the next odd one (RFC 3550 §11).  It

* latches to the source actually seen (symmetric RTP, RFC 4961 and the NAT
  practice of RFC 7362 §4): the first valid packet fixes where we send to, and
  packets from any other address are dropped from then on;
* reads each header once, keeps RTCP statistics, surfaces RFC 4733 digits,
  and hands each packet to the one receiver (the bridge);
* sends RTCP reports at the randomised interval of RFC 3550 §6.2 (one
  ``call_at`` armed from :meth:`RtcpSession.get_timer`) and a BYE on close;
* reports inactivity when no RTP arrived for ``inactivity_timeout`` seconds.

The receive path is the engine's hot loop (two of these per bridged call, 50
packets a second each), so it does the least Python work that keeps the
contract: one address comparison, one header unpack, one statistics update,
and -- towards the bridge -- no :class:`RtpPacket` at all: a plain-header
packet goes to the raw receiver as the datagram plus its header fields
(:class:`~sipspeak.media.leg.RawRtpLeg`), and comes back through
:meth:`RtpEndpoint.send_datagram` already rewritten.

The RTP socket is read by its :class:`~sipspeak.media.fastpath.Port`
(``loop.add_reader(fd, port.drain)``).  With the C module built, ``drain``
relays a bridged plain audio packet itself -- statistics, rewriting and the
send included, many datagrams per system call -- and calls
:meth:`RtpEndpoint.datagram_received` only for the rest; without it, every
datagram goes through :meth:`RtpEndpoint.datagram_received`.  Counters that
both paths update live on the port.  Run the process under uvloop
(``uvloop.run`` / ``uvloop.install``); this module works on whatever loop is
running.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import functools
import logging
import random
import socket
import struct
import time
from collections.abc import Callable
from typing import Any, Final, Literal

from sipspeak.media.dtmf import DtmfDigit, DtmfReceiver
from sipspeak.media.endpoint_sockets import address_in_use, bind_udp
from sipspeak.media.fastpath import Port, RewriterCore
from sipspeak.media.leg import PacketReceiver, RawPacketReceiver
from sipspeak.media.portpool import PortPool
from sipspeak.media.rtcpsession import RtcpSession, RtcpStats
from sipspeak.media.rtp import PAYLOAD_TYPES, Codec, RtpPacket

__all__ = ["RtpEndpoint", "open_endpoint"]

log = logging.getLogger(__name__)

Address = tuple[str, int]
#: RTCP packet types 192-223 read as RTP payload types with the marker set (RFC 5761 §4).
_MUXED_RTCP = frozenset(range(64, 96))
#: How many times ``open_endpoint`` skips a port pair taken by another process.
_BIND_ATTEMPTS = 64
#: Sequence number, timestamp and SSRC: octets 2-11 of the fixed header (RFC 3550 §5.1).
_SEQ_TS_SSRC: Final = struct.Struct("!HII").unpack_from
#: First octet of a plain header: version 2, no padding, no extension, no CSRC.
_PLAIN: Final = 0x80


class _Unset(enum.Enum):
    UNSET = enum.auto()


UNSET: Final = _Unset.UNSET


class _RtcpProtocol(asyncio.DatagramProtocol):
    __slots__ = ("endpoint",)

    def __init__(self, endpoint: RtpEndpoint) -> None:
        self.endpoint = endpoint

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.endpoint._on_rtcp(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("%s: RTCP socket error: %s", self.endpoint.name, exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.endpoint._transport_lost()


class RtpEndpoint:
    """A bound RTP/RTCP port pair implementing :class:`~sipspeak.media.leg.MediaLeg`.

    Create with :func:`open_endpoint`; :meth:`close` releases everything.  The
    RTP socket's :class:`~sipspeak.media.fastpath.Port` is its reader and calls
    :meth:`datagram_received` with what it does not relay itself.
    """

    # Slots, hot ones first: the receive and send paths of a thousand
    # endpoints touch few, adjacent cache lines instead of one dict each
    # (slots are laid out in this order, hence not sorted).
    __slots__ = (  # noqa: RUF023
        "_latched",
        "_dtmf_pt",
        "_port",
        "_update_stats",
        "_time",
        "_raw_receiver",
        "_receiver",
        "_dest",
        "_ssrc",
        "_codec",
        "_dtmf",
        "_inactivity_timeout",
        "_inactivity_timer",
        "_latched_rtcp",
        "_loop",
        "_on_dtmf",
        "_on_inactive",
        "_open_transports",
        "_pool",
        "_released",
        "_remote",
        "_remote_rtcp",
        "_sdp_rtcp",
        "_rtcp",
        "_rtcp_timer",
        "_sock",
        "_rx_last_change",
        "_rx_seen",
        "closed",
        "inactive",
        "local_port",
        "name",
        "session",
    )

    def __init__(
        self,
        *,
        name: str,
        codec: Codec,
        dtmf_payload_type: int | None,
        pool: PortPool | None,
        port: int,
        remote: Address | None,
        inactivity_timeout: float,
        on_inactive: Callable[[RtpEndpoint], None] | None,
        on_dtmf: Callable[[DtmfDigit], None] | None,
        rng: random.Random,
    ) -> None:
        if codec not in PAYLOAD_TYPES:
            raise ValueError(f"unsupported codec {codec!r}")
        self.name = name
        self._codec: Codec = codec
        self._dtmf_pt = dtmf_payload_type
        self.local_port = port
        self._pool = pool
        self._loop = asyncio.get_running_loop()
        self._sock: socket.socket | None = None
        self._port: Port | None = None
        self._rtcp: asyncio.DatagramTransport | None = None
        self._remote: Address | None = remote
        self._remote_rtcp: Address | None = (
            (remote[0], remote[1] + 1) if remote else None
        )
        self._latched: Address | None = None
        self._sdp_rtcp: Address | None = None
        self._dest: Address | None = remote  # the latched source, else the SDP address
        self._latched_rtcp = False
        self._receiver: PacketReceiver | None = None
        self._raw_receiver: RawPacketReceiver | None = None
        self._dtmf = (
            DtmfReceiver(payload_type=dtmf_payload_type)
            if dtmf_payload_type is not None
            else None
        )
        self._on_dtmf = on_dtmf
        self.session = RtcpSession(
            ssrc=rng.getrandbits(32),
            cname=f"{name}@sipspeak",
            now=self._loop.time(),
            rng=rng,
        )
        self._ssrc = self.session.ssrc
        self._update_stats = self.session.receiver.update
        # The C relay loop stamps arrivals with CLOCK_MONOTONIC: the same clock here.
        self._time = time.monotonic
        self._rtcp_timer: asyncio.TimerHandle | None = None
        self._inactivity_timeout = inactivity_timeout
        self._on_inactive = on_inactive
        self._inactivity_timer: asyncio.TimerHandle | None = None
        self._rx_seen = 0
        self._rx_last_change = self._loop.time()
        self.inactive = False
        self.closed = False
        self._open_transports = 0
        self._released: asyncio.Future[None] = self._loop.create_future()

    # -- configuration ---------------------------------------------------------

    @property
    def codec(self) -> Codec:
        """The negotiated G.711 variant this leg sends and expects (RFC 3551 §4.5.14)."""
        return self._codec

    @codec.setter
    def codec(self, codec: Codec) -> None:
        self.configure(codec=codec)

    @property
    def dtmf_payload_type(self) -> int | None:
        """The negotiated RFC 4733 telephone-event payload type, or ``None``."""
        return self._dtmf_pt

    @dtmf_payload_type.setter
    def dtmf_payload_type(self, payload_type: int | None) -> None:
        self.configure(dtmf_payload_type=payload_type)

    def configure(
        self,
        *,
        codec: Codec | None = None,
        dtmf_payload_type: int | None | Literal[_Unset.UNSET] = UNSET,
    ) -> None:
        """Apply the outcome of an SDP negotiation (RFC 3264 §5 / §6).

        ``codec``: the G.711 variant both ends agreed on (``None`` keeps the
        current one).  ``dtmf_payload_type``: the dynamic payload type agreed
        for RFC 4733 telephone-event, or ``None`` when the answer has none
        (omitted: unchanged).  A changed telephone-event payload type starts
        a new digit detector, so digits are recognised under the new number;
        a digit in progress is reported first.  A bridge reads the legs'
        codecs when it is wired: call :meth:`Bridge.reconfigure
        <sipspeak.media.bridge.Bridge.reconfigure>` after re-negotiating a
        bridged leg.  Raises ``ValueError`` for an unknown codec or a payload
        type that does not fit the 7-bit PT field (RFC 3550 §5.1).
        """
        if codec is not None:
            if codec not in PAYLOAD_TYPES:
                raise ValueError(f"unsupported codec {codec!r}")
            self._codec = codec
        if dtmf_payload_type is UNSET or dtmf_payload_type == self._dtmf_pt:
            return
        if dtmf_payload_type is not None and not 0 <= dtmf_payload_type <= 127:
            raise ValueError(
                f"telephone-event payload type {dtmf_payload_type} is not 0-127"
            )
        old = self._dtmf
        self._dtmf_pt = dtmf_payload_type
        if self._port is not None:
            self._port.dtmf_pt = dtmf_payload_type
        self._dtmf = (
            DtmfReceiver(payload_type=dtmf_payload_type)
            if dtmf_payload_type is not None
            else None
        )
        if old is not None and self._on_dtmf is not None:
            for digit in old.flush():
                self._on_dtmf(digit)

    @property
    def ssrc(self) -> int:
        """Our SSRC: every packet we send carries it, as our RTCP reports say."""
        return self._ssrc

    # -- MediaLeg --------------------------------------------------------------

    def set_receiver(self, cb: PacketReceiver | None) -> None:
        self._receiver = cb
        self._raw_receiver = None
        if self._port is not None:
            self._port.rewriter = None

    def set_receivers(
        self, cb: PacketReceiver | None, raw: RawPacketReceiver | None
    ) -> None:
        """``raw`` gets plain-header packets as datagrams, ``cb`` every other packet.

        See :class:`~sipspeak.media.leg.RawRtpLeg`; ``set_receiver`` undoes this.
        """
        self._receiver = cb
        self._raw_receiver = raw
        if self._port is not None:
            self._port.rewriter = None

    def set_relay(self, rewriter: RewriterCore | None) -> None:
        """Let the relay loop rewrite and forward plain audio packets itself.

        Call after :meth:`set_receivers` (which drops it again): the receivers
        still get what the loop leaves to Python (see :mod:`sipspeak.media.leg`).
        """
        if self._port is not None:
            self._port.rewriter = rewriter

    @property
    def native_port(self) -> Port:
        """The RTP socket as the relay loop sees it (:class:`~sipspeak.media.leg.NativeRtpLeg`)."""
        if self._port is None:
            raise RuntimeError(f"{self.name}: the endpoint is not open")
        return self._port

    # Counters both receive paths update, kept on the port.

    @property
    def packets_sent(self) -> int:
        return self._port.packets_sent if self._port is not None else 0

    @property
    def octets_sent(self) -> int:
        return self._port.octets_sent if self._port is not None else 0

    @property
    def last_sent_timestamp(self) -> int:
        return self._port.last_sent_timestamp if self._port is not None else 0

    @property
    def packets_received(self) -> int:
        """RTP packets accepted from the latched source (RTCP not counted)."""
        return self._port.rx_count if self._port is not None else 0

    @property
    def dropped_foreign(self) -> int:
        """Datagrams from an address other than the latched one."""
        return self._port.dropped_foreign if self._port is not None else 0

    @property
    def dropped_malformed(self) -> int:
        """Datagrams that are not RTP (or too large for an RTP packet)."""
        return self._port.dropped_malformed if self._port is not None else 0

    def send_datagram(
        self, datagram: bytes | bytearray, timestamp: int, payload_size: int
    ) -> None:
        """Send a complete RTP datagram that already carries :attr:`ssrc`."""
        port = self._port
        if self._dest is None or port is None:
            return
        port.packets_sent += 1
        port.octets_sent += payload_size
        port.last_sent_timestamp = timestamp
        port.send(datagram)

    def send(self, packet: RtpPacket) -> None:
        port = self._port
        if self._dest is None or port is None:
            return
        # Sender counters for RTCP SR live on the port (copied into the session
        # when a report is due) to keep this path to plain attribute updates.
        port.packets_sent += 1
        port.octets_sent += len(packet.payload)
        port.last_sent_timestamp = packet.timestamp
        # RTCP's sender info advertises our SSRC; keep the wire consistent with it.
        packet.ssrc = self._ssrc
        port.send(packet.serialize())

    # -- receive path ----------------------------------------------------------

    def datagram_received(self, data: bytes, addr: Address) -> None:
        """One RTP datagram from the RTP socket that the relay loop left to Python."""
        port = self._port
        if port is None:
            return
        if addr != self._latched:
            if self._latched is not None:
                port.dropped_foreign += 1
                return
            if not self._latch(data, addr):
                return
        if len(data) < 12 or data[0] != _PLAIN:
            self._receive_general(data, addr)
            return
        second = data[1]
        pt = second & 0x7F
        if 64 <= pt < 96:
            # RTCP multiplexed on the RTP port (RFC 5761 §4): not audio.
            self._on_rtcp(data, addr)
            return
        seq, ts, ssrc = _SEQ_TS_SSRC(data, 2)
        port.rx_count += 1
        self._update_stats(ssrc, seq, ts, self._time())
        if pt == self._dtmf_pt:
            self._feed_dtmf(RtpPacket.parse(data))
        raw = self._raw_receiver
        if raw is not None:
            raw(data, second, seq, ts, ssrc)
            return
        receiver = self._receiver
        if receiver is not None:
            receiver(RtpPacket.parse(data))

    def _receive_general(self, data: bytes, addr: Address) -> None:
        """Anything but a plain 12-byte header: CSRC, extension, padding, garbage."""
        try:
            packet = RtpPacket.parse(data)
        except ValueError as exc:
            if self._port is not None:
                self._port.dropped_malformed += 1
            log.debug("%s: dropping malformed RTP from %s: %s", self.name, addr, exc)
            return
        if packet.payload_type in _MUXED_RTCP:
            self._on_rtcp(data, addr)
            return
        if self._port is not None:
            self._port.rx_count += 1
        self._update_stats(
            packet.ssrc, packet.sequence_number, packet.timestamp, self._time()
        )
        if packet.payload_type == self._dtmf_pt:
            self._feed_dtmf(packet)
        receiver = self._receiver
        if receiver is not None:
            receiver(packet)

    def _feed_dtmf(self, packet: RtpPacket) -> None:
        if self._dtmf is None:
            return
        digits = self._dtmf.feed(packet)
        if digits and self._on_dtmf is not None:
            for digit in digits:
                self._on_dtmf(digit)

    def _latch(self, data: bytes, addr: Address) -> bool:
        # Latch only onto something that looks like RTP, so one stray datagram
        # cannot capture the stream (RFC 7362 §4.2 warns of exactly that).
        if len(data) < 12 or data[0] >> 6 != 2:
            if self._port is not None:
                self._port.dropped_malformed += 1
            return False
        if self._remote is not None and addr != self._remote:
            log.info(
                "%s: latching to %s:%d (SDP said %s:%d)",
                self.name,
                *addr,
                *self._remote,
            )
        self._latched = addr
        self._set_dest(addr)
        if self._port is not None:
            self._port.set_latched(addr)
        if not self._latched_rtcp:
            # The SDP's a=rtcp holds while RTP comes from where the SDP said;
            # behind a NAT that moved RTP, RTCP is guessed next to it.
            if self._sdp_rtcp is not None and addr == self._remote:
                self._remote_rtcp = self._sdp_rtcp
            else:
                self._remote_rtcp = (addr[0], addr[1] + 1)
        return True

    def relatch(self, remote: Address | None = None, *, rtcp: Address | None = None) -> None:
        """Forget the latched source (after a re-INVITE moved the far end).

        ``remote``: the RTP address from the new SDP; ``rtcp``: its RTCP
        address when the SDP gave one (RFC 3605 ``a=rtcp``), else RTP + 1.
        """
        self._latched = None
        if self._port is not None:
            self._port.set_latched(None)
        self._set_dest(remote or self._remote)
        if remote is not None:
            self._remote = remote
            self._sdp_rtcp = rtcp
            self._remote_rtcp = rtcp or (remote[0], remote[1] + 1)
            self._latched_rtcp = False

    def _set_dest(self, addr: Address | None) -> None:
        self._dest = addr
        if self._port is None:
            return
        try:
            self._port.set_dest(addr)
        except (TypeError, ValueError) as exc:
            # Not a numeric address (a host name in SDP): nothing is sent
            # until the far end's first packet gives one to latch to.
            log.warning("%s: cannot send RTP to %r: %s", self.name, addr, exc)
            self._dest = None
            self._port.set_dest(None)

    @property
    def remote_address(self) -> Address | None:
        """Where RTP goes: the latched source, else the address from SDP."""
        return self._latched or self._remote

    def _on_rtcp(self, data: bytes, addr: Address) -> None:
        if self._latched is not None and addr[0] != self._latched[0]:
            return  # RTCP must come from the host we latched RTP to
        try:
            self.session.on_rtcp_received(data, now=self._loop.time())
        except ValueError as exc:
            log.debug("%s: dropping malformed RTCP from %s: %s", self.name, addr, exc)
            return
        self._remote_rtcp = addr
        self._latched_rtcp = True

    # -- timers ------------------------------------------------------------------

    def _attach(self, sock: socket.socket) -> None:
        """Take the bound RTP socket and start reading it."""
        self._sock = sock
        port = Port(sock, self.session.receiver, self.datagram_received)
        port.dtmf_pt = self._dtmf_pt
        self._port = port
        self._open_transports += 1
        self._set_dest(self._dest)
        self._loop.add_reader(sock.fileno(), port.drain)

    def _arm_rtcp(self) -> None:
        self._rtcp_timer = self._loop.call_at(self.session.get_timer(), self._rtcp_due)

    def _sync_sender_counters(self) -> None:
        session = self.session
        session.packets_sent = self.packets_sent
        session.octets_sent = self.octets_sent
        session.last_sent_timestamp = self.last_sent_timestamp

    def _rtcp_due(self) -> None:
        self._sync_sender_counters()
        # The loop may fire a timer up to its clock resolution early; the report
        # is due all the same (else it would re-arm for the same deadline at once).
        now = max(self._loop.time(), self.session.get_timer())
        data = self.session.handle_timer(now=now, wallclock=time.time())
        if (
            data is not None
            and self._rtcp is not None
            and self._remote_rtcp is not None
        ):
            self._rtcp.sendto(data, self._remote_rtcp)
        self._arm_rtcp()

    def _arm_inactivity(self) -> None:
        period = max(0.05, min(1.0, self._inactivity_timeout / 4))
        self._inactivity_timer = self._loop.call_later(period, self._check_inactivity)

    def _check_inactivity(self) -> None:
        now = self._loop.time()
        received = self.packets_received
        if received != self._rx_seen:
            self._rx_seen = received
            self._rx_last_change = now
            self.inactive = False
        elif (
            not self.inactive and now - self._rx_last_change >= self._inactivity_timeout
        ):
            self.inactive = True
            log.info("%s: no RTP for %.1f s", self.name, now - self._rx_last_change)
            if self._on_inactive is not None:
                try:
                    self._on_inactive(self)
                except Exception:
                    log.exception("%s: inactivity handler failed", self.name)
        self._arm_inactivity()

    # -- statistics and lifecycle ---------------------------------------------------

    def _transport_lost(self, *, closing: bool = False) -> None:
        # The ports go back to the pool only once the sockets are really closed
        # (asyncio closes them on a later loop iteration), or a new endpoint
        # could be handed a port that is still bound.
        if not closing:
            self._open_transports -= 1
        if self.closed and self._open_transports <= 0 and not self._released.done():
            if self._pool is not None:
                self._pool.release(self.local_port)
            self._released.set_result(None)

    async def wait_closed(self) -> None:
        """Wait until both sockets are closed and the ports are back in the pool."""
        await self._released

    def stats(self) -> RtcpStats:
        """Reception quality of this leg: cumulative / fraction lost, jitter."""
        return self.session.stats()

    def close(self, reason: str = "") -> None:
        """Send RTCP BYE, close both sockets, cancel timers, release the ports."""
        if self.closed:
            return
        self.closed = True
        for timer in (self._rtcp_timer, self._inactivity_timer):
            if timer is not None:
                timer.cancel()
        if self._rtcp is not None and self._remote_rtcp is not None:
            self._sync_sender_counters()
            bye = self.session.bye(
                now=self._loop.time(), wallclock=time.time(), reason=reason
            )
            self._rtcp.sendto(bye, self._remote_rtcp)
        sock = self._sock
        if sock is not None:
            self._sock = None
            if self._port is not None:
                self._port.detach()
            try:
                self._loop.remove_reader(sock.fileno())
            finally:
                sock.close()
                self._open_transports -= 1
        if self._rtcp is not None:
            self._rtcp.close()
        self._receiver = None
        self._raw_receiver = None
        self._transport_lost(closing=True)
        if self._dtmf is not None and self._on_dtmf is not None:
            for digit in self._dtmf.flush():
                self._on_dtmf(digit)


async def open_endpoint(
    *,
    pool: PortPool,
    codec: Codec,
    host: str = "127.0.0.1",
    remote: Address | None = None,
    dtmf_payload_type: int | None = 101,
    name: str = "rtp",
    inactivity_timeout: float = 30.0,
    on_inactive: Callable[[RtpEndpoint], None] | None = None,
    on_dtmf: Callable[[DtmfDigit], None] | None = None,
    rtcp: bool = True,
    rng: random.Random | None = None,
) -> RtpEndpoint:
    """Bind an RTP/RTCP port pair from ``pool`` and start the endpoint.

    A pair that another process holds is skipped (and stays reserved until
    the pool wraps round), so several instances can share a range.  Raises
    :class:`~sipspeak.media.portpool.PortPoolExhausted` when no pair is left.
    ``remote`` is the far end's RTP address from SDP; ``None`` waits for the
    first packet to latch onto.  ``rtcp=False`` skips the RTCP socket (tests,
    benchmarks of the relay path).
    """
    loop = asyncio.get_running_loop()
    skipped: list[int] = []
    try:
        for _ in range(_BIND_ATTEMPTS):
            port = pool.acquire()
            endpoint = RtpEndpoint(
                name=name,
                codec=codec,
                dtmf_payload_type=dtmf_payload_type,
                pool=pool,
                port=port,
                remote=remote,
                inactivity_timeout=inactivity_timeout,
                on_inactive=on_inactive,
                on_dtmf=on_dtmf,
                rng=rng or random.Random(),
            )
            try:
                sock = bind_udp(host, port)
            except OSError as exc:
                if not address_in_use(exc):
                    pool.release(port)
                    raise
                skipped.append(port)
                continue
            endpoint._attach(sock)
            if rtcp:
                try:
                    rtcp_transport, _ = await loop.create_datagram_endpoint(
                        functools.partial(_RtcpProtocol, endpoint),
                        local_addr=(host, port + 1),
                    )
                except OSError as exc:
                    endpoint._pool = None  # released below, not by the endpoint
                    endpoint.close()
                    await endpoint.wait_closed()
                    if not address_in_use(exc):
                        pool.release(port)
                        raise
                    skipped.append(port)
                    continue
                endpoint._rtcp = rtcp_transport
                endpoint._open_transports += 1
                endpoint._arm_rtcp()
            endpoint._arm_inactivity()
            return endpoint
        raise OSError(
            errno.EADDRINUSE, f"{_BIND_ATTEMPTS} RTP port pairs in a row are taken"
        )
    finally:
        for port in skipped:
            pool.release(port)

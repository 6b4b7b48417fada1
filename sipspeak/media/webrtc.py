"""WebRTC gateway: the operator's browser softphone as a PCMU :class:`MediaLeg`.

One :class:`WebRtcLeg` is one browser ``RTCPeerConnection`` (W3C webrtc-pc) with
a single audio m-line, terminated by aiortc (ICE RFC 8445, DTLS-SRTP RFC 5763 /
RFC 5764, RTP/RTCP multiplexing RFC 5761).  Its audio is G.711 μ-law only:
the transceiver's codec preferences are set to PCMU (RFC 3551 §4.5.14, static
payload type 0) before any description is applied, so an offer we make lists
nothing else and an answer we give picks nothing else (webrtc-pc §5.4
``setCodecPreferences``; RFC 3264 §6.1).  The bridge then relays packets
between this leg and an RTP leg without touching the audio.

Moving PCMU through aiortc unchanged
------------------------------------
aiortc decodes what it receives and encodes what it sends.  The two directions
are handled differently because aiortc exposes a pass-through only for sending:

* **RTP side → browser** uses aiortc's public pre-encoded path: a
  :class:`MediaStreamTrack` may return ``av.Packet`` instead of frames, and the
  sender then calls its encoder's ``pack()``, which for G.711 puts the packet's
  bytes into the RTP payload as they are.  :class:`PcmuPassthroughTrack` turns
  each PCMU payload we are given into such a packet whose ``pts`` is the RTP
  timestamp relative to the first one, so payload sizes, silence gaps and
  timestamp steps reach the browser unchanged.  aiortc still owns SSRC,
  sequence numbers, header extensions, SRTP and RTCP sender reports, and it
  sets the marker bit on every packet (one payload per frame), which audio
  receivers tolerate.
* **Browser → RTP side** has no public encoded-frame API in aiortc (there is no
  equivalent of WebRTC encoded transforms).  The least invasive mechanism is to
  wrap, on our own receiver instance only, ``RTCRtpReceiver._handle_rtp_packet``
  — the one method the DTLS transport calls with each SRTP-decrypted,
  parsed RTP packet.  The wrapper hands the payload, sequence number,
  timestamp, marker and SSRC to the bridge and, by default, stops there:
  aiortc's own receive path (jitter buffer, a decoder thread feeding the
  remote track, receive statistics) would decode a copy of the audio that
  nobody listens to, which costs about as much CPU again as the rest of the
  leg (measured: 20 back-to-back leg pairs at 50 packets/s each way took 19 %
  of a core without it, 45 % with it).  What is given up is aiortc's RTCP
  receiver reports to the browser and its ``inbound-rtp`` statistics; set
  :attr:`WebRtcSettings.receiver_reports` to keep them, and the wrapper then
  calls the original too (the decoded copy is drained by
  :meth:`WebRtcLeg._drain_remote_track` and never forwarded).  The trade-off
  of the tap itself: it relies on a private aiortc method, on our receiver
  instance only; the gateway's tests fail if a new aiortc renames it.

WebRTC header extensions (``mid``, audio level, abs-send-time; RFC 8285) are
dropped at this boundary: their ids were negotiated only with the browser.
RFC 4733 telephone-event is not offered by aiortc, so ``dtmf_payload_type`` is
always ``None``; browser DTMF travels over the signalling channel instead.

ICE host addresses
------------------
aioice gathers host candidates on every interface except loopback.  When
:attr:`WebRtcSettings.host_addresses` is set (tests use ``("127.0.0.1",)``,
a server may pin its public interface), this leg's ICE connection gathers on
exactly those addresses, by wrapping ``get_component_candidates`` of this one
connection object.  No STUN server is used unless configured: the gateway runs
on a reachable host and the browser brings its own server-reflexive address.

Signalling is sans-transport: :meth:`WebRtcLeg.create_offer` then
:meth:`WebRtcLeg.accept_answer`, or :meth:`WebRtcLeg.accept_offer` for a
browser-initiated offer.  aiortc does not trickle its own candidates: the SDP
it returns already carries all of them and ``a=end-of-candidates``.  The
browser may either wait for its gathering to complete or trickle its
candidates through :meth:`WebRtcLeg.add_ice_candidate` (RFC 8838).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import fractions
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.exceptions import InvalidAccessError, OperationError
from aiortc.mediastreams import MediaStreamError

from sipspeak.media.leg import PacketReceiver
from sipspeak.media.rtp import PAYLOAD_TYPES, Codec, RtpPacket
from sipspeak.media.webrtc_sdp import (
    WebRtcSignallingError,
    media_kinds,
    parse_candidate,
    sdp_audio_codecs,
)

__all__ = [
    "CloseReason",
    "EventHandler",
    "IceServer",
    "PcmuPassthroughTrack",
    "WebRtcLeg",
    "WebRtcLegClosed",
    "WebRtcLegConnected",
    "WebRtcLegEvent",
    "WebRtcLegState",
    "WebRtcSettings",
    "WebRtcSignallingError",
    "sdp_audio_codecs",
]

logger = logging.getLogger(__name__)

PCMU_PAYLOAD_TYPE: Final = PAYLOAD_TYPES["PCMU"]
PCMU_CLOCK_RATE: Final = 8000
_TIME_BASE: Final = fractions.Fraction(1, PCMU_CLOCK_RATE)
_TS_MASK: Final = 0xFFFFFFFF


class WebRtcLegState(enum.Enum):
    """Lifecycle of the leg; names follow webrtc-pc §4.3.3 RTCPeerConnectionState."""

    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class WebRtcLegConnected:
    """ICE and DTLS are up: audio flows both ways from now on."""


CloseReason = Literal["local", "remote", "failed", "media-timeout"]


@dataclass(frozen=True, slots=True)
class WebRtcLegClosed:
    """The leg is closed for good.

    ``reason`` is

    * ``"local"`` after :meth:`WebRtcLeg.close`;
    * ``"remote"`` when a connected browser closed its peer connection (DTLS
      close_notify, RFC 6347 §4.2.7 / RFC 5246 §7.2.1) or stopped answering
      ICE consent checks (RFC 7675 §5.1: consent expires after 30 s);
    * ``"failed"`` when ICE or DTLS could not be established at all;
    * ``"media-timeout"`` when a connected browser sent no RTP for
      :attr:`WebRtcSettings.media_timeout` seconds.  A closed tab sends
      neither BYE nor close_notify, so this is how it is noticed quickly.
    """

    reason: CloseReason


WebRtcLegEvent = WebRtcLegConnected | WebRtcLegClosed
EventHandler = Callable[[WebRtcLegEvent], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class IceServer:
    """A STUN or TURN server (webrtc-pc §4.2.1 RTCIceServer)."""

    #: ``"stun:host:port"`` or ``"turn:host:port?transport=udp"`` (RFC 7064, RFC 7065).
    url: str
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WebRtcSettings:
    """Gateway configuration shared by every browser leg."""

    #: STUN/TURN servers; empty means host candidates only.
    ice_servers: tuple[IceServer, ...] = ()
    #: Interfaces to gather host candidates on; ``None`` lets aioice use every
    #: non-loopback interface.
    host_addresses: tuple[str, ...] | None = None
    #: Packets queued towards the browser before the oldest is dropped (20 ms
    #: each).  The sender drains the queue as packets come, so it only fills
    #: while the loop stalls; stale audio is then dropped rather than burst.
    send_queue_packets: int = 10
    #: Seconds without RTP from a connected browser after which the leg closes
    #: (``None``: never).  Chromium keeps sending while its track is muted
    #: (``enabled = false`` sends silence), so the softphone must mute that
    #: way, not by removing the track.
    media_timeout: float | None = 10.0
    #: Also run aiortc's receive path for every browser packet: RTCP receiver
    #: reports to the browser (its ``remote-inbound-rtp`` round-trip time and
    #: loss) and aiortc's ``inbound-rtp`` statistics, at the price of decoding
    #: a discarded copy of the audio (see the module docstring).
    receiver_reports: bool = False

    def __post_init__(self) -> None:
        if self.send_queue_packets < 1:
            raise ValueError("send_queue_packets must be at least 1")
        if self.media_timeout is not None and self.media_timeout <= 0:
            raise ValueError("media_timeout must be positive or None")


class PcmuPassthroughTrack(MediaStreamTrack):
    """An outgoing audio track that yields already-encoded PCMU payloads.

    aiortc's sender calls :meth:`recv`; returning ``av.Packet`` makes it use the
    G.711 encoder's ``pack()`` (payload bytes unchanged) instead of encoding.
    The RTP timestamp of each payload becomes ``pts`` relative to the first
    payload, so the browser sees the same timestamp steps as the RTP side.
    """

    kind = "audio"

    def __init__(self, *, capacity: int) -> None:
        super().__init__()
        self._queue: collections.deque[tuple[int, bytes]] = collections.deque(
            maxlen=capacity
        )
        self._wakeup = asyncio.Event()
        self._origin: int | None = None
        #: Payloads dropped because the sender fell behind (oldest first).
        self.dropped = 0

    def push(self, timestamp: int, payload: bytes) -> None:
        """Queue one PCMU payload; never blocks (drops the oldest when full)."""
        if self.readyState != "live":
            return
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append((timestamp, payload))
        self._wakeup.set()

    async def recv(self) -> av.Packet[Any]:
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._wakeup.clear()
            await self._wakeup.wait()
        timestamp, payload = self._queue.popleft()
        if self._origin is None:
            self._origin = timestamp
        packet = av.Packet(payload)
        packet.pts = (timestamp - self._origin) & _TS_MASK
        packet.time_base = _TIME_BASE
        return packet

    def stop(self) -> None:
        super().stop()
        # Wake a pending recv() so that it raises MediaStreamError.
        self._wakeup.set()


class _CallLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Prefixes every message with the Call-ID (and keeps it as a record field)."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        assert self.extra is not None
        return f"[{self.extra['call_id']}] {msg}", kwargs


class WebRtcLeg:
    """One browser peer connection, bridged as a PCMU :class:`MediaLeg`.

    Create it inside the running event loop; it owns the aiortc peer connection
    (and, with receiver reports on, the task that drains aiortc's decoded copy
    of the audio).  Call :meth:`close` (or let the browser close) to release it.
    """

    def __init__(
        self,
        *,
        settings: WebRtcSettings | None = None,
        call_id: str = "",
        on_event: EventHandler | None = None,
    ) -> None:
        self._settings = settings or WebRtcSettings()
        self._log = _CallLogger(logger, {"call_id": call_id})
        self._call_id = call_id
        self._on_event = on_event
        self._receiver: PacketReceiver | None = None
        self._state = WebRtcLegState.NEW
        self._closed_reason: CloseReason | None = None
        self._loop = asyncio.get_running_loop()
        self._last_rx = 0.0
        self._media_timer: asyncio.TimerHandle | None = None
        self._closed = asyncio.Event()
        self._track = PcmuPassthroughTrack(capacity=self._settings.send_queue_packets)
        self._pc = RTCPeerConnection(
            RTCConfiguration(
                iceServers=[
                    RTCIceServer(
                        urls=server.url,
                        username=server.username,
                        credential=server.credential,
                    )
                    for server in self._settings.ice_servers
                ]
            )
        )
        self._pc.on("connectionstatechange", self._on_connection_state)
        self._pc.on("track", self._on_track)
        self._transceiver: RTCRtpTransceiver = self._pc.addTransceiver(
            self._track, direction="sendrecv"
        )
        pcmu = [
            codec
            for codec in RTCRtpSender.getCapabilities("audio").codecs
            if codec.mimeType.lower() == "audio/pcmu"
        ]
        self._transceiver.setCodecPreferences(pcmu)
        self._hook_receiver(self._transceiver.receiver)
        if self._settings.host_addresses is not None:
            self._restrict_host_addresses(self._settings.host_addresses)
        self._drain_task: asyncio.Task[None] | None = None
        self._shutdown_task: asyncio.Task[None] | None = None
        #: Packets from the browser handed to the receiver / dropped as non-PCMU.
        self.packets_received = 0
        self.packets_ignored = 0

    # -- MediaLeg ----------------------------------------------------------

    @property
    def codec(self) -> Codec:
        return "PCMU"

    @property
    def dtmf_payload_type(self) -> int | None:
        return None

    def send(self, packet: RtpPacket) -> None:
        """Queue a PCMU packet towards the browser; other payload types are dropped.

        Packets sent before the leg is connected are dropped too: the browser
        would otherwise get them as a burst of stale audio.
        """
        if self._state is not WebRtcLegState.CONNECTED:
            return
        if packet.payload_type != PCMU_PAYLOAD_TYPE:
            self._log.debug("not sending payload type %d", packet.payload_type)
            return
        self._track.push(packet.timestamp, packet.payload)

    def set_receiver(self, cb: PacketReceiver | None) -> None:
        self._receiver = cb

    @property
    def packets_dropped(self) -> int:
        """Packets towards the browser dropped because its sender fell behind."""
        return self._track.dropped

    # -- state -------------------------------------------------------------

    @property
    def state(self) -> WebRtcLegState:
        return self._state

    @property
    def closed_reason(self) -> CloseReason | None:
        return self._closed_reason

    def set_event_handler(self, cb: EventHandler | None) -> None:
        """Install the callback for :data:`WebRtcLegEvent` (runs on the loop thread)."""
        self._on_event = cb

    async def wait_closed(self) -> WebRtcLegClosed:
        """Wait until the leg is closed, whoever closed it."""
        await self._closed.wait()
        assert self._closed_reason is not None
        return WebRtcLegClosed(self._closed_reason)

    @property
    def local_description(self) -> str | None:
        description = self._pc.localDescription
        return None if description is None else str(description.sdp)

    @property
    def remote_description(self) -> str | None:
        description = self._pc.remoteDescription
        return None if description is None else str(description.sdp)

    @property
    def negotiated_codec(self) -> str | None:
        """The codec both sides agreed on (first format of the answer), or ``None``."""
        description = self._pc.localDescription
        if description is None or self._pc.remoteDescription is None:
            return None
        answer = (
            description if description.type == "answer" else self._pc.remoteDescription
        )
        codecs = sdp_audio_codecs(str(answer.sdp))
        return codecs[0] if codecs else None

    @property
    def remote_candidates(self) -> list[tuple[str, int, str]]:
        """``(address, port, type)`` of every remote ICE candidate known so far."""
        transport = self._transceiver.receiver.transport.transport
        return [(c.ip, c.port, c.type) for c in transport.getRemoteCandidates()]

    async def stats(self) -> dict[str, Any]:
        """aiortc's RTCStatsReport (webrtc-stats ids → stats objects)."""
        return dict(await self._pc.getStats())

    # -- signalling (sans transport) ----------------------------------------

    async def create_offer(self) -> str:
        """Make an offer (one sendrecv PCMU audio m-line, all candidates)."""
        self._require_signalling("stable", initial=True)
        self._state = WebRtcLegState.CONNECTING
        await self._pc.setLocalDescription(await self._pc.createOffer())
        return self._local_sdp()

    async def accept_answer(self, sdp: str) -> None:
        """Apply the browser's answer to :meth:`create_offer`."""
        self._require_signalling("have-local-offer")
        self._check_remote(sdp)
        await self._apply_remote(RTCSessionDescription(sdp=sdp, type="answer"))
        if self.negotiated_codec != "PCMU":
            raise WebRtcSignallingError(
                f"answer chose {self.negotiated_codec!r}, not PCMU"
            )

    async def accept_offer(self, sdp: str) -> str:
        """Apply a browser-initiated offer and return our answer."""
        self._require_signalling("stable", initial=True)
        self._check_remote(sdp)
        # From here on the leg is spent if anything fails: the caller closes it.
        self._state = WebRtcLegState.CONNECTING
        await self._apply_remote(RTCSessionDescription(sdp=sdp, type="offer"))
        await self._pc.setLocalDescription(await self._pc.createAnswer())
        return self._local_sdp()

    async def add_ice_candidate(
        self, candidate: str, *, sdp_mid: str | None = None
    ) -> None:
        """Add a candidate the browser trickled (RFC 8838 §4; webrtc-pc §4.4.1.7).

        ``candidate`` is ``RTCIceCandidate.candidate`` as the browser gives it
        (``"candidate:…"``, RFC 8839 §5.1); an empty string, like the browser's
        final ``icecandidate`` event, means end-of-candidates.  Our own SDP
        always carries all of our candidates, so nothing trickles the other way.
        """
        if self._state is WebRtcLegState.CLOSED:
            raise WebRtcSignallingError("leg is closed", status_hint=481)
        if self._pc.remoteDescription is None:
            raise WebRtcSignallingError(
                "candidate before the remote description", status_hint=491
            )
        if not candidate:
            await self._pc.addIceCandidate(None)
            return
        parsed = parse_candidate(candidate)
        parsed.sdpMid = sdp_mid if sdp_mid is not None else self._transceiver.mid
        await self._pc.addIceCandidate(parsed)

    async def close(self) -> None:
        """Close the peer connection and release everything the leg owns."""
        self._start_shutdown("local")
        assert self._shutdown_task is not None
        await asyncio.shield(self._shutdown_task)

    # -- internals ---------------------------------------------------------

    def _require_signalling(self, expected: str, *, initial: bool = False) -> None:
        if self._state is WebRtcLegState.CLOSED:
            raise WebRtcSignallingError("leg is closed", status_hint=481)
        # One offer/answer exchange per leg: renegotiation (hold, ICE restart)
        # is not supported, the softphone mutes its track locally instead.
        if initial and self._state is not WebRtcLegState.NEW:
            raise WebRtcSignallingError("already negotiated", status_hint=491)
        if self._pc.signalingState != expected:
            raise WebRtcSignallingError(
                f"signalling state is {self._pc.signalingState}, not {expected}",
                status_hint=491,
            )

    def _check_remote(self, sdp: str) -> None:
        # The softphone has exactly one audio line; anything else (video, data
        # channels, a second audio line) would be negotiated with aiortc's
        # default codecs and decoded for nothing.
        kinds = media_kinds(sdp)
        if kinds != ["audio"]:
            raise WebRtcSignallingError(
                f"expected exactly one audio m-line, got {kinds or 'none'}"
            )
        if "PCMU" not in sdp_audio_codecs(sdp):
            raise WebRtcSignallingError("the browser does not offer PCMU")

    async def _apply_remote(self, description: RTCSessionDescription) -> None:
        try:
            await self._pc.setRemoteDescription(description)
        except (ValueError, InvalidAccessError, OperationError) as exc:
            # ValueError: SDP that does not parse or validate; OperationError:
            # no common codec; InvalidAccessError: inconsistent description.
            raise WebRtcSignallingError(f"unusable {description.type}: {exc}") from exc

    def _local_sdp(self) -> str:
        if self._state is WebRtcLegState.CLOSED:
            # close() ran while ICE candidates were being gathered.
            raise WebRtcSignallingError(
                "leg closed during negotiation", status_hint=481
            )
        sdp = self.local_description
        if sdp is None:
            raise WebRtcSignallingError("no local description", status_hint=500)
        return sdp

    def _hook_receiver(self, receiver: RTCRtpReceiver) -> None:
        """Tap SRTP-decrypted RTP packets on this receiver (see module docstring)."""
        original: Callable[..., Awaitable[None]] = receiver._handle_rtp_packet
        receiver_reports = self._settings.receiver_reports

        async def handle_rtp_packet(packet: Any, arrival_time_ms: int) -> None:
            self._deliver(packet)
            if receiver_reports:
                await original(packet, arrival_time_ms=arrival_time_ms)

        # Instance attribute on this receiver only; mypy forbids assigning to a method.
        setattr(receiver, "_handle_rtp_packet", handle_rtp_packet)  # noqa: B010

    def _deliver(self, packet: Any) -> None:
        if packet.payload_type != PCMU_PAYLOAD_TYPE or not packet.payload:
            self.packets_ignored += 1
            return
        self.packets_received += 1
        self._last_rx = self._loop.time()
        receiver = self._receiver
        if receiver is None:
            return
        try:
            receiver(
                RtpPacket(
                    payload_type=PCMU_PAYLOAD_TYPE,
                    sequence_number=packet.sequence_number,
                    timestamp=packet.timestamp,
                    ssrc=packet.ssrc,
                    payload=bytes(packet.payload),
                    marker=bool(packet.marker),
                )
            )
        except Exception:  # noqa: BLE001
            # A faulty bridge callback must not tear down aiortc's transport loop.
            self._log.exception("packet receiver failed")

    def _restrict_host_addresses(self, pinned: tuple[str, ...]) -> None:
        """Gather host candidates on ``pinned`` only (this leg's ICE agent)."""
        connection = (
            self._transceiver.receiver.transport.transport.iceGatherer._connection
        )
        gather: Callable[..., Awaitable[Any]] = connection.get_component_candidates

        async def get_component_candidates(
            component: int, addresses: list[str], timeout: int = 5
        ) -> Any:
            return await gather(
                component=component, addresses=list(pinned), timeout=timeout
            )

        setattr(connection, "get_component_candidates", get_component_candidates)  # noqa: B010

    def _on_track(self, track: MediaStreamTrack) -> None:
        # Without receiver reports aiortc's decoder never gets a packet, so
        # its remote track stays empty and needs no draining.
        if (
            self._settings.receiver_reports
            and track.kind == "audio"
            and self._drain_task is None
        ):
            self._drain_task = asyncio.create_task(
                self._drain_remote_track(track), name=f"webrtc-drain-{self._call_id}"
            )

    async def _drain_remote_track(self, track: MediaStreamTrack) -> None:
        """Discard aiortc's decoded copy of the browser audio (never forwarded)."""
        try:
            while True:
                await track.recv()
        except (asyncio.CancelledError, MediaStreamError):
            pass
        except Exception:  # noqa: BLE001 - logged, the leg keeps working
            self._log.exception("draining the remote track failed")

    def _on_connection_state(self) -> None:
        state = self._pc.connectionState
        self._log.debug("connection state %s", state)
        if state == "connected" and self._state is WebRtcLegState.CONNECTING:
            self._state = WebRtcLegState.CONNECTED
            self._last_rx = self._loop.time()
            self._arm_media_timer()
            self._emit(WebRtcLegConnected())
        elif state in ("closed", "failed"):
            # aiortc closes itself when the browser's DTLS close_notify arrives
            # or ICE consent expires; on a failure we close it.  Either way the
            # shutdown is a task the leg owns and close() awaits.
            connected = self._state is WebRtcLegState.CONNECTED
            self._start_shutdown("remote" if connected else "failed")

    def _arm_media_timer(self) -> None:
        timeout = self._settings.media_timeout
        if timeout is not None:
            self._media_timer = self._loop.call_at(
                self._last_rx + timeout, self._on_media_timer
            )

    def _on_media_timer(self) -> None:
        """One deadline, re-armed from the last packet's arrival (no polling)."""
        self._media_timer = None
        if self._state is not WebRtcLegState.CONNECTED:
            return
        assert self._settings.media_timeout is not None
        if self._loop.time() >= self._last_rx + self._settings.media_timeout:
            self._log.info(
                "no RTP from the browser for %ss", self._settings.media_timeout
            )
            self._start_shutdown("media-timeout")
        else:
            self._arm_media_timer()

    def _start_shutdown(self, reason: CloseReason) -> None:
        """Start closing once; the first reason wins."""
        if self._shutdown_task is None:
            self._shutdown_task = asyncio.create_task(
                self._shutdown_once(reason), name=f"webrtc-close-{self._call_id}"
            )

    async def _shutdown_once(self, reason: CloseReason) -> None:
        self._state = WebRtcLegState.CLOSED
        self._closed_reason = reason
        self._receiver = None
        if self._media_timer is not None:
            self._media_timer.cancel()
            self._media_timer = None
        try:
            await self._pc.close()
        except Exception:  # noqa: BLE001 - the leg must still end up closed
            self._log.exception("closing the peer connection failed")
        self._track.stop()
        if self._drain_task is not None:
            self._drain_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain_task
        self._log.info("WebRTC leg closed (%s)", reason)
        self._closed.set()
        self._emit(WebRtcLegClosed(reason))

    def _emit(self, event: WebRtcLegEvent) -> None:
        handler = self._on_event
        if handler is None:
            return
        try:
            handler(event)
        except Exception:  # noqa: BLE001 - a faulty subscriber must not stop the leg
            self._log.exception("event handler failed for %s", event)

"""SDP for one audio stream (RFC 4566) and the offer/answer model (RFC 3264).

Public API:

* ``SessionDescription`` / ``MediaDescription`` / ``Origin`` — parsed SDP;
  ``parse_sdp(data)`` raises ``SdpError`` (400); ``.serialize() -> bytes``.
* ``build_offer(*, address, port, session_id, version, codecs=("PCMU", "PCMA"),
  telephone_event=True, ptime=20, direction="sendrecv")`` — our audio offer.
* ``answer_offer(offer, *, address, port, session_id, version, codecs=…,
  direction="sendrecv") -> (answer, NegotiatedMedia)`` — RFC 3264 §6: one answer
  m-line per offered one, non-audio or unusable streams rejected with port 0;
  raises ``NotAcceptableHere`` (488) when no offered audio stream has PCMU/PCMA.
* ``negotiate_answer(offer, answer) -> NegotiatedMedia`` — the offerer's view of
  a received answer (RFC 3264 §7); raises ``NotAcceptableHere`` when rejected.
* ``NegotiatedMedia`` — remote RTP address/port, the codec and payload type,
  the telephone-event payload type (RFC 4733), ptime and our direction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from sipspeak.sip.errors import NotAcceptableHere, SipParseError

AudioCodec = Literal["PCMU", "PCMA"]
Direction = Literal["sendrecv", "sendonly", "recvonly", "inactive"]
DIRECTIONS: tuple[Direction, ...] = ("sendrecv", "sendonly", "recvonly", "inactive")
STATIC_PAYLOAD_TYPES: dict[AudioCodec, int] = {"PCMU": 0, "PCMA": 8}
_STATIC_NAMES = {0: "PCMU", 8: "PCMA"}
_CODECS: tuple[AudioCodec, ...] = ("PCMU", "PCMA")
_REVERSE: dict[Direction, Direction] = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}


class SdpError(SipParseError):
    """A body that is not valid SDP (RFC 4566 §5) — 400."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Origin:
    """``o=`` line (RFC 4566 §5.2)."""

    username: str = "-"
    session_id: int
    version: int
    address_type: str = "IP4"
    address: str

    def __str__(self) -> str:
        return f"{self.username} {self.session_id} {self.version} IN {self.address_type} {self.address}"


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaDescription:
    """One ``m=`` section (RFC 4566 §5.14) with its ``c=`` and ``a=`` lines."""

    media: str
    port: int
    proto: str = "RTP/AVP"
    formats: tuple[str, ...]
    connection: str | None = None
    attributes: tuple[tuple[str, str | None], ...] = ()

    def attribute(self, name: str) -> str | None:
        for key, value in self.attributes:
            if key == name:
                return "" if value is None else value
        return None

    def rtpmap(self) -> dict[int, tuple[str, int]]:
        """Payload type -> (encoding name upper-cased, clock rate), static types included."""
        out: dict[int, tuple[str, int]] = {}
        for fmt in self.formats:
            if fmt.isdigit() and int(fmt) in _STATIC_NAMES:
                out[int(fmt)] = (_STATIC_NAMES[int(fmt)], 8000)
        for key, value in self.attributes:
            if key != "rtpmap" or not value:
                continue
            pt, _, encoding = value.partition(" ")
            name, _, rest = encoding.partition("/")
            rate = rest.partition("/")[0]
            if pt.isdigit() and rate.isdigit():
                out[int(pt)] = (name.upper(), int(rate))
        return out

    def rtcp(self, rtp_address: str | None) -> tuple[str, int] | None:
        """Where the peer wants RTCP (RFC 3605 ``a=rtcp:port [IN IP4 addr]``).

        ``None`` when the attribute is absent or unreadable: RTCP then goes to
        the RTP port + 1 (RFC 3550 §11).  Without an address the RTP address
        (``rtp_address``) is meant.
        """
        value = self.attribute("rtcp")
        if not value:
            return None
        parts = value.split()
        if not parts[0].isdigit() or not 0 < int(parts[0]) <= 65535:
            return None
        port = int(parts[0])
        if len(parts) >= 4 and parts[1] == "IN" and parts[2] in ("IP4", "IP6"):
            return (parts[3], port)
        if len(parts) != 1 or not rtp_address:
            return None
        return (rtp_address, port)

    @property
    def direction(self) -> Direction:
        for key, _ in self.attributes:
            for direction in DIRECTIONS:
                if key == direction:
                    return direction
        return "sendrecv"

    @property
    def ptime(self) -> int | None:
        value = self.attribute("ptime")
        return int(value) if value and value.isdigit() else None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionDescription:
    """A session description (RFC 4566 §5)."""

    origin: Origin
    session_name: str = "-"
    connection: str | None = None
    timing: str = "0 0"
    attributes: tuple[tuple[str, str | None], ...] = ()
    media: tuple[MediaDescription, ...] = ()

    def connection_for(self, media: MediaDescription) -> str | None:
        """Media-level ``c=`` wins over the session-level one (RFC 4566 §5.7)."""
        return media.connection or self.connection

    def serialize(self) -> bytes:
        lines = ["v=0", f"o={self.origin}", f"s={self.session_name}"]
        if self.connection:
            lines.append(f"c=IN {self.connection}")
        lines.append(f"t={self.timing}")
        lines.extend(_attr(k, v) for k, v in self.attributes)
        for m in self.media:
            lines.append(f"m={m.media} {m.port} {m.proto} {' '.join(m.formats)}")
            if m.connection:
                lines.append(f"c=IN {m.connection}")
            lines.extend(_attr(k, v) for k, v in m.attributes)
        return ("\r\n".join(lines) + "\r\n").encode()


def _attr(key: str, value: str | None) -> str:
    return f"a={key}" if value is None else f"a={key}:{value}"


def _connection(value: str) -> str:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError(f"bad c= line {value!r}")
    return f"{parts[1]} {parts[2]}"


def _address(connection: str | None) -> str | None:
    return None if connection is None else connection.split()[1].split("/")[0]


class _MediaBuilder:
    """Lines of one m= section while it is being read."""

    __slots__ = ("attributes", "connection", "formats", "media", "port", "proto")

    def __init__(self, value: str) -> None:
        parts = value.split()
        if len(parts) < 4 or not parts[1].split("/")[0].isdigit():
            raise SdpError(f"bad m= line {value!r}")
        self.media = parts[0]
        self.port = int(parts[1].split("/")[0])
        if self.port > 65535:
            raise SdpError(f"bad m= port {parts[1]!r}")
        self.proto = parts[2]
        self.formats = tuple(parts[3:])
        self.connection: str | None = None
        self.attributes: list[tuple[str, str | None]] = []

    def build(self) -> MediaDescription:
        return MediaDescription(
            media=self.media,
            port=self.port,
            proto=self.proto,
            formats=self.formats,
            connection=self.connection,
            attributes=tuple(self.attributes),
        )


def parse_sdp(data: bytes | str) -> SessionDescription:
    """Parse an SDP body (RFC 4566 §5); lines may end in CRLF or LF."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    origin: Origin | None = None
    session: dict[str, str] = {}
    session_attrs: list[tuple[str, str | None]] = []
    media: list[_MediaBuilder] = []
    for raw in text.splitlines():
        if not raw:
            continue
        if len(raw) < 2 or raw[1] != "=":
            raise SdpError(f"bad SDP line {raw[:40]!r}")
        kind, value = raw[0], raw[2:]
        if kind == "v" and value != "0":
            raise SdpError(f"unsupported SDP version {value!r}")
        if kind == "m":
            media.append(_MediaBuilder(value))
        elif kind == "c":
            if media:
                media[-1].connection = _connection(value)
            else:
                session["c"] = _connection(value)
        elif kind == "a":
            name, colon, val = value.partition(":")
            pair = (name, val if colon else None)
            (media[-1].attributes if media else session_attrs).append(pair)
        elif kind == "o":
            parts = value.split()
            if len(parts) != 6 or not parts[1].isdigit() or not parts[2].isdigit():
                raise SdpError(f"bad o= line {value!r}")
            origin = Origin(
                username=parts[0],
                session_id=int(parts[1]),
                version=int(parts[2]),
                address_type=parts[4],
                address=parts[5],
            )
        elif not media and kind in "st":
            session[kind] = value
    if origin is None:
        raise SdpError("SDP without o= line")
    return SessionDescription(
        origin=origin,
        session_name=session.get("s", "-"),
        connection=session.get("c"),
        timing=session.get("t", "0 0"),
        attributes=tuple(session_attrs),
        media=tuple(m.build() for m in media),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class NegotiatedMedia:
    """What both sides agreed for the audio stream, from our point of view."""

    remote_address: str
    remote_port: int
    codec: AudioCodec
    remote_rtcp: tuple[str, int] | None = None
    """RTCP destination from ``a=rtcp`` (RFC 3605); ``None``: the RTP port + 1."""
    payload_type: int
    telephone_event: int | None = None
    ptime: int = 20
    direction: Direction = "sendrecv"
    local_codecs: tuple[AudioCodec, ...] = field(default=("PCMU", "PCMA"))

    @property
    def on_hold(self) -> bool:
        """The peer does not want to receive (RFC 3264 §8.4; RFC 2543 c=0.0.0.0)."""
        return (
            self.direction in ("recvonly", "inactive")
            or self.remote_address == "0.0.0.0"
        )


def _audio_section(
    port: int,
    address: str,
    payloads: Sequence[tuple[int, str]],
    telephone_event: int | None,
    ptime: int,
    direction: Direction,
) -> MediaDescription:
    attrs: list[tuple[str, str | None]] = [
        ("rtpmap", f"{pt} {name}/8000") for pt, name in payloads
    ]
    formats = [str(pt) for pt, _ in payloads]
    if telephone_event is not None:
        formats.append(str(telephone_event))
        attrs.append(("rtpmap", f"{telephone_event} telephone-event/8000"))
        attrs.append(("fmtp", f"{telephone_event} 0-16"))
    attrs.append(("ptime", str(ptime)))
    attrs.append((direction, None))
    return MediaDescription(
        media="audio",
        port=port,
        formats=tuple(formats),
        connection=f"{_ip_type(address)} {address}",
        attributes=tuple(attrs),
    )


def _ip_type(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def build_offer(
    *,
    address: str,
    port: int,
    session_id: int,
    version: int,
    codecs: tuple[AudioCodec, ...] = ("PCMU", "PCMA"),
    telephone_event: bool = True,
    ptime: int = 20,
    direction: Direction = "sendrecv",
) -> SessionDescription:
    """An offer with one audio stream (RFC 3264 §5); PT 101 for telephone-event."""
    payloads = [(STATIC_PAYLOAD_TYPES[c], c) for c in codecs]
    origin = Origin(
        session_id=session_id,
        version=version,
        address_type=_ip_type(address),
        address=address,
    )
    section = _audio_section(
        port, address, payloads, 101 if telephone_event else None, ptime, direction
    )
    return SessionDescription(origin=origin, media=(section,))


def _pick(
    media: MediaDescription, codecs: tuple[AudioCodec, ...]
) -> tuple[int, AudioCodec] | None:
    mapping = media.rtpmap()
    for fmt in media.formats:
        if not fmt.isdigit() or int(fmt) not in mapping:
            continue
        name, rate = mapping[int(fmt)]
        for codec in codecs:
            if rate == 8000 and name == codec:
                return int(fmt), codec
    return None


def _telephone_event(media: MediaDescription) -> int | None:
    for pt, (name, rate) in media.rtpmap().items():
        if name == "TELEPHONE-EVENT" and rate == 8000 and str(pt) in media.formats:
            return pt
    return None


def answer_offer(
    offer: SessionDescription,
    *,
    address: str,
    port: int,
    session_id: int,
    version: int,
    codecs: tuple[AudioCodec, ...] = ("PCMU", "PCMA"),
    direction: Direction = "sendrecv",
) -> tuple[SessionDescription, NegotiatedMedia]:
    """Answer an offer (RFC 3264 §6); raises ``NotAcceptableHere`` (488) if nothing fits."""
    chosen: NegotiatedMedia | None = None
    sections: list[MediaDescription] = []
    for m in offer.media:
        pick = None
        remote = _address(offer.connection_for(m))
        if (
            chosen is None
            and m.media == "audio"
            and m.port != 0
            and remote
            and m.proto.startswith("RTP/")
        ):
            pick = _pick(m, codecs)
        if pick is None:
            # §6: a stream we do not accept is answered with port 0 and the offered formats.
            sections.append(
                MediaDescription(
                    media=m.media, port=0, proto=m.proto, formats=m.formats
                )
            )
            continue
        pt, codec = pick
        event = _telephone_event(m)
        ptime = m.ptime or 20
        ours = _intersect(_REVERSE[m.direction], direction)
        chosen = NegotiatedMedia(
            remote_address=remote or "",
            remote_port=m.port,
            remote_rtcp=m.rtcp(remote),
            codec=codec,
            payload_type=pt,
            telephone_event=event,
            ptime=ptime,
            direction=ours,
            local_codecs=codecs,
        )
        sections.append(
            _audio_section(port, address, [(pt, codec)], event, ptime, ours)
        )
    if chosen is None:
        raise NotAcceptableHere("no audio stream with PCMU or PCMA in the offer")
    origin = Origin(
        session_id=session_id,
        version=version,
        address_type=_ip_type(address),
        address=address,
    )
    return SessionDescription(origin=origin, media=tuple(sections)), chosen


def _intersect(offered: Direction, wanted: Direction) -> Direction:
    send = offered in ("sendrecv", "sendonly") and wanted in ("sendrecv", "sendonly")
    recv = offered in ("sendrecv", "recvonly") and wanted in ("sendrecv", "recvonly")
    if send and recv:
        return "sendrecv"
    if send:
        return "sendonly"
    return "recvonly" if recv else "inactive"


def negotiate_answer(
    offer: SessionDescription, answer: SessionDescription
) -> NegotiatedMedia:
    """The offerer's result from an answer (RFC 3264 §7)."""
    if len(answer.media) != len(offer.media):
        raise NotAcceptableHere(
            "answer m-line count differs from the offer (RFC 3264 §6)"
        )
    for ours, theirs in zip(offer.media, answer.media, strict=True):
        if ours.media != "audio" or theirs.port == 0:
            continue
        names = {name for name, _ in ours.rtpmap().values()}
        pick = _pick(theirs, tuple(c for c in _CODECS if c in names))
        remote = _address(answer.connection_for(theirs))
        if pick is None or remote is None:
            continue
        return NegotiatedMedia(
            remote_address=remote,
            remote_port=theirs.port,
            remote_rtcp=theirs.rtcp(remote),
            codec=pick[1],
            payload_type=pick[0],
            telephone_event=_telephone_event(theirs),
            ptime=theirs.ptime or ours.ptime or 20,
            direction=_intersect(_REVERSE[theirs.direction], ours.direction),
        )
    raise NotAcceptableHere("the answer accepted no audio stream")


def with_direction(
    sdp: SessionDescription, direction: Direction, version: int
) -> SessionDescription:
    """A re-offer of ``sdp`` with a new direction, e.g. ``sendonly`` for hold (RFC 3264 §8.4)."""
    media = tuple(
        replace(
            m,
            attributes=tuple(a for a in m.attributes if a[0] not in DIRECTIONS)
            + ((direction, None),),
        )
        for m in sdp.media
    )
    return replace(sdp, origin=replace(sdp.origin, version=version), media=media)


def extract_sdp(content_type: str | None, body: bytes) -> bytes | None:
    """The SDP in a body: the body itself, or the application/sdp part of a
    multipart/mixed body (RFC 5621 §3; RFC 4475 §3.1.1.11).  None if there is none."""
    if not body or content_type is None:
        return None
    main, _, params = content_type.partition(";")
    kind = main.strip().lower()
    if kind == "application/sdp":
        return body
    if kind != "multipart/mixed":
        return None
    boundary = None
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary":
            boundary = value.strip().strip('"')
    if not boundary:
        return None
    for part in body.split(b"--" + boundary.encode())[1:]:
        if part.startswith(b"--"):
            break
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        for line in head.split(b"\r\n"):
            field_name, _, field_value = line.partition(b":")
            is_type = field_name.strip().lower() in (b"content-type", b"c")
            if is_type and field_value.strip().lower().startswith(b"application/sdp"):
                return content[:-2] if content.endswith(b"\r\n") else content
    return None

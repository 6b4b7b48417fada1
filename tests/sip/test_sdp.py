"""SDP (RFC 4566) and offer/answer (RFC 3264) for one audio stream."""

from __future__ import annotations

import pytest

from sipspeak.sip.errors import NotAcceptableHere
from sipspeak.sip.sdp import (
    SdpError,
    answer_offer,
    build_offer,
    negotiate_answer,
    parse_sdp,
    with_direction,
)

# A typical trunk offer: session-level c=, G.729 first, PCMA, telephone-event, a video stream.
TRUNK_OFFER = (
    b"v=0\r\n"
    b"o=Sonus_UAC 25226 18363 IN IP4 192.0.2.10\r\n"
    b"s=SIP Media Capabilities\r\n"
    b"c=IN IP4 192.0.2.10\r\n"
    b"t=0 0\r\n"
    b"m=audio 20000 RTP/AVP 18 8 96\r\n"
    b"a=rtpmap:18 G729/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:96 telephone-event/8000\r\n"
    b"a=fmtp:96 0-15\r\n"
    b"a=ptime:30\r\n"
    b"a=sendrecv\r\n"
    b"m=video 20002 RTP/AVP 31\r\n"
)


def test_parse_session_and_media_level_connection() -> None:
    sdp = parse_sdp(TRUNK_OFFER)
    assert sdp.origin.session_id == 25226 and sdp.origin.address == "192.0.2.10"
    audio, video = sdp.media
    assert audio.formats == ("18", "8", "96") and audio.port == 20000
    assert audio.rtpmap()[96] == ("TELEPHONE-EVENT", 8000)
    assert audio.ptime == 30 and audio.direction == "sendrecv"
    assert sdp.connection_for(audio) == "IP4 192.0.2.10"
    media_level = parse_sdp(
        TRUNK_OFFER.replace(b"t=0 0\r\n", b"t=0 0\r\n").replace(
            b"a=ptime:30\r\n", b"c=IN IP4 198.51.100.7\r\na=ptime:30\r\n"
        )
    )
    assert media_level.connection_for(media_level.media[0]) == "IP4 198.51.100.7"
    assert video.media == "video"


def test_round_trip() -> None:
    sdp = parse_sdp(TRUNK_OFFER)
    assert parse_sdp(sdp.serialize()) == sdp


def test_answer_picks_supported_codec_and_rejects_video() -> None:
    offer = parse_sdp(TRUNK_OFFER)
    answer, media = answer_offer(
        offer, address="127.0.0.1", port=40000, session_id=1, version=1
    )
    assert (media.codec, media.payload_type, media.telephone_event) == ("PCMA", 8, 96)
    assert (media.remote_address, media.remote_port, media.ptime) == (
        "192.0.2.10",
        20000,
        30,
    )
    assert len(answer.media) == 2
    assert answer.media[0].formats == ("8", "96") and answer.media[0].port == 40000
    assert answer.media[1].port == 0  # RFC 3264 §6: rejected stream keeps its m-line
    # the offerer's view of our answer agrees
    theirs = negotiate_answer(offer, parse_sdp(answer.serialize()))
    assert (theirs.codec, theirs.remote_port, theirs.remote_address) == (
        "PCMA",
        40000,
        "127.0.0.1",
    )


@pytest.mark.parametrize(
    ("offered", "answered"),
    [
        ("sendrecv", "sendrecv"),
        ("sendonly", "recvonly"),
        ("recvonly", "sendonly"),
        ("inactive", "inactive"),
    ],
)
def test_direction_answers(offered: str, answered: str) -> None:
    offer = parse_sdp(TRUNK_OFFER.replace(b"a=sendrecv", f"a={offered}".encode()))
    answer, media = answer_offer(
        offer, address="127.0.0.1", port=4000, session_id=1, version=1
    )
    assert media.direction == answered
    assert answer.media[0].direction == answered
    assert media.on_hold == (offered in ("sendonly", "inactive"))


def test_nothing_usable_is_488() -> None:
    only_g729 = TRUNK_OFFER.replace(b"RTP/AVP 18 8 96", b"RTP/AVP 18 96")
    with pytest.raises(NotAcceptableHere) as info:
        answer_offer(
            parse_sdp(only_g729), address="127.0.0.1", port=1, session_id=1, version=1
        )
    assert info.value.status_hint == 488
    rejected = TRUNK_OFFER.replace(b"m=audio 20000", b"m=audio 0")
    with pytest.raises(NotAcceptableHere):
        answer_offer(
            parse_sdp(rejected), address="127.0.0.1", port=1, session_id=1, version=1
        )


def test_offer_build_and_hold() -> None:
    offer = build_offer(address="127.0.0.1", port=30000, session_id=7, version=1)
    parsed = parse_sdp(offer.serialize())
    assert parsed.media[0].formats == ("0", "8", "101")
    assert parsed.media[0].ptime == 20
    hold = with_direction(parsed, "sendonly", version=2)
    assert hold.origin.version == 2 and hold.media[0].direction == "sendonly"
    answer, media = answer_offer(
        hold, address="127.0.0.2", port=5, session_id=9, version=1
    )
    assert media.direction == "recvonly" and media.on_hold
    # the peer prefers PCMU because we offered it first
    assert media.codec == "PCMU"
    mine = negotiate_answer(hold, answer)
    assert mine.direction == "sendonly"


def test_rejected_answer_is_488() -> None:
    offer = build_offer(address="127.0.0.1", port=30000, session_id=7, version=1)
    answer = parse_sdp(
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n"
    )
    with pytest.raises(NotAcceptableHere):
        negotiate_answer(offer, answer)


@pytest.mark.parametrize(
    "body",
    [
        b"garbage",
        b"v=1\r\no=- 1 1 IN IP4 h\r\n",
        b"v=0\r\ns=-\r\n",
        b"v=0\r\no=- 1 1 IN IP4 h\r\nm=audio x RTP/AVP 0\r\n",
        b"v=0\r\no=- 1 1 IN IP4 h\r\nc=IN IPX h\r\n",
    ],
)
def test_bad_sdp(body: bytes) -> None:
    with pytest.raises(SdpError) as info:
        parse_sdp(body)
    assert info.value.status_hint == 400


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"a=rtcp:53020\r\n", ("192.0.2.10", 53020)),  # RFC 3605 §2.1: the RTP address
        (b"a=rtcp:53020 IN IP4 126.16.64.4\r\n", ("126.16.64.4", 53020)),
        (b"a=rtcp:9 IN IP6 2001:db8::1\r\n", ("2001:db8::1", 9)),
        (b"a=rtcp:abc\r\n", None),  # unreadable: RTP port + 1 as if absent
        (b"a=rtcp:70000\r\n", None),
        (b"", None),
    ],
)
def test_rtcp_attribute_reaches_both_sides_of_the_negotiation(
    line: bytes, expected: tuple[str, int] | None
) -> None:
    offer = parse_sdp(TRUNK_OFFER.replace(b"a=sendrecv\r\n", b"a=sendrecv\r\n" + line))
    _, media = answer_offer(offer, address="127.0.0.1", port=40000, session_id=1, version=1)
    assert media.remote_rtcp == expected
    ours = build_offer(address="127.0.0.1", port=40000, session_id=1, version=1)
    their_answer = TRUNK_OFFER.replace(b"m=audio 20000 RTP/AVP 18 8 96", b"m=audio 20000 RTP/AVP 8 96")
    their_answer = their_answer.replace(b"a=sendrecv\r\n", b"a=sendrecv\r\n" + line)
    their_answer = their_answer.replace(b"m=video 20002 RTP/AVP 31\r\n", b"")
    theirs = negotiate_answer(ours, parse_sdp(their_answer))
    assert theirs.remote_rtcp == expected

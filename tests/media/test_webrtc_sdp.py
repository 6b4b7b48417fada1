"""SDP and ICE-candidate helpers of the WebRTC gateway (sans-IO)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipspeak.media.webrtc_sdp import (
    WebRtcSignallingError,
    media_kinds,
    parse_candidate,
    sdp_audio_codecs,
)

# As Chromium 156 reports them in RTCIceCandidate.candidate.
CHROMIUM_HOST = (
    "candidate:3520734419 1 udp 2122260223 127.0.0.1 51935 typ host generation 0 "
    "ufrag 0Aix network-id 1"
)
CHROMIUM_SRFLX = (
    "candidate:842163049 1 udp 1677729535 203.0.113.7 61234 typ srflx "
    "raddr 192.0.2.2 rport 49218 generation 0 ufrag 0Aix network-cost 999"
)


def test_sdp_audio_codecs_names_static_and_dynamic_formats() -> None:
    sdp = (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8 101\r\n"
        "a=rtpmap:111 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\n"
        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n"
    )
    assert sdp_audio_codecs(sdp) == ["OPUS", "PCMU", "PCMA", "TELEPHONE-EVENT"]
    assert media_kinds(sdp) == ["audio", "video"]
    assert sdp_audio_codecs("v=0\r\nm=video 9 RTP/AVP 96\r\n") == []
    assert media_kinds("v=0\r\n") == []


def test_parse_candidate_reads_chromium_host_and_srflx_candidates() -> None:
    host = parse_candidate(CHROMIUM_HOST)
    assert (host.ip, host.port, host.type, host.protocol) == (
        "127.0.0.1",
        51935,
        "host",
        "udp",
    )
    assert (host.component, host.priority, host.foundation) == (
        1,
        2122260223,
        "3520734419",
    )
    srflx = parse_candidate("a=" + CHROMIUM_SRFLX)
    assert (srflx.ip, srflx.port, srflx.type) == ("203.0.113.7", 61234, "srflx")
    assert (srflx.relatedAddress, srflx.relatedPort) == ("192.0.2.2", 49218)


@pytest.mark.parametrize(
    "text",
    [
        "candidate:",
        "candidate:1 1 udp 2122260223 127.0.0.1 51935 host",
        "candidate:1 1 udp 2122260223 127.0.0.1 51935 type host",
        "candidate:1 x udp 2122260223 127.0.0.1 51935 typ host",
        "candidate:1 1 udp -5 127.0.0.1 51935 typ host",
        "candidate:1 1 udp 2122260223 127.0.0.1 70000 typ host",
        "candidate:1 1 udp 2122260223 127.0.0.1 0 typ host",
        "candidate:1 1 udp 2122260223 127.0.0.1 51935 typ srflx raddr 1.2.3.4 rport x",
    ],
)
def test_parse_candidate_refuses_malformed_input_with_400(text: str) -> None:
    with pytest.raises(WebRtcSignallingError) as error:
        parse_candidate(text)
    assert error.value.status_hint == 400


@given(st.text(max_size=120))
def test_parse_candidate_raises_nothing_but_signalling_errors(text: str) -> None:
    try:
        parse_candidate(text)
    except WebRtcSignallingError as exc:
        assert exc.status_hint == 400


@given(
    st.lists(
        st.text(alphabet=st.characters(blacklist_characters="\r\n"), max_size=40),
        max_size=8,
    )
)
def test_sdp_helpers_accept_any_lines(lines: list[str]) -> None:
    sdp = "\r\n".join(lines)
    assert isinstance(sdp_audio_codecs(sdp), list)
    assert len(media_kinds(sdp)) == sum(line.startswith("m=") for line in lines)

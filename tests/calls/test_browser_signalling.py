"""The softphone's signalling messages: every valid one parses to its event, every malformed
one is refused with a code (never an exception of another kind); the directory of browsers
answers a bad frame with an ``error`` message and counts who is online."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipspeak.calls.browser import BrowserPhones
from sipspeak.calls.browser_signalling import (
    MAX_MESSAGE,
    Answer,
    Candidate,
    Decline,
    Dtmf,
    Hangup,
    Ping,
    SignallingError,
    parse_message,
)
from sipspeak.events import EventBus
from sipspeak.media.webrtc_gateway import WebRtcGateway


@pytest.mark.parametrize(("message", "event"), [
    ({"type": "answer", "ring": "r1", "sdp": "v=0\r\n"}, Answer(ring="r1", sdp="v=0\r\n")),
    ({"type": "decline", "ring": "r1"}, Decline(ring="r1")),
    ({"type": "decline"}, Decline(ring=None)),
    ({"type": "hangup"}, Hangup(ring=None)),
    ({"type": "hangup", "ring": "r2"}, Hangup(ring="r2")),
    ({"type": "candidate", "ring": "r1", "candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host",
      "sdpMid": "0"}, Candidate(ring="r1", candidate="candidate:1 1 udp 1 127.0.0.1 9 typ host",
                               sdp_mid="0")),
    ({"type": "candidate", "ring": "r1", "candidate": ""},
     Candidate(ring="r1", candidate="", sdp_mid=None)),
    ({"type": "dtmf", "digits": "12*#A"}, Dtmf(digits="12*#A")),
    ({"type": "ping"}, Ping()),
])
def test_valid_messages(message: dict[str, Any], event: object) -> None:
    assert parse_message(json.dumps(message)) == event
    assert parse_message(json.dumps(message).encode()) == event


@pytest.mark.parametrize(("text", "code"), [
    ("not json", "not_json"),
    (b"\xff\xfe", "not_json"),
    ("[1, 2]", "not_object"),
    ("[" * 30000 + "]" * 30000, "not_json"),  # nesting deeper than the parser recurses
    ("null", "not_object"),
    ('{"type": "teleport"}', "unknown_type"),
    ("{}", "unknown_type"),
    ('{"type": "answer", "ring": "r1"}', "bad_field"),
    ('{"type": "answer", "sdp": "v=0"}', "bad_field"),
    ('{"type": "answer", "ring": 5, "sdp": "v=0"}', "bad_field"),
    ('{"type": "answer", "ring": "", "sdp": "v=0"}', "bad_field"),
    ('{"type": "decline", "ring": ["r"]}', "bad_field"),
    ('{"type": "dtmf", "digits": "x"}', "bad_field"),
    ('{"type": "dtmf", "digits": ""}', "bad_field"),
    ('{"type": "dtmf"}', "bad_field"),
    ('{"type": "candidate", "ring": "r"}', "bad_field"),
    ('{"type": "answer", "ring": "r", "sdp": "' + "x" * 40000 + '"}', "bad_field"),
    ("x" * (MAX_MESSAGE + 1), "too_large"),
])
def test_malformed_messages_are_refused_with_a_code(text: str | bytes, code: str) -> None:
    with pytest.raises(SignallingError) as caught:
        parse_message(text)
    assert caught.value.code == code


@given(st.one_of(st.text(max_size=200), st.binary(max_size=200),
                 st.dictionaries(st.sampled_from(["type", "ring", "sdp", "digits", "candidate",
                                                  "sdpMid"]),
                                 st.one_of(st.none(), st.integers(), st.text(max_size=20),
                                           st.sampled_from(["answer", "decline", "hangup",
                                                            "candidate", "dtmf", "ping"])),
                                 max_size=5).map(json.dumps)))
def test_any_input_parses_or_is_refused(text: str | bytes) -> None:
    try:
        parse_message(text)
    except SignallingError:
        pass


async def test_directory_answers_bad_frames_and_tracks_who_is_online() -> None:
    bus = EventBus()
    seen = bus.subscribe("phone.")
    gateway = WebRtcGateway()
    browsers = BrowserPhones(bus=bus, gateway=gateway)
    sent: list[dict[str, Any]] = []
    first = browsers.connect(7, sent.append)
    second = browsers.connect(7, sent.append)
    assert browsers.is_online(7) and not browsers.is_online(8)
    assert browsers.of(7) == [first, second]
    browsers.receive(first, "{")
    browsers.receive(first, '{"type": "answer", "ring": "gone", "sdp": "v=0"}')
    browsers.receive(first, '{"type": "decline", "ring": "gone"}')
    browsers.receive(first, '{"type": "dtmf", "digits": "5"}')
    browsers.receive(first, '{"type": "ping"}')
    assert [(m["type"], m.get("error")) for m in sent] == [
        ("error", "not_json"), ("error", "no_such_ring"), ("error", "no_such_ring"),
        ("error", "no_call"), ("pong", None)]
    browsers.disconnect(first)
    assert browsers.is_online(7)
    browsers.disconnect(second)
    browsers.disconnect(second)  # twice is harmless
    assert not browsers.is_online(7)
    events = [seen.queue.get_nowait() for _ in range(seen.queue.qsize())]
    assert [(e.topic, e.data["user_id"], e.data["device"]) for e in events] == [
        ("phone.online", 7, "browser"), ("phone.offline", 7, "browser")]
    await browsers.aclose()
    await gateway.close()


async def test_closing_the_directory_disconnects_every_tab() -> None:
    bus = EventBus()
    gateway = WebRtcGateway()
    browsers = BrowserPhones(bus=bus, gateway=gateway)
    tabs = [browsers.connect(7, lambda _: None) for _ in range(3)]
    browsers.connect(8, lambda _: None)
    assert len(browsers.of(7)) == len(tabs)
    await browsers.aclose()
    assert browsers.of(7) == [] and browsers.of(8) == []
    assert not browsers.is_online(7) and not browsers.is_online(8)
    await gateway.close()

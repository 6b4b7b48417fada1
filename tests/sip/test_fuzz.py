"""Hypothesis fuzzing of the parser and framer: nothing but SipError ever comes out."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipspeak.sip.errors import SipError
from sipspeak.sip.events import Address
from sipspeak.sip.framing import StreamFramer
from sipspeak.sip.message import parse_message
from sipspeak.sip.sdp import parse_sdp
from sipspeak.sip.useragent import UserAgent

DATA = Path(__file__).parent / "data" / "rfc4475"
SEEDS = [p.read_bytes() for p in sorted(DATA.glob("*.dat"))]
FAST = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def parse_or_reject(data: bytes) -> None:
    try:
        message = parse_message(data)
    except SipError as exc:
        assert 400 <= exc.status_hint <= 599
        return
    # a message we accept serialises to one we accept again, with the same meaning
    assert parse_message(message.serialize()) == message


@FAST
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    parse_or_reject(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    seed = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "dup"]))
        pos = draw(st.integers(0, len(seed)))
        if op == "flip" and pos < len(seed):
            seed[pos] = draw(st.sampled_from(b' \t\r\n:;,<>"\\@%=?/0aZ\x00\xff'))
        elif op == "insert":
            seed[pos:pos] = draw(
                st.sampled_from([b"\r\n", b" ", b";", b",", b'"', b"<", b">", b"\r\n "])
            )
        elif op == "delete":
            del seed[pos : pos + draw(st.integers(1, 8))]
        else:
            seed[pos:pos] = seed[pos : pos + draw(st.integers(1, 40))]
    return bytes(seed)


@FAST
@given(mutated())
def test_mutated_torture_messages(data: bytes) -> None:
    parse_or_reject(data)


@FAST
@given(mutated())
def test_user_agent_never_raises(data: bytes) -> None:
    ua = UserAgent(local=Address("UDP", "127.0.0.1", 5060))
    ua.receive_data(data, Address("UDP", "192.0.2.1", 5060), now=0.0)
    for item in ua.messages_to_send():
        item.message.serialize()


@FAST
@given(mutated(), st.lists(st.integers(1, 50), max_size=20))
def test_framer_in_random_chunks(data: bytes, cuts: list[int]) -> None:
    framer = StreamFramer()
    position = 0
    try:
        for size in [*cuts, len(data)]:
            framer.feed(data[position : position + size])
            position += size
            while (message := framer.next_message()) is not None:
                parse_or_reject(message)
    except SipError:
        pass


@FAST
@given(st.binary(max_size=300) | st.text(max_size=300))
def test_sdp_parser(data: bytes | str) -> None:
    try:
        parse_sdp(data)
    except SipError as exc:
        assert exc.status_hint == 400


def test_truncated_prefixes_of_torture_messages() -> None:
    """No prefix of a message comes out of the framer; fed byte by byte it comes out once."""
    for seed in SEEDS:
        whole = StreamFramer()
        whole.feed(seed)
        try:
            first = whole.next_message()
        except SipError:
            continue  # no usable Content-Length: rejected as a stream message
        if first is None:
            continue  # Content-Length larger than the data (clerr): still waiting
        assert seed.startswith(first)
        bytewise = StreamFramer()
        for cut in range(len(first)):
            bytewise.feed(first[cut : cut + 1])
            got = bytewise.next_message()
            assert got is None or cut == len(first) - 1
        assert got == first
        for cut in range(len(first)):
            try:
                parse_message(first[:cut], stream=True)
            except SipError:
                continue
            raise AssertionError(f"a {cut}-byte prefix parsed as a stream message")

"""The sans-IO call state: transitions, outcomes, deadlines and the CDR columns it yields."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipspeak.calls.cdr import Tariff, completion_columns
from sipspeak.calls.legs import MediaOffer, sdp_of
from sipspeak.calls.state import TRANSITIONS, CallInput, CallPhase, CallState, Due, IllegalTransition
from sipspeak.dialer.ports import CallOutcome
from sipspeak.sip.sdp import build_offer, with_direction


def test_every_live_phase_can_end_and_ended_is_final() -> None:
    for phase in CallPhase:
        if phase is not CallPhase.ENDED:
            assert TRANSITIONS[(phase, CallInput.END)] is CallPhase.ENDED
    assert not any(p is CallPhase.ENDED for p, _ in TRANSITIONS)


def test_bridge_before_answer_is_illegal() -> None:
    state = CallState(started_ms=0)
    with pytest.raises(IllegalTransition):
        state.bridge(10)


@pytest.mark.parametrize(("status", "outcome", "code"), [
    (486, CallOutcome.BUSY, 486), (600, CallOutcome.BUSY, 600),
    (480, CallOutcome.NO_ANSWER, 480), (408, CallOutcome.NO_ANSWER, 408),
    (503, CallOutcome.CONGESTION, 503), (404, CallOutcome.FAILED, 404),
    (403, CallOutcome.FAILED, 403), (500, CallOutcome.FAILED, 500),
])
def test_final_failures_map_to_outcomes_with_their_code(
        status: int, outcome: CallOutcome, code: int) -> None:
    state = CallState(started_ms=1000)
    assert state.failed(1500, status) is outcome
    assert state.sip_code == code and state.ended_ms == 1500


def test_dial_timeout_cancels_then_the_487_is_no_answer() -> None:
    state = CallState(started_ms=0, dial_timeout_ms=30_000)
    assert state.get_timer() == 30_000
    assert state.handle_timer(29_999) == []
    assert state.handle_timer(30_000) == [Due.CANCEL_DIAL]
    assert state.get_timer() is None  # the CANCEL is sent once
    assert state.failed(30_050, 487) is CallOutcome.NO_ANSWER


def test_global_timeout_ends_even_a_bridged_call() -> None:
    state = CallState(started_ms=0, dial_timeout_ms=30_000, global_timeout_ms=40_000)
    state.progress(100)
    state.answer(2000)
    state.bridge(3000)
    assert state.get_timer() == 40_000  # the dial deadline no longer counts
    assert state.handle_timer(40_000) == [Due.GLOBAL_TIMEOUT]


def test_hang_up_outcomes() -> None:
    waiting = CallState(started_ms=0)
    waiting.answer(10)
    assert waiting.hung_up(500) is CallOutcome.ABANDONED  # left while waiting for an operator
    talking = CallState(started_ms=0)
    talking.answer(10)
    talking.bridge(20)
    assert talking.hung_up(900) is CallOutcome.ANSWERED
    assert talking.end(950, CallOutcome.LOST) is CallOutcome.ANSWERED  # the first reason wins
    vanished = CallState(started_ms=0)
    vanished.answer(10)
    vanished.bridge(20)
    assert vanished.hung_up(900, media_lost=True) is CallOutcome.LOST
    queued = CallState(started_ms=0)
    queued.answer(10)
    assert queued.released(700) is CallOutcome.ABANDONED  # the queue timeout: we hang up
    machine = CallState(started_ms=0)
    machine.answer(10)
    assert machine.released(700, machine=True) is CallOutcome.ANSWERING_MACHINE
    joined = CallState(started_ms=0)
    joined.answer(10)
    joined.bridge(20)
    assert joined.released(700, machine=True) is CallOutcome.ANSWERED
    silent = CallState(started_ms=0)
    silent.answer(10)
    assert silent.hung_up(900, media_lost=True) is CallOutcome.LOST  # no BYE: a drop


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6),
       st.integers(0, 10**6), st.integers(1, 600), st.integers(0, 1000))
def test_cdr_durations_add_up(start: int, dial: int, wait: int, talk: int,
                              increment: int, price: int) -> None:
    state = CallState(started_ms=start)
    state.answer(start + dial)
    state.bridge(start + dial + wait)
    state.hung_up(start + dial + wait + talk)
    row = completion_columns(state.times(), CallOutcome.ANSWERED, sip_code=None,
                             tariff=Tariff(price, increment), operator_offered=True,
                             recording_path="/r.wav", amd_result=None)
    assert row["duration_ms"] == row["dial_ms"] + row["billing_ms"]
    assert row["billing_ms"] == row["wait_ms"] + row["talk_ms"]
    assert (row["dial_ms"], row["wait_ms"], row["talk_ms"]) == (dial, wait, talk)
    assert row["result"] == "answered" and row["operator_status"] == "Оператор ответил"
    billed_s = -(-(wait + talk) // (increment * 1000)) * increment
    assert row["price_kopecks"] == -(-billed_s * price // 60)


def test_hold_offer_is_answered_recvonly_and_resume_restores_media() -> None:
    """RFC 3264 §8.4: a sendonly re-offer puts our side on recvonly."""
    offer = build_offer(address="10.0.0.5", port=4000, session_id=1, version=1)
    hold = with_direction(offer, "sendonly", 2)
    sdp = MediaOffer(address="127.0.0.1", port=5000)
    parsed = sdp_of("application/sdp", hold.serialize())
    assert parsed is not None
    body, media = sdp.answer(parsed)
    assert media.on_hold and b"a=recvonly" in body
    resumed, media = sdp.answer(with_direction(offer, "sendrecv", 3))
    assert not media.on_hold and b"a=sendrecv" in resumed


@pytest.mark.parametrize(("host", "registrar", "aor_user"), [
    ("sip:192.168.1.100", "sip:192.168.1.100", "117049"),
    ("sip:117049@zadarma.com", "sip:zadarma.com", "117049"),
    ("sip:117049@zadarma.com:5070", "sip:zadarma.com:5070", "117049"),
    ("pbx.example.ru:5080", "sip:pbx.example.ru:5080", "117049"),
    ("sip:other@10.0.0.1", "sip:10.0.0.1", "other"),
])
def test_trunk_host_forms(host: str, registrar: str, aor_user: str) -> None:
    """Manual §4.4: «Хост» is sip:host or sip:user@host, with or without a port."""
    from sipspeak.calls.trunks import trunk_config
    from sipspeak.storage.models import Trunk

    trunk = Trunk(id=1, name="t", username="117049", password="p", host=host,
                  inbound_project_id=None, robot=False, active=True,
                  price_per_minute_kopecks=0, billing_increment_s=60, created_at=0, updated_at=0)
    target = trunk_config(trunk).target
    assert str(target.registrar) == registrar and target.aor.user == aor_user


def test_operator_ring_forks_to_every_phone_with_auto_answer_headers() -> None:
    """One INVITE per registered phone, each asking for auto-answer (both header forms)."""
    from sipspeak.calls.phones import PhoneTarget
    from sipspeak.calls.ringing import Ring, start_ring
    from sipspeak.sip.events import Address
    from sipspeak.sip.message import SipRequest
    from sipspeak.sip.uri import SipUri
    from sipspeak.sip.useragent import UserAgent

    ua = UserAgent(local=Address("UDP", "127.0.0.1", 5060))
    ring = Ring(ring_id="r", operator_id=1, call_id="c", endpoint=None,  # type: ignore[arg-type]
                sdp=MediaOffer(address="127.0.0.1", port=4000), on_result=lambda r, e: None,
                now_ms=lambda: 0)
    phones = [PhoneTarget(uri=SipUri(user="101", host="10.0.0.7", port=5062),
                          destination=Address("UDP", "10.0.0.7", 5062)),
              PhoneTarget(uri=SipUri(user="101", host="10.0.0.8"),
                          destination=Address("UDP", "192.0.2.9", 40000))]
    start_ring(ring, ua, phones, extension="101", caller="79030001122", local_host="127.0.0.1",
               auto_answer=True, now=0.0)
    sent = [t for t in ua.messages_to_send() if isinstance(t.message, SipRequest)]
    assert [(t.destination.host, t.destination.port) for t in sent] == [
        ("10.0.0.7", 5062), ("192.0.2.9", 40000)]
    for transmit in sent:
        invite = transmit.message
        assert invite.method == "INVITE" and b"m=audio 4000" in invite.body
        assert invite.headers.get("Call-Info") == "<sip:127.0.0.1>;answer-after=0"
        assert "info=alert-autoanswer" in (invite.headers.get("Alert-Info") or "")
        assert str(invite.from_.uri).startswith("sip:79030001122@")
    assert len(ring.forks) == 2

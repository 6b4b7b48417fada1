"""«Удержать» in the operator's browser softphone (manual §5.2.4): what his desk phone's
re-INVITE with ``sendonly`` does, asked over the softphone's signalling socket.

Without a browser: ``hold`` / ``unhold`` parse (the call's id is required), and the directory
of browsers refuses one that names no call of the device or a call not joined yet, in the
user's language, holding nothing.

End to end (headless Chromium whose fake microphone plays 1 kHz, signed in; the real call
runtime and site; sipp delivering the customer's inbound call; a socket as the customer's
RTP, 600 Hz):

* «Удержать»: the customer hears the project's music on hold instead of the microphone and
  the browser hears nothing; «Снять с удержания» brings the 1 kHz back to the customer and
  the customer back to the browser.  A hold naming no call, or another live call (one
  ringing another tab of his), is answered with an error and changes nothing.  The operator
  hangs up while holding: the customer gets the BYE, no player is left running.
* In the workspace, with «Музыка на удержании» off: on hold the customer gets silence; he
  hangs up while held: the call ends answered, the widget goes idle.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import pytest
from callworld import RtpParty, dominant_frequency
from childproc import free_port
from test_softphone_browser import (
    CUSTOMER_HZ,
    MIC_HZ,
    Stack,
    browser_stats,
    chromium,  # noqa: F401  (fixture)
    finished_row,
    stack,  # noqa: F401  (fixture)
    until,
)

from sipspeak.calls.browser import BrowserLeg, BrowserPhones, HoldRefused
from sipspeak.calls.browser_signalling import Hold, SignallingError, parse_message
from sipspeak.events import EventBus
from sipspeak.i18n import Text
from sipspeak.media.g711 import decode
from sipspeak.media.webrtc_gateway import WebRtcGateway

# -- the signalling, without a browser ---------------------------------------------------------


def test_hold_and_unhold_name_the_call() -> None:
    assert parse_message('{"type": "hold", "call": "c1-ab"}') == Hold(call="c1-ab", on_hold=True)
    assert parse_message(b'{"type": "unhold", "call": "c1-ab"}') == Hold(call="c1-ab",
                                                                         on_hold=False)
    for bad in ('{"type": "hold"}', '{"type": "hold", "call": ""}',
                '{"type": "unhold", "call": 7}', '{"type": "hold", "call": "' + "c" * 200 + '"}'):
        with pytest.raises(SignallingError) as caught:
            parse_message(bad)
        assert caught.value.code == "bad_field"


@pytest.mark.asyncio
async def test_the_directory_holds_only_the_call_of_the_device() -> None:
    gateway = WebRtcGateway()
    browsers = BrowserPhones(bus=EventBus(), gateway=gateway)
    sent: list[dict[str, Any]] = []
    phone = browsers.connect(7, sent.append)
    english = browsers.connect(7, sent.append, language="en")
    asked: list[bool] = []

    def request(leg: BrowserLeg, on_hold: bool) -> None:
        if on_hold and asked.count(True) == 1:
            raise HoldRefused("not_talking", Text("softphone.error.not_talking"))
        asked.append(on_hold)
        leg.on_hold = on_hold

    try:
        # No call on the device: refused in the user's language, nothing asked.
        browsers.receive(phone, json.dumps({"type": "hold", "call": "c1-x"}))
        browsers.receive(english, json.dumps({"type": "unhold", "call": "c1-x"}))
        assert sent == [
            {"type": "error", "error": "no_such_call",
             "message": "На этом устройстве нет разговора c1-x"},
            {"type": "error", "error": "no_such_call", "message": "No call c1-x on this device"}]
        sent.clear()
        leg = BrowserLeg(phone=phone, ring_id="r1", rtc=gateway.open_leg(call_id="c1-mine"),
                         spawn=lambda coro, what: coro.close(), call="c1-mine")
        phone.leg = leg
        # Answered but not joined to the call yet: call control has not hooked it.
        browsers.receive(phone, json.dumps({"type": "hold", "call": "c1-mine"}))
        leg.on_hold_request = request
        browsers.receive(phone, json.dumps({"type": "hold", "call": "c2-other"}))
        assert [m["error"] for m in sent] == ["not_talking", "no_such_call"]
        assert asked == [] and not leg.on_hold
        sent.clear()
        browsers.receive(phone, json.dumps({"type": "hold", "call": "c1-mine"}))
        browsers.receive(phone, json.dumps({"type": "hold", "call": "c1-mine"}))  # refused
        browsers.receive(phone, json.dumps({"type": "unhold", "call": "c1-mine"}))
        assert sent == [
            {"type": "held", "call": "c1-mine", "on_hold": True},
            {"type": "error", "error": "not_talking",
             "message": "Удержание возможно только во время разговора"},
            {"type": "held", "call": "c1-mine", "on_hold": False}]
        assert asked == [True, False]
    finally:
        await leg.rtc.close()
        await browsers.aclose()
        await gateway.close()


# -- end to end ---------------------------------------------------------------------------------

RECORD = ("const w = document.querySelector('[data-softphone]').sipSoftphone;"
          "window.spGot = []; const receive = w.receive.bind(w);"
          "w.receive = m => { window.spGot.push(m); receive(m); };")
"""Keep every message the widget receives (``window.spGot``)."""


async def widget_send(site: Stack, message: dict[str, Any]) -> None:
    await site.browser.execute(
        "document.querySelector('[data-softphone]').sipSoftphone.send(arguments[0]);", message)


async def widget_got(site: Stack, kind: str, count: int = 1) -> list[dict[str, Any]]:
    """The messages of ``kind`` the widget received, once there are ``count`` of them."""
    got: list[dict[str, Any]] = []

    async def arrived() -> bool:
        got[:] = [m for m in await site.browser.execute("return window.spGot;")
                  if m["type"] == kind]
        return len(got) >= count
    await until(arrived, f"{count} {kind!r} message(s) in the widget", 10)
    return got


async def widget_text(site: Stack, selector: str) -> str:
    return str(await site.browser.execute(
        f"const e = document.querySelector('{selector}'); return e ? e.textContent : '';"))


async def hold_state(site: Stack) -> str | None:
    return await site.browser.execute(  # type: ignore[no-any-return]
        "return document.querySelector('.sip-softphone').getAttribute('data-hold');")


async def wait_hold(site: Stack, state: str) -> None:
    async def reached() -> bool:
        return await hold_state(site) == state
    await until(reached, f"the widget's hold {state!r}", 10)


async def heard_next(party: RtpParty, packets: int, *, skip: int = 25) -> np.ndarray:
    """The audio of the next ``packets`` packets the party receives, after ``skip`` more (the
    ones on their way at the switch)."""
    start = len(party.received) + skip

    async def enough() -> bool:
        return len(party.received) >= start + packets
    await until(enough, f"{packets} more packets at the customer", 15)
    frames = [decode("PCMA" if pt == 8 else "PCMU", payload)
              for pt, payload in party.received[start:start + packets] if pt in (0, 8)]
    return np.concatenate(frames)


def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))


def player_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "player" and not t.done()]


@pytest.mark.timeout(120)
@pytest.mark.asyncio(loop_scope="module")
async def test_hold_plays_music_to_the_customer_and_unhold_brings_the_operator_back(
        stack: Stack) -> None:  # noqa: F811  (the fixture imported above)
    world, browser = stack.world, stack.browser
    _, operator_id = await stack.operator(auto_answer=True)
    await stack.sign_in()
    await stack.open_softphone()
    await browser.execute(RECORD)
    # Another tab of his: a bare socket that lets the calls ring there and never answers
    # (the first call rings it too, until this widget answers).
    assert await browser.execute_async(
        "const done = arguments[0]; window.bareRings = [];"
        "const ws = new WebSocket(`ws://${location.host}/api/v1/softphone`);"
        "ws.onmessage = e => { const m = JSON.parse(e.data);"
        "  if (m.type === 'ring') window.bareRings.push(m.call);"
        "  if (m.type === 'hello') done(true); };"
        "window.bareSocket = ws;")

    # No call yet: a hold is refused with a clear error, in Russian.
    await widget_send(stack, {"type": "hold", "call": "c1-nothing"})
    await widget_send(stack, {"type": "hold"})
    errors = await widget_got(stack, "error", 2)
    assert [(m["error"], m["message"]) for m in errors[:1]] == [
        ("no_such_call", "На этом устройстве нет разговора c1-nothing")]
    assert errors[1]["error"] == "bad_field"
    assert "Ошибка софтфона: " in await widget_text(stack, ".sip-softphone .sp-note")
    assert await stack.state() == "ready"

    customer = stack.party(CUSTOMER_HZ)
    provider = await stack.customer_calls(stack.provider_port, "inbound_unattended.xml",
                                          rtp_port=customer.port)
    call_id = (await world.log.wait("call.inbound", timeout=20)).data["call_id"]
    await world.log.wait("call.bridged", call_id=call_id, timeout=15)  # answered by itself
    await stack.wait_state("in_call")
    assert await hold_state(stack) == "off"
    assert await widget_text(stack, ".sip-softphone .sp-hold") == "Удержать"

    async def customer_hears_the_operator() -> bool:
        audio = customer.audio()
        return len(audio) > 8000 and abs(dominant_frequency(audio[-4000:]) - MIC_HZ) < 30
    await until(customer_hears_the_operator, "the browser's 1 kHz at the customer", 15)

    # A second caller rings the other tab (this one is busy and declines): a live call that
    # is not his conversation.  Holding it by its id is refused and changes nothing.
    other_party = stack.party(CUSTOMER_HZ)
    other_provider = await stack.customer_calls(free_port(), "inbound_unattended.xml",
                                                rtp_port=other_party.port)

    others: list[str] = []

    async def rings_the_other_tab() -> bool:
        others[:] = [c for c in await browser.execute("return window.bareRings;")
                     if c != call_id]
        return bool(others)
    await until(rings_the_other_tab, "the second call ringing the other tab")
    other_id = others[0]
    assert world.runtime.calls.get(other_id) is not None
    await widget_send(stack, {"type": "hold", "call": other_id})
    await widget_send(stack, {"type": "unhold", "call": other_id})
    errors = await widget_got(stack, "error", 4)
    assert [m["error"] for m in errors[2:]] == ["no_such_call", "no_such_call"]
    assert world.log.all("call.hold") == []
    live = world.runtime.calls.get(call_id)
    assert live is not None and live.operator is not None and not live.operator.on_hold
    audio = await heard_next(customer, 50)
    assert abs(dominant_frequency(audio) - MIC_HZ) < 30  # still the operator
    await browser.execute("window.bareSocket.close();")  # the second caller is let go
    code, out = await other_provider.wait(15)
    assert code == 0, out[-2000:]
    await finished_row(world, other_id)  # its wait music stopped with it

    # «Удержать»: the customer hears the music on hold, not the microphone.
    await browser.click(await browser.find(".sip-softphone .sp-hold"))
    held = await world.log.wait("call.hold", call_id=call_id, on_hold=True, timeout=10)
    assert (held.data["side"], held.data["operator_id"]) == ("operator", operator_id)
    await wait_hold(stack, "on")
    assert await widget_text(stack, ".sip-softphone .sp-status") == "На удержании"
    assert await widget_text(stack, ".sip-softphone .sp-hold") == "Снять с удержания"
    assert live.operator.on_hold and live.bridge is not None
    assert live.bridge.leg("operator") is live.player
    music = await heard_next(customer, 150)
    assert rms(music) > 300 and abs(dominant_frequency(music) - MIC_HZ) > 30
    assert len(player_tasks()) == 1
    # ... and the browser hears nothing of the customer meanwhile.
    before = (await browser_stats(browser))["received"]
    await heard_next(customer, 100, skip=0)
    assert (await browser_stats(browser))["received"] - before < 10

    # «Снять с удержания»: the microphone to the customer, the customer to the browser.
    await browser.click(await browser.find(".sip-softphone .sp-hold"))
    await world.log.wait("call.hold", call_id=call_id, on_hold=False, timeout=10)
    await wait_hold(stack, "off")
    assert await widget_text(stack, ".sip-softphone .sp-status") == "Разговор"
    assert live.bridge.leg("operator") is live.operator.media_leg
    audio = await heard_next(customer, 100)
    assert abs(dominant_frequency(audio) - MIC_HZ) < 30

    async def browser_hears_again() -> bool:
        return (await browser_stats(browser))["received"] - before > 60
    await until(browser_hears_again, "the customer's RTP in the browser again", 15)
    assert player_tasks() == []

    # Held again, the operator hangs up: the customer gets the BYE, nothing keeps playing.
    await browser.click(await browser.find(".sip-softphone .sp-hold"))
    await world.log.wait("call.hold", call_id=call_id, on_hold=True, timeout=10)
    await wait_hold(stack, "on")
    await browser.click(await browser.find(".sip-softphone .sp-hangup"))
    code, out = await provider.wait(15)
    assert code == 0, out[-2000:]
    ended = await world.log.wait("call.ended", call_id=call_id, timeout=10)
    assert ended.data["outcome"] == "answered"
    await stack.wait_state("ready")
    assert await hold_state(stack) == "off"
    row = await finished_row(world, call_id)
    assert row.operator_id == operator_id and row.result == "answered"
    assert player_tasks() == []
    assert [e.data["on_hold"] for e in world.log.all("call.hold")] == [True, False, True]


@pytest.mark.timeout(120)
@pytest.mark.asyncio(loop_scope="module")
async def test_held_without_music_the_customer_hears_silence_and_may_hang_up(
        stack: Stack) -> None:  # noqa: F811  (the fixture imported above)
    world, browser = stack.world, stack.browser
    project_id, operator_id = await stack.operator(auto_answer=True)
    await world.db.projects.update(project_id, music_on_hold=False)  # «Музыка на удержании»
    await stack.sign_in()
    await browser.navigate(f"{stack.base}/workspace")
    await stack.wait_state("ready")  # the softphone mounted in the workspace
    customer = stack.party(CUSTOMER_HZ)
    provider = await stack.customer_calls(stack.provider_port, "inbound.xml",
                                          rtp_port=customer.port, pause_ms=12000)
    call_id = (await world.log.wait("call.inbound", timeout=20)).data["call_id"]
    await world.log.wait("call.bridged", call_id=call_id, timeout=15)
    await stack.wait_state("in_call")
    await browser.click(await browser.wait_for(".sip-softphone .sp-hold"))
    await world.log.wait("call.hold", call_id=call_id, on_hold=True, side="operator",
                         timeout=10)
    await wait_hold(stack, "on")
    # The stream goes on (silence, not a gap), and it is neither the microphone nor music.
    silence = await heard_next(customer, 100)
    assert rms(silence) < 50

    code, out = await provider.wait(30)  # he hangs up while held
    assert code == 0, out[-2000:]
    ended = await world.log.wait("call.ended", call_id=call_id, timeout=10)
    assert ended.data["outcome"] == "answered"
    await stack.wait_state("ready")
    assert await hold_state(stack) == "off"
    assert "Звонок завершён" in await widget_text(stack, ".sip-softphone")
    row = await finished_row(world, call_id)
    assert row.operator_id == operator_id and row.result == "answered" and row.recording_path
    assert player_tasks() == []

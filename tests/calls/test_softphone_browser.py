"""The operator's browser softphone end to end: headless Chromium (fake microphone: a 1 kHz
tone) signed in on /softphone, the real call runtime and web site, sipp as the trunk's
provider delivering the customer's inbound call, a socket as the customer's RTP (600 Hz).

* The call rings the browser, the operator clicks «Ответить»: audio flows both ways (the
  customer hears 1 kHz, the browser's getStats counts inbound RTP), a key on the widget's
  keypad reaches the customer as an RFC 4733 event, the customer hangs up, the widget goes
  idle and the CDR names the operator.
* The browser leaves mid-call (the page unloads): the customer's leg ends with our BYE.
* His SIP phone and his browser ring together; the browser answers, the phone is CANCELled;
  the operator hangs up in the widget and the customer gets the BYE.
* The dialer's ACD path: an outbound call answered by the customer is offered to the
  operator (ring_operator), his browser answers, the dialer bridges it.
* Click-to-call for an operator who has only a browser: it answers by itself, then the
  customer is dialled through his trunk and hears him.
* The browser's media closes mid-call while its socket stays: the call ends and the widget
  goes idle; once signed out the widget stops reconnecting.
* A malformed signalling message is answered with an error; a browser socket that goes away
  while it rings declines the call at once.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from callworld import (
    OPERATOR_EXTENSION,
    OPERATOR_PASSWORD,
    SCENARIOS,
    RtpParty,
    World,
    baresip_phone,
    dominant_frequency,
    free_port,
    free_port_range,
    start_provider,
)
from childproc import Peer
from test_operator_ringing import Dialer

from sipspeak.app import Services
from sipspeak.calls.runtime import CallRuntime
from sipspeak.config import load_config
from sipspeak.events import EventBus
from sipspeak.media.webrtc import WebRtcSettings
from sipspeak.media.webrtc_gateway import WebRtcGateway
from sipspeak.security import hash_password
from sipspeak.storage import Database
from sipspeak.web import softphone
from sipspeak.web.app import create_app

sys.path.insert(0, str(Path(__file__).parent.parent / "media"))
from chromium_driver import ChromiumDriver
from sound import write_tone

# One Chromium for the module (starting it is the slow part); each test has its own site.
pytestmark = [pytest.mark.timeout(120), pytest.mark.asyncio(loop_scope="module")]

EMAIL = "oper@softphone.test"
PASSWORD = "softphone-pass-1"
MIC_HZ = 1000.0
CUSTOMER_HZ = 600.0
_HASH: list[str] = []


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chromium(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ChromiumDriver]:
    tone = write_tone(tmp_path_factory.mktemp("softphone") / "mic.wav", MIC_HZ)
    async with ChromiumDriver.launch(fake_audio=tone) as driver:
        yield driver


@dataclass
class Stack:
    world: World
    base: str
    browser: ChromiumDriver
    tmp: Path
    peers: list[Peer] = field(default_factory=list)
    parties: list[RtpParty] = field(default_factory=list)
    provider_port: int = 0

    async def spawn(self, argv: Sequence[str]) -> Peer:
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=self.tmp, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        peer = Peer(proc)
        self.peers.append(peer)
        return peer

    def party(self, freq: float) -> RtpParty:
        party = RtpParty(freq)
        party.start()
        self.parties.append(party)
        return party

    async def customer_calls(self, provider_port: int, scenario: str, *, rtp_port: int,
                             pause_ms: int = 1000) -> Peer:
        """sipp as the provider: an inbound call to the trunk's account."""
        return await self.spawn([
            "sipp", f"127.0.0.1:{self.world.sip_port}", "-sf", str(SCENARIOS / scenario),
            "-i", "127.0.0.1", "-p", str(provider_port), "-mp", str(free_port()),
            "-s", "117049", "-m", "1", "-d", str(pause_ms), "-nostdin", "-timeout", "40s",
            "-timeout_error", "-key", "rtpport", str(rtp_port)])

    async def operator(self, *, auto_answer: bool) -> tuple[int, int]:
        """A trunk with an inbound project (no ACD: its operators are rung all at once) and
        the operator (extension 101, a web password) in its group: (project, operator)."""
        world = self.world
        provider_port = free_port()
        trunk_id, project_id = await world.inbound_project(provider_port)
        await world.db.projects.update(project_id, operator_auto_answer=auto_answer)
        user_id = await self.user(trunk_id, OPERATOR_EXTENSION)
        group = await world.db.groups.create("Смена")
        await world.db.groups.add_members(group, [user_id])
        await world.db.projects.set_groups(project_id, [group])
        self.provider_port = provider_port
        return project_id, user_id

    async def user(self, trunk_id: int | None, extension: str | None) -> int:
        if not _HASH:
            _HASH.append(hash_password(PASSWORD))
        return await self.world.db.users.create(
            role="operator", full_name="Оператор", email=EMAIL, password_hash=_HASH[0],
            extension=extension, sip_password=OPERATOR_PASSWORD if extension else None,
            trunk_id=trunk_id)

    async def sign_in(self) -> None:
        browser = self.browser
        await browser.navigate(f"{self.base}/login")
        await browser.type_text(await browser.wait_for('input[name="email"]'), EMAIL)
        await browser.type_text(await browser.find('input[name="password"]'), PASSWORD)
        await browser.click(await browser.find('form button[type="submit"]'))
        await until(lambda: self._signed_in(), "the sign-in")

    async def _signed_in(self) -> bool:
        return "/login" not in await self.browser.current_url()

    async def open_softphone(self) -> None:
        await self.browser.navigate(f"{self.base}/softphone")
        await self.wait_state("ready")

    async def state(self) -> str | None:
        return await self.browser.execute(  # type: ignore[no-any-return]
            "const w = document.querySelector('.sip-softphone');"
            "return w ? w.getAttribute('data-state') : null;")

    async def wait_state(self, state: str, timeout: float = 20.0) -> None:
        async def reached() -> bool:
            return await self.state() == state
        await until(reached, f"the widget in state {state!r}", timeout)


async def until(check: Any, what: str, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


@pytest_asyncio.fixture(loop_scope="module")
async def stack(tmp_path: Path, chromium: ChromiumDriver) -> AsyncIterator[Stack]:
    db = await Database.open(tmp_path / "calls.db")
    bus = EventBus()
    first = free_port_range(400)
    config = load_config(environ={}).with_overrides({
        ("sip", "listen"): ["udp:127.0.0.1:0"],
        ("rtp", "port_min"): first, ("rtp", "port_max"): first + 400,
        ("rtp", "inactivity_timeout"): 2,
        ("storage", "data_dir"): str(tmp_path / "data"),
    })
    gateway = WebRtcGateway(settings=WebRtcSettings(host_addresses=("127.0.0.1",)))

    async def start() -> CallRuntime:
        return await CallRuntime.start(config, db, bus, recordings_dir=tmp_path / "recordings",
                                       trunk_reconcile_interval=0.5, trunk_stop_timeout=1.0,
                                       gateway=gateway)

    world = World(db, bus, await start(), tmp_path, start)
    services = Services(config=config, db=db, bus=bus, call_runtime=world.runtime)
    server = TestServer(create_app(services), host="127.0.0.1", port=0)
    await server.start_server()
    s = Stack(world=world, base=str(server.make_url("")).rstrip("/"), browser=chromium,
              tmp=tmp_path)
    try:
        yield s
    finally:
        await chromium.navigate("about:blank")  # the page's socket and call go with it
        for peer in s.peers:
            peer.kill()
            await asyncio.gather(asyncio.wait_for(peer.proc.communicate(), 5),
                                 return_exceptions=True)
        for party in s.parties:
            await party.close()
        await server.close()
        await world.runtime.aclose()
        await gateway.close()
        await db.close()


async def browser_stats(browser: ChromiumDriver) -> dict[str, int]:
    """Packets the widget's peer connection received and sent (webrtc-stats §8)."""
    result = await browser.execute_async(
        "const done = arguments[0];"
        "document.querySelector('[data-softphone]').sipSoftphone.stats().then(stats => {"
        "  const out = {received: 0, sent: 0};"
        "  for (const s of stats) {"
        "    if (s.type === 'inbound-rtp' && s.kind === 'audio') out.received += s.packetsReceived;"
        "    if (s.type === 'outbound-rtp' && s.kind === 'audio') out.sent += s.packetsSent;"
        "  }"
        "  done(out);"
        "}, e => done({error: String(e)}));")
    assert "error" not in result, result
    return dict(result)


async def finished_row(world: World, call_id: str) -> Any:
    calls = world.runtime.calls
    for _ in range(100):
        if call_id in calls.finished:
            return await world.db.calls.get(calls.finished[call_id])
        await asyncio.sleep(0.05)
    raise AssertionError(f"call {call_id} has no completed CDR")


async def test_inbound_call_answered_in_the_browser_talks_both_ways(stack: Stack) -> None:
    world = stack.world
    _, operator_id = await stack.operator(auto_answer=False)
    await stack.sign_in()
    await stack.open_softphone()
    online = await world.log.wait("phone.online", user_id=operator_id, device="browser")
    assert online.data["extension"] is None
    assert world.runtime.calls.operator_online(operator_id, None, 0.0)

    customer = stack.party(CUSTOMER_HZ)
    provider = await stack.customer_calls(stack.provider_port, "inbound.xml",
                                          rtp_port=customer.port, pause_ms=9000)
    inbound = await world.log.wait("call.inbound", timeout=20)
    call_id = inbound.data["call_id"]
    await stack.wait_state("ringing")
    browser = stack.browser
    widget = await browser.text(await browser.find(".sip-softphone"))
    assert "79031234567" in widget and "Тест" in widget and "Входящий звонок" in widget
    ringtone = "return document.querySelector('.sip-softphone').getAttribute('data-ringtone');"
    assert await browser.execute(ringtone) == "on"  # he hears it ring
    await browser.click(await browser.find(".sip-softphone .sp-answer"))
    bridged = await world.log.wait("call.bridged", call_id=call_id, timeout=15)
    assert bridged.data["operator_id"] == operator_id
    await stack.wait_state("in_call")
    assert await browser.execute(ringtone) == "off"  # and no more once he answered

    # The customer hears the browser's microphone, the browser receives the customer.
    async def customer_hears_the_operator() -> bool:
        audio = customer.audio()
        return len(audio) > 8000 and abs(dominant_frequency(audio[-4000:]) - MIC_HZ) < 30
    await until(customer_hears_the_operator, "the browser's 1 kHz at the customer", 15)

    async def browser_receives() -> bool:
        stats = await browser_stats(browser)
        return stats["received"] > 50 and stats["sent"] > 50
    await until(browser_receives, "inbound RTP in the browser's stats", 15)

    # A key pressed on the widget's keypad reaches the customer as RFC 4733 events.
    await browser.click(await browser.find(".sip-softphone .sp-keypad button:nth-child(5)"))
    dtmf = await world.log.wait("call.dtmf", call_id=call_id, side="operator", timeout=5)
    assert dtmf.data["digit"] == "5"

    async def customer_gets_the_event() -> bool:
        return any(pt == 101 and payload[0] == 5 for pt, payload in customer.received)
    await until(customer_gets_the_event, "the telephone-event at the customer", 5)

    code, out = await provider.wait(30)  # the customer hung up (BYE answered 200)
    assert code == 0, out[-2000:]
    ended = await world.log.wait("call.ended", call_id=call_id, timeout=10)
    assert ended.data["outcome"] == "answered"
    await stack.wait_state("ready")
    assert "Звонок завершён" in await browser.text(await browser.find(".sip-softphone"))
    row = await finished_row(world, call_id)
    assert row.operator_id == operator_id and row.result == "answered" and row.talk_ms > 2000
    assert row.recording_path


async def test_browser_leaving_mid_call_ends_the_customer_leg_with_bye(stack: Stack) -> None:
    world = stack.world
    _, operator_id = await stack.operator(auto_answer=True)
    await stack.sign_in()
    await stack.open_softphone()
    customer = stack.party(CUSTOMER_HZ)
    provider = await stack.customer_calls(stack.provider_port, "inbound_unattended.xml",
                                          rtp_port=customer.port)
    inbound = await world.log.wait("call.inbound", timeout=20)
    call_id = inbound.data["call_id"]
    await world.log.wait("call.bridged", call_id=call_id, timeout=15)  # answered by itself
    await stack.wait_state("in_call")
    await stack.browser.navigate("about:blank")  # the tab goes away: no hang-up message
    code, out = await provider.wait(15)  # our BYE came and was answered
    assert code == 0, out[-2000:]
    ended = await world.log.wait("call.ended", call_id=call_id, timeout=10)
    assert ended.data["outcome"] == "answered"
    row = await finished_row(world, call_id)
    assert row.operator_id == operator_id and row.result == "answered"
    await world.log.wait("phone.offline", user_id=operator_id, device="browser")
    assert not world.runtime.calls.operator_online(operator_id, None, 0.0)


async def test_browser_media_closing_mid_call_ends_the_call(stack: Stack) -> None:
    # The page closes its peer connection (as when ICE fails) but keeps the socket: the
    # server ends the call like a BYE and tells the widget, which goes idle.
    world = stack.world
    _, operator_id = await stack.operator(auto_answer=True)
    await stack.sign_in()
    await stack.open_softphone()
    customer = stack.party(CUSTOMER_HZ)
    provider = await stack.customer_calls(stack.provider_port, "inbound_unattended.xml",
                                          rtp_port=customer.port)
    call_id = (await world.log.wait("call.inbound", timeout=20)).data["call_id"]
    await stack.wait_state("in_call")
    await stack.browser.execute(
        "document.querySelector('[data-softphone]').sipSoftphone.pc.close();")
    code, out = await provider.wait(15)
    assert code == 0, out[-2000:]
    ended = await world.log.wait("call.ended", call_id=call_id, timeout=10)
    assert ended.data["outcome"] == "answered"
    await stack.wait_state("ready")
    assert (await finished_row(world, call_id)).operator_id == operator_id
    assert world.runtime.calls.operator_online(operator_id, None, 0.0)  # still connected


async def test_widget_stops_reconnecting_once_signed_out(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(softphone, "RECHECK_S", 0.5)
    await stack.operator(auto_answer=True)
    await stack.sign_in()
    await stack.open_softphone()
    status = await stack.browser.execute_async(
        "const done = arguments[0];"
        "const token = document.querySelector('meta[name=csrf-token]').content;"
        "fetch('/logout', {method: 'POST', headers: {'X-CSRF-Token': token},"
        "  redirect: 'manual'}).then(r => done(r.status), e => done(String(e)));")
    assert status in (0, 302, 303)  # a manual redirect reads as status 0
    await stack.wait_state("signed_out", timeout=15)
    assert "войдите снова" in await stack.browser.text(
        await stack.browser.find(".sip-softphone"))
    assert not stack.world.runtime.browsers.is_online(
        (await stack.world.db.users.by_email(EMAIL)).id)


async def test_phone_and_browser_ring_together_the_phone_stops_when_the_browser_answers(
        stack: Stack) -> None:
    world = stack.world
    _, operator_id = await stack.operator(auto_answer=False)
    phone_dir = baresip_phone(stack.tmp / "phone", registrar_port=world.sip_port,
                              auto_answer=False)
    phone = await stack.spawn(["stdbuf", "-oL", "baresip", "-s", "-f", str(phone_dir),
                               "-t", "60"])
    await world.log.wait("phone.online", timeout=20, extension=OPERATOR_EXTENSION)
    await stack.sign_in()
    await stack.open_softphone()
    customer = stack.party(CUSTOMER_HZ)
    provider = await stack.customer_calls(stack.provider_port, "inbound_unattended.xml",
                                          rtp_port=customer.port)
    inbound = await world.log.wait("call.inbound", timeout=20)
    call_id = inbound.data["call_id"]
    await phone.read_until("INVITE sip:", 15)  # the phone rings ...
    await stack.wait_state("ringing")  # ... and so does the browser
    await stack.browser.click(await stack.browser.find(".sip-softphone .sp-answer"))
    await world.log.wait("call.bridged", call_id=call_id, timeout=15)
    trace = await phone.read_until("487 Request Terminated", 10)  # CANCELled
    assert "CANCEL sip:" in trace
    await stack.wait_state("in_call")
    # The phones' RTP endpoint, unused now, hears nothing: that must not end the call.
    await asyncio.sleep(3)
    assert not world.log.all("call.ended")
    # The operator hangs up in the widget: the customer gets our BYE.
    await stack.browser.click(await stack.browser.find(".sip-softphone .sp-hangup"))
    code, out = await provider.wait(15)
    assert code == 0, out[-2000:]
    ended = await world.log.wait("call.ended", call_id=call_id, timeout=10)
    assert ended.data["outcome"] == "answered"
    assert (await finished_row(world, call_id)).operator_id == operator_id
    await stack.wait_state("ready")


async def test_dialer_offers_an_answered_outbound_call_to_the_browser(stack: Stack) -> None:
    world = stack.world
    customer = stack.party(CUSTOMER_HZ)
    _, port = await start_provider(stack.spawn, "provider.xml", rtp_port=customer.port)
    trunk_id = await world.add_trunk(port)
    await world.log.wait("trunk.state", trunk_id=trunk_id, state="registered")
    project_id = await world.add_project(trunk_id)
    operator_id = await stack.user(trunk_id, extension=None)
    await stack.sign_in()
    await stack.open_softphone()
    dialer = Dialer(world, operator_id)  # rings him on CallAnswered, bridges his answer
    call_id = await dialer.dial(world, project_id, trunk_id)
    await stack.wait_state("ringing")
    widget = await stack.browser.text(await stack.browser.find(".sip-softphone"))
    assert "79030001122" in widget and "Тест" in widget
    await stack.browser.click(await stack.browser.find(".sip-softphone .sp-answer"))
    bridged = await world.log.wait("call.bridged", call_id=call_id, timeout=15)
    assert bridged.data["operator_id"] == operator_id
    await stack.wait_state("in_call")
    # The ring names the call and its contact: a page can show the contact's card.
    ring = await stack.browser.execute(
        "const r = document.querySelector('[data-softphone]').sipSoftphone.ring;"
        "return {call: r.call, contact: r.contact, project: r.project};")
    contact = (await world.db.contacts.list(project_id=project_id))[0].id
    assert ring == {"call": call_id, "contact": contact, "project": "Тест"}

    async def customer_hears_the_operator() -> bool:
        audio = customer.audio()
        return len(audio) > 8000 and abs(dominant_frequency(audio[-4000:]) - MIC_HZ) < 30
    await until(customer_hears_the_operator, "the browser's 1 kHz at the customer", 15)
    world.runtime.calls.hang_up(call_id)
    ended = await world.log.wait("call.ended", call_id=call_id)
    assert ended.data["outcome"] == "answered"
    await stack.wait_state("ready")
    row = await finished_row(world, call_id)
    assert row.kind == "auto" and row.operator_id == operator_id and row.result == "answered"


async def test_click_to_call_of_an_operator_with_only_a_browser(stack: Stack) -> None:
    world = stack.world
    customer = stack.party(CUSTOMER_HZ)
    _, port = await start_provider(stack.spawn, "provider_early.xml", rtp_port=customer.port)
    trunk_id = await world.add_trunk(port, host=f"127.0.0.1:{port}")
    await world.log.wait("trunk.state", trunk_id=trunk_id, state="registered")
    operator_id = await stack.user(trunk_id, extension=None)
    await stack.sign_in()
    await stack.open_softphone()
    call = await world.runtime.calls.click_to_call(operator_id=operator_id, phone="79030001122")
    # The browser rings first and answers by itself; then the customer is dialled.
    await world.log.wait("call.ringing", call_id=call.id, timeout=20)
    await stack.wait_state("in_call")
    await world.log.wait("call.bridged", call_id=call.id, timeout=20)

    async def customer_hears_the_operator() -> bool:
        audio = customer.audio()
        return len(audio) > 8000 and abs(dominant_frequency(audio[-4000:]) - MIC_HZ) < 30
    await until(customer_hears_the_operator, "the browser's 1 kHz at the customer", 15)
    world.runtime.calls.hang_up(call.id)
    await world.log.wait("call.ended", call_id=call.id)
    await stack.wait_state("ready")
    row = await finished_row(world, call.id)
    assert row.kind == "click" and row.operator_id == operator_id and row.result == "answered"


async def test_bad_messages_get_errors_and_a_vanished_browser_declines_at_once(
        stack: Stack) -> None:
    world = stack.world
    await stack.operator(auto_answer=False)
    await stack.sign_in()
    # A page without the widget: a bare socket is the operator's only device.
    await stack.browser.navigate(f"{stack.base}/profile/devices")
    replies = await stack.browser.execute_async(
        "const done = arguments[0];"
        "const ws = new WebSocket(`ws://${location.host}/api/v1/softphone`);"
        "const got = [];"
        "ws.onmessage = e => {"
        "  const m = JSON.parse(e.data); got.push(m);"
        "  if (m.type === 'hello') {"
        "    ws.send('not json'); ws.send(JSON.stringify({type: 'answer', ring: 'x'}));"
        "    ws.send(JSON.stringify([1])); ws.send(JSON.stringify({type: 'dtmf', digits: 'x'}));"
        "    ws.send(JSON.stringify({type: 'answer', ring: 'nope', sdp: 'v=0'}));"
        "    ws.send(JSON.stringify({type: 'ping'}));"
        "  }"
        "  if (m.type === 'pong') { window.bareSocket = ws; done(got); }"
        "};"
        "ws.onerror = () => done([{type: 'socket error'}]);")
    assert replies[0] == {"type": "hello", "available": True}
    assert [(m["type"], m.get("error")) for m in replies[1:]] == [
        ("error", "not_json"), ("error", "bad_field"), ("error", "not_object"),
        ("error", "bad_field"), ("error", "no_such_ring"), ("pong", None)]

    # The call rings the bare socket, which closes without a word: declined at once, and
    # with nobody else to take it the caller is let go long before the ring timeout.
    await stack.browser.execute(
        "window.bareSocket.onmessage = e => {"
        "  if (JSON.parse(e.data).type === 'ring') window.bareSocket.close(); };")
    customer = stack.party(CUSTOMER_HZ)
    provider = await stack.customer_calls(stack.provider_port, "inbound_unattended.xml",
                                          rtp_port=customer.port)
    inbound = await world.log.wait("call.inbound", timeout=20)
    started = asyncio.get_running_loop().time()
    ended = await world.log.wait("call.ended", call_id=inbound.data["call_id"], timeout=10)
    assert ended.data["outcome"] == "abandoned"
    assert asyncio.get_running_loop().time() - started < 5
    code, out = await provider.wait(15)
    assert code == 0, out[-2000:]


async def test_the_workspace_shows_the_caller_and_his_card_and_answers_in_the_widget(
        stack: Stack) -> None:
    world = stack.world
    project_id, operator_id = await stack.operator(auto_answer=False)
    # «Показывать номера» off: the operator sees the caller's number masked everywhere.
    await world.db.projects.update(project_id, show_numbers=False)
    await stack.sign_in()
    browser = stack.browser
    await browser.navigate(f"{stack.base}/workspace")
    await stack.wait_state("ready")  # the softphone mounted in the workspace
    customer = stack.party(CUSTOMER_HZ)
    provider = await stack.customer_calls(stack.provider_port, "inbound.xml",
                                          rtp_port=customer.port, pause_ms=8000)
    inbound = await world.log.wait("call.inbound", timeout=20)
    call_id = inbound.data["call_id"]
    contact = await world.db.contacts.get(inbound.data["contact_id"])
    offered = await world.log.wait("call.offered", call_id=call_id, timeout=10)
    assert (offered.data["user_id"], offered.data["contact_id"]) == (operator_id, contact.id)
    assert (contact.project_id, contact.phone) == (project_id, "+79031234567")

    async def text_of(selector: str) -> str:
        found = await browser.execute(
            f"var e = document.querySelector('{selector}'); return e ? e.textContent : '';")
        return str(found)

    async def card_shown() -> bool:
        return bool(await browser.execute(
            "var c = document.querySelector('#ws-card .sipcard');"
            f" return !!c && c.getAttribute('data-card') === '{contact.id}';"))

    # While it rings: the call is offered to him, the caller's card is already open.
    await stack.wait_state("ringing")
    await until(lambda: _contains(text_of("#ws-calls"), "Входящий вызов: 7903*****67"),
                "the offered call in the workspace", 3)  # pushed at once, not refreshed
    widget = await text_of(".sip-softphone")
    assert "7903*****67" in widget and "79031234567" not in widget
    await until(card_shown, "the caller's card while it rings")
    await browser.click(await browser.find(".sip-softphone .sp-answer"))
    await world.log.wait("call.bridged", call_id=call_id, timeout=15)
    await until(lambda: _contains(text_of("#ws-calls"), "Разговор"), "talking in the workspace")
    # He types into the card during the call; the call ends; the card and his text stay.
    await browser.execute("document.querySelector('#ws-card [data-field=full_name]').value ="
                          " 'Сидоров Сидор';")
    code, out = await provider.wait(30)
    assert code == 0, out[-2000:]
    await world.log.wait("call.ended", call_id=call_id, timeout=10)
    await until(lambda: _contains(text_of("#ws-calls"), "Звонков нет"), "the call gone")
    assert await card_shown()
    assert await browser.execute(
        "return document.querySelector('#ws-card [data-field=full_name]').value;"
    ) == "Сидоров Сидор"
    await browser.execute("document.querySelector('#ws-card .sipcard-save').click();")

    async def saved() -> bool:
        return (await world.db.contacts.get(contact.id)).full_name == "Сидоров Сидор"
    await until(saved, "the card saved")
    row = await finished_row(world, call_id)
    assert row.contact_id == contact.id and row.operator_id == operator_id


async def _contains(text: Any, part: str) -> bool:
    return part in await text

"""«Робот» (manual §5.2.1): the person a robot project reaches talks with the outside robot.

Real parts on 127.0.0.1: SQLite, the call runtime, sipp as the customers' trunk provider (a
socket plays the customer at 1 kHz), sipp as the robot system behind a trunk flagged «Робот»
(a socket plays the robot at 600 Hz), and — for the whole hand-off — the campaign runtime
dialling the project's base as ``serve`` wires it.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from callworld import World, dominant_frequency, free_port, start_provider
from sound import write_tone
from test_outcomes_sipp import finished_row

from sipspeak.dialer.ports import DialContact, ProjectDialSettings
from sipspeak.dialer.runtime import CampaignRuntime
from sipspeak.storage.models import NewContact

pytestmark = pytest.mark.timeout(120)

CUSTOMER_HZ, ROBOT_HZ, MESSAGE_HZ = 1000.0, 600.0, 880.0
PHONE = "79030001122"

_REGISTER = """
  <label id="register"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Contact:];expires=3600
      Content-Length: 0

    ]]>
  </send>
  <recv request="REGISTER" timeout="100000" ontimeout="end"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <label id="end"/>
"""

ROBOT_TALKS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!-- The robot system: takes the registration of its trunk; an INVITE must name the contact and
     the project (X-Contact-Id, X-Project-Id); it answers with SDP naming -key rtpport, talks
     for the -d pause and hangs up itself (BYE). -->
<scenario name="robot">
  <recv request="REGISTER" optional="true" next="register"/>
  <recv request="INVITE">
    <action>
      <ereg regexp="[0-9]+" search_in="hdr" header="X-Contact-Id:" check_it="true" assign_to="contact"/>
      <ereg regexp="[0-9]+" search_in="hdr" header="X-Project-Id:" check_it="true" assign_to="project"/>
      <ereg regexp=".*" search_in="hdr" header="From:" check_it="true" assign_to="their_from"/>
      <ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="their_to"/>
      <ereg regexp="sip:[^>;]*" search_in="hdr" header="Contact:" check_it="true" assign_to="their_contact"/>
    </action>
  </recv>
  <send retrans="500">
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag02[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:bot@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=robot 1 1 IN IP4 127.0.0.1
      s=-
      c=IN IP4 127.0.0.1
      t=0 0
      m=audio [rtpport] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000

    ]]>
  </send>
  <recv request="ACK"/>
  <pause/>
  <send retrans="500">
    <![CDATA[

      BYE [$their_contact] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: [$their_to];tag=[pid]SIPpTag02[call_number]
      To: [$their_from]
      Call-ID: [call_id]
      CSeq: 1 BYE
      Contact: <sip:bot@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" next="end"/>
""" + _REGISTER + """
  <Reference variables="contact,project"/>
</scenario>
"""

ROBOT_REFUSES = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!-- The robot system out of lines: every INVITE gets 503. -->
<scenario name="robot_refuses">
  <recv request="REGISTER" optional="true" next="register"/>
  <recv request="INVITE"/>
  <send>
    <![CDATA[

      SIP/2.0 503 Service Unavailable
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag02[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK" next="end"/>
""" + _REGISTER + """
</scenario>
"""


async def start_robot(spawn: Any, tmp_path: Path, scenario: str, *, rtp_port: int = 9,
                      talk_ms: int = 0) -> int:
    """sipp as the robot system on a port of its own; its messages go to robot_*_messages.log."""
    path = tmp_path / ("robot.xml" if scenario is ROBOT_TALKS else "robot_refuses.xml")
    path.write_text(scenario, encoding="iso-8859-1")
    port = free_port()
    argv = ["sipp", "-sf", str(path), "-i", "127.0.0.1", "-p", str(port), "-mp", str(free_port()),
            "-key", "rtpport", str(rtp_port), "-nostdin", "-trace_msg", "-trace_err",
            "-timeout", "110s"]
    if talk_ms:
        argv += ["-d", str(talk_ms)]
    await spawn(argv)
    await asyncio.sleep(0.3)  # sipp binds its socket
    return port


async def robot_trunk(world: World, port: int) -> int:
    trunk_id = await world.db.trunks.create(name="voicebot", host=f"sip:bot@127.0.0.1:{port}",
                                            robot=True)
    await world.runtime.reload_trunks()
    return trunk_id


def robot_messages(tmp_path: Path) -> str:
    return "\n".join(log.read_text(errors="replace")
                     for log in tmp_path.glob("robot_*_messages.log"))


def sent_by_robot(log: str, method: str) -> bool:
    return bool(re.search(rf"message sent[^\n]*\n\s*\n?{method} sip:", log))


def received_by_robot(log: str, method: str) -> bool:
    return bool(re.search(rf"message received[^\n]*\n\s*\n?{method} sip:", log))


async def test_the_dialled_person_talks_with_the_robot_until_it_hangs_up(
        world: World, spawn: Any, rtp_party: Any, tmp_path: Path) -> None:
    customer = rtp_party(CUSTOMER_HZ)
    robot = rtp_party(ROBOT_HZ)
    _, provider_port = await start_provider(spawn, "provider.xml", rtp_port=customer.port)
    trunk_id = await world.add_trunk(provider_port)
    await world.log.wait("trunk.state", trunk_id=trunk_id, state="registered")
    robot_port = await start_robot(spawn, tmp_path, ROBOT_TALKS, rtp_port=robot.port,
                                   talk_ms=4000)
    await robot_trunk(world, robot_port)
    # A queue timeout far shorter than the robot's talk: had the queue taken the person, it
    # would have released him after 2 s.
    project_id = await world.add_project(
        trunk_id, robot=True, dial_mode="unlimited", max_concurrent_calls=1, launched=True,
        queue_timeout_s=2, client_time_from="00:00", client_time_to="00:00")
    await world.db.contacts.insert_many(project_id=project_id, upload_id=None,
                                        contacts=[NewContact(phone=PHONE)])
    contact_id = (await world.db.contacts.list(project_id=project_id))[0].id

    calls = world.runtime.calls
    campaigns = CampaignRuntime(db=world.db, bus=world.bus, calls=calls, ringer=calls,
                                tick_ms=200)
    calls.attach_dialer(campaigns.on_call_event, campaigns.on_operator_event)
    await campaigns.start()
    try:
        bridged = await world.log.wait("call.bridged", timeout=30, robot=True)
        call_id = bridged.data["call_id"]
        assert bridged.data["kind"] == "robot" and bridged.data["contact_id"] == contact_id
        ended = await world.log.wait("call.ended", timeout=30, call_id=call_id)
        await campaigns.settle()
    finally:
        campaigns.stop_dialling()
        await campaigns.aclose()
    assert ended.data["outcome"] == "answered"

    # Robot -> customer and customer -> robot, through the bridge.
    heard = customer.audio()
    assert len(heard) > 24000  # the robot talked 4 s
    assert abs(dominant_frequency(heard[-12000:-2000]) - ROBOT_HZ) < 20
    assert np.abs(heard[-12000:-2000]).mean() > 500
    assert abs(dominant_frequency(robot.audio()[-12000:-2000]) - CUSTOMER_HZ) < 20

    # The robot was told who it talks with, and it hung up (we sent it no BYE).
    log = robot_messages(tmp_path)
    invite = re.search(r"INVITE sip:bot@127\.0\.0\.1:\d+ SIP/2\.0.*?\n\s*\n", log, re.DOTALL)
    assert invite is not None, log[-3000:]
    assert f"X-Contact-Id: {contact_id}" in invite.group(0)
    assert f"X-Project-Id: {project_id}" in invite.group(0)
    assert re.search(rf"From: <sip:{PHONE}@", invite.group(0))
    assert sent_by_robot(log, "BYE") and not received_by_robot(log, "BYE")
    assert world.log.all("call.offered") == []  # no operator was ever rung

    row = await finished_row(world, call_id)
    assert (row.kind, row.result, row.contact_id, row.operator_id) == (
        "robot", "answered", contact_id, None)
    assert row.bridged_at is not None and row.talk_ms >= 3500
    assert row.client_status == "Клиент ответил" and row.operator_status == "Оператор ответил"
    contact = await world.db.contacts.get(contact_id)
    assert contact.dial_state == "done" and contact.attempts == 1


async def test_a_robot_that_refuses_leaves_the_person_to_the_abandon_message(
        world: World, spawn: Any, rtp_party: Any, tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    world.runtime.calls.files_dir = files
    size = write_tone(files / "busy.wav", MESSAGE_HZ, seconds=1.5, rate=16000,
                      amplitude=0.4).stat().st_size
    message = await world.db.files.add_file(name="Робот занят.wav", stored_name="busy.wav",
                                            size=size)
    customer = rtp_party(CUSTOMER_HZ)
    _, provider_port = await start_provider(spawn, "provider.xml", rtp_port=customer.port)
    trunk_id = await world.add_trunk(provider_port)
    await world.log.wait("trunk.state", trunk_id=trunk_id, state="registered")
    robot_port = await start_robot(spawn, tmp_path, ROBOT_REFUSES)
    await robot_trunk(world, robot_port)
    project_id = await world.add_project(trunk_id, robot=True,
                                         abandon_message_file_id=message)
    await world.db.contacts.insert_many(project_id=project_id, upload_id=None,
                                        contacts=[NewContact(phone=PHONE)])
    contact_id = (await world.db.contacts.list(project_id=project_id))[0].id

    calls = world.runtime.calls
    call_id = calls.originate(
        DialContact(contact_id=contact_id, phone=PHONE),
        ProjectDialSettings(project_id=project_id, trunk_id=trunk_id, caller_id="74950001122",
                            dial_timeout_ms=20_000, amd_enabled=False))
    ended = await world.log.wait("call.ended", timeout=30, call_id=call_id)
    assert ended.data["outcome"] == "abandoned"
    assert received_by_robot(robot_messages(tmp_path), "INVITE")
    # The project's message reached the customer before the release.
    heard = customer.audio()
    assert len(heard) >= 8000
    assert abs(dominant_frequency(heard[2000:10000]) - MESSAGE_HZ) < 20
    row = await finished_row(world, call_id)
    assert (row.kind, row.result, row.operator_id, row.bridged_at) == (
        "robot", "abandoned", None, None)
    assert row.operator_status == "Оператор не ответил" and row.duration_ms >= 1400
    assert world.log.all("call.bridged") == []


async def test_without_a_robot_trunk_the_person_is_released_at_once(
        world: World, spawn: Any, rtp_party: Any) -> None:
    customer = rtp_party(CUSTOMER_HZ)
    _, provider_port = await start_provider(spawn, "provider.xml", rtp_port=customer.port)
    trunk_id = await world.add_trunk(provider_port)
    await world.log.wait("trunk.state", trunk_id=trunk_id, state="registered")
    # A robot trunk switched off is no route to the robot.
    off = await world.db.trunks.create(name="voicebot", host="sip:127.0.0.1:9", robot=True,
                                       active=False)
    assert not (await world.db.trunks.get(off)).active
    project_id = await world.add_project(trunk_id, robot=True)
    await world.db.contacts.insert_many(project_id=project_id, upload_id=None,
                                        contacts=[NewContact(phone=PHONE)])
    contact_id = (await world.db.contacts.list(project_id=project_id))[0].id
    call_id = world.runtime.calls.originate(
        DialContact(contact_id=contact_id, phone=PHONE),
        ProjectDialSettings(project_id=project_id, trunk_id=trunk_id, caller_id="74950001122",
                            dial_timeout_ms=20_000, amd_enabled=False))
    ended = await world.log.wait("call.ended", timeout=30, call_id=call_id)
    assert ended.data["outcome"] == "abandoned"
    row = await finished_row(world, call_id)
    assert (row.kind, row.result, row.bridged_at) == ("robot", "abandoned", None)
    assert row.billing_ms < 2000  # released as soon as it answered, nobody to talk with


async def test_with_amd_the_robot_gets_the_person_only_after_the_verdict(
        world: World, spawn: Any, rtp_party: Any, tmp_path: Path) -> None:
    # A person who says nothing: no voice within the initial silence is «not sure», not a
    # machine, and goes on to the robot.
    customer = rtp_party(CUSTOMER_HZ, np.zeros(8000, dtype=np.int16))
    robot = rtp_party(ROBOT_HZ)
    _, provider_port = await start_provider(spawn, "provider.xml", rtp_port=customer.port)
    trunk_id = await world.add_trunk(provider_port)
    await world.log.wait("trunk.state", trunk_id=trunk_id, state="registered")
    robot_port = await start_robot(spawn, tmp_path, ROBOT_TALKS, rtp_port=robot.port,
                                   talk_ms=2000)
    await robot_trunk(world, robot_port)
    project_id = await world.add_project(trunk_id, robot=True, amd_enabled=True)
    await world.db.contacts.insert_many(project_id=project_id, upload_id=None,
                                        contacts=[NewContact(phone=PHONE)])
    contact_id = (await world.db.contacts.list(project_id=project_id))[0].id
    call_id = world.runtime.calls.originate(
        DialContact(contact_id=contact_id, phone=PHONE),
        ProjectDialSettings(project_id=project_id, trunk_id=trunk_id, caller_id="74950001122",
                            dial_timeout_ms=20_000, amd_enabled=True))
    await world.log.wait("call.answered", timeout=20, call_id=call_id)
    live = world.runtime.calls.get(call_id)
    assert live is not None and live.customer is not None
    # A phone sends its RTP from the answer on, heard or not (the socket would wait for ours).
    customer.remote = ("127.0.0.1", live.customer.endpoint.local_port)
    ended = await world.log.wait("call.ended", timeout=40, call_id=call_id)
    assert ended.data["outcome"] == "answered"
    topics = [e.topic for e in world.log.events if e.data.get("call_id") == call_id]
    assert topics.index("call.answered") < topics.index("call.amd") < topics.index("call.bridged")
    assert world.log.all("call.amd")[0].data["verdict"] == "not_sure"
    heard = customer.audio()
    assert abs(dominant_frequency(heard[-10000:-2000]) - ROBOT_HZ) < 20
    log = robot_messages(tmp_path)
    assert received_by_robot(log, "INVITE") and sent_by_robot(log, "BYE")
    row = await finished_row(world, call_id)
    assert (row.kind, row.result) == ("robot", "answered")
    assert row.amd_result is not None and row.amd_result.startswith("not_sure")
    assert row.bridged_at is not None and row.bridged_at - row.answered_at >= 1000

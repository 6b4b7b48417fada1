"""Real sipp as the far end of our RTP endpoints, with a tiny SIP answerer.

The SIP stack lives elsewhere; these tests only need sipp to set up a call so
that it sends and receives RTP.  :class:`SipAnswerer` is a plain asyncio UDP
responder with hand-built SIP text: it answers INVITE with 200 OK carrying an
SDP that points at our endpoint, ignores ACK and answers BYE with 200 OK.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path
from typing import Any

PCAP_DIR = Path("/usr/share/sip-tester")

PLAY_PCAP_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="play a pcap to the callee">
  <send retrans="500">
    <![CDATA[
      INVITE sip:callee@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: callee <sip:callee@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP {pt} 101
      a=rtpmap:{pt} {codec}/8000
      a=rtpmap:101 telephone-event/8000
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[
      ACK sip:callee@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: callee <sip:callee@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <nop>
    <action>
      <exec play_pcap_audio="{pcap}"/>
    </action>
  </nop>
  <pause milliseconds="{pause_ms}"/>
  <send retrans="500">
    <![CDATA[
      BYE sip:callee@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: callee <sip:callee@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
"""


class SipAnswerer(asyncio.DatagramProtocol):
    """Answers one call: INVITE -> 200 OK with our SDP, BYE -> 200 OK."""

    def __init__(self, *, rtp_port: int, payload_type: int, codec: str) -> None:
        self.rtp_port = rtp_port
        self.payload_type = payload_type
        self.codec = codec
        self.transport: asyncio.DatagramTransport | None = None
        self.remote_media: asyncio.Future[tuple[str, int]] = (
            asyncio.get_running_loop().create_future()
        )
        self.bye = asyncio.Event()
        self.port = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        head, _, body = data.decode("utf-8", "replace").partition("\r\n\r\n")
        lines = head.split("\r\n")
        if not lines or lines[0].startswith("SIP/2.0"):
            return  # a response: we never send requests
        method = lines[0].split(" ", 1)[0]
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        if method == "INVITE":
            self._on_invite(headers, body, addr)
        elif method == "BYE":
            self._respond(headers, addr, "")
            self.bye.set()

    def _on_invite(self, headers: list[tuple[str, str]], body: str, addr: Any) -> None:
        ip = "127.0.0.1"
        port = 0
        for line in body.splitlines():
            if line.startswith("c=IN IP4 "):
                ip = line.split()[2]
            elif line.startswith("m=audio "):
                port = int(line.split()[1])
        if port and not self.remote_media.done():
            self.remote_media.set_result((ip, port))
        sdp = (
            "v=0\r\n"
            "o=sipspeak 1 1 IN IP4 127.0.0.1\r\n"
            "s=-\r\n"
            "c=IN IP4 127.0.0.1\r\n"
            "t=0 0\r\n"
            f"m=audio {self.rtp_port} RTP/AVP {self.payload_type} 101\r\n"
            f"a=rtpmap:{self.payload_type} {self.codec}/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\n"
            "a=sendrecv\r\n"
        )
        self._respond(headers, addr, sdp)

    def _respond(self, headers: list[tuple[str, str]], addr: Any, sdp: str) -> None:
        out = ["SIP/2.0 200 OK"]
        for name, value in headers:
            if name in ("via", "v"):
                out.append(f"Via: {value}")
        for wanted, label in (
            ("from", "From"),
            ("to", "To"),
            ("call-id", "Call-ID"),
            ("cseq", "CSeq"),
        ):
            value = next((v for n, v in headers if n == wanted), "")
            if wanted == "to" and ";tag=" not in value:
                value += ";tag=sipspeak-test"
            out.append(f"{label}: {value}")
        out.append(f"Contact: <sip:callee@127.0.0.1:{self.port}>")
        if sdp:
            out.append("Content-Type: application/sdp")
        out.append(f"Content-Length: {len(sdp.encode())}")
        message = "\r\n".join(out) + "\r\n\r\n" + sdp
        assert self.transport is not None
        self.transport.sendto(message.encode(), addr)


def free_udp_port(*, even_block: int = 1) -> int:
    """A port (the first of ``even_block`` consecutive free ones, even) free right now."""
    for _ in range(200):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        base = probe.getsockname()[1]
        probe.close()
        if even_block > 1:
            base -= base % 2
        socks = []
        try:
            for p in range(base, base + even_block):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base
    raise RuntimeError("no free UDP port")


async def run_sipp(args: list[str], *, timeout: float) -> tuple[int, str]:
    """Run sipp to completion (killed after ``timeout``); return (exit code, output)."""
    proc = await asyncio.create_subprocess_exec(
        "sipp",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode("utf-8", "replace")


def sipp_args(answerer: SipAnswerer, *, sip_port: int, media_port: int) -> list[str]:
    return [
        f"127.0.0.1:{answerer.port}",
        "-i", "127.0.0.1",
        "-p", str(sip_port),
        "-mp", str(media_port),
        "-m", "1",
        "-nostdin",
        "-timeout", "40s",
        "-timeout_error",
    ]  # fmt: skip


def pcap_rtp_payloads(path: Path) -> list[tuple[int, bytes]]:
    """(payload type, payload) of every RTP packet in a pcap (Ethernet/IPv4/UDP)."""
    data = path.read_bytes()
    pos = 24
    out = []
    while pos + 16 <= len(data):
        incl = struct.unpack_from("<I", data, pos + 8)[0]
        frame = data[pos + 16 : pos + 16 + incl]
        pos += 16 + incl
        ihl = (frame[14] & 0x0F) * 4
        rtp = frame[14 + ihl + 8 :]
        out.append((rtp[1] & 0x7F, rtp[12:]))
    return out

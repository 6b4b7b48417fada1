"""SIP calls per second: sipp UAC -> SipSpeak UAS (INVITE/100/180/200/ACK/BYE/200), UDP, loopback.

Steps through rising call rates; each step runs a fresh callee process
(bench/sip_uas.py, uvloop, pinned to one core when taskset exists) against the
stock ``sipp -sn uac`` scenario for --step seconds.  The result is the highest
rate with zero failed calls and < 1 % retransmissions.  Also measures the
parser + serializer on one core over INVITE with SDP, 200 with SDP, REGISTER
with Authorization and BYE.  The last line of output is one JSON object.

    python bench/sip_calls.py                       # 30 s steps, as the protocol says
    python bench/sip_calls.py --step 10 --repeat 3  # shorter steps, median of 3
    python bench/sip_calls.py --nice -20            # on a machine shared with other sessions

Besides the clean rate it reports figures that depend little on other load:
the callee's CPU time per call and the sans-IO user agent's own calls/s.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sipspeak.sip.message import parse_message

HERE = Path(__file__).resolve().parent
SDP = (
    b"v=0\r\no=- 3724394400 3724394405 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\n"
    b"t=0 0\r\nm=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
)
MESSAGES = {
    "INVITE with SDP": (
        b"INVITE sip:+74951234567@trunk.example.net SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n"
        b"Max-Forwards: 70\r\n"
        b'From: "Operator 12" <sip:12@pbx.example.com>;tag=1928301774\r\n'
        b"To: <sip:+74951234567@trunk.example.net>\r\n"
        b"Call-ID: a84b4c76e66710@192.0.2.10\r\n"
        b"CSeq: 314159 INVITE\r\n"
        b"Contact: <sip:12@192.0.2.10:5060>\r\n"
        b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n"
        b"User-Agent: SipSpeak\r\n"
        b"Content-Type: application/sdp\r\n"
        b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
    ),
    "200 with SDP": (
        b"SIP/2.0 200 OK\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport=5060;received=192.0.2.10\r\n"
        b"Record-Route: <sip:192.0.2.1;lr>\r\n"
        b'From: "Operator 12" <sip:12@pbx.example.com>;tag=1928301774\r\n'
        b"To: <sip:+74951234567@trunk.example.net>;tag=a6c85cf\r\n"
        b"Call-ID: a84b4c76e66710@192.0.2.10\r\n"
        b"CSeq: 314159 INVITE\r\n"
        b"Contact: <sip:+74951234567@192.0.2.20:5060>\r\n"
        b"Content-Type: application/sdp\r\n"
        b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
    ),
    "REGISTER with Authorization": (
        b"REGISTER sip:pbx.example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.33:5060;branch=z9hG4bKnashds7;rport\r\n"
        b"Max-Forwards: 70\r\n"
        b"From: <sip:101@pbx.example.com>;tag=456248\r\n"
        b"To: <sip:101@pbx.example.com>\r\n"
        b"Call-ID: 843817637684230@998sdasdh09\r\n"
        b"CSeq: 1827 REGISTER\r\n"
        b"Contact: <sip:101@192.0.2.33:5060>;expires=3600\r\n"
        b'Authorization: Digest username="101", realm="pbx.example.com", '
        b'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:pbx.example.com", '
        b'response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cnonce="0a4f113b", '
        b"qop=auth, nc=00000001\r\n"
        b"Expires: 3600\r\n"
        b"Content-Length: 0\r\n\r\n"
    ),
    "BYE": (
        b"BYE sip:12@192.0.2.10:5060 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKnashds10\r\n"
        b"Max-Forwards: 70\r\n"
        b"From: <sip:+74951234567@trunk.example.net>;tag=a6c85cf\r\n"
        b'To: "Operator 12" <sip:12@pbx.example.com>;tag=1928301774\r\n'
        b"Call-ID: a84b4c76e66710@192.0.2.10\r\n"
        b"CSeq: 231 BYE\r\n"
        b"Content-Length: 0\r\n\r\n"
    ),
}


def parser_rate(seconds: float) -> dict[str, float]:
    """Messages per second for parse + serialize, each message type separately and mixed."""
    rates: dict[str, float] = {}
    for name, data in MESSAGES.items():
        count = 0
        start = time.perf_counter()
        deadline = start + seconds / (len(MESSAGES) + 1)
        while time.perf_counter() < deadline:
            for _ in range(200):
                parse_message(data).serialize()
            count += 200
        rates[name] = count / (time.perf_counter() - start)
    mixed = list(MESSAGES.values())
    count = 0
    start = time.perf_counter()
    deadline = start + seconds / (len(MESSAGES) + 1)
    while time.perf_counter() < deadline:
        for _ in range(50):
            for data in mixed:
                parse_message(data).serialize()
        count += 50 * len(mixed)
    rates["mixed"] = count / (time.perf_counter() - start)
    return rates


def _sipp_like_call(i: int, tag: str | None = None) -> tuple[bytes, bytes, bytes]:
    """The INVITE, ACK and BYE of one call as ``sipp -sn uac`` sends them."""
    sdp = (
        b"v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
        b"t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
    common = (
        f"From: sipp <sip:sipp@127.0.0.1:5061>;tag={i}SIPpTag001\r\n"
        f"To: service <sip:service@127.0.0.1:5060>{';tag=' + tag if tag else ''}\r\n"
        f"Call-ID: {i}-4242@127.0.0.1\r\n"
    )
    invite = (
        f"INVITE sip:service@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-{i}-1-0\r\n{common}CSeq: 1 INVITE\r\n"
        f"Contact: sip:sipp@127.0.0.1:5061\r\nMax-Forwards: 70\r\nSubject: Performance Test\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n"
    ).encode() + sdp
    ack = (
        f"ACK sip:service@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-{i}-5-0\r\n{common}CSeq: 1 ACK\r\n"
        f"Contact: sip:sipp@127.0.0.1:5061\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    bye = (
        f"BYE sip:service@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-{i}-7-0\r\n{common}CSeq: 2 BYE\r\n"
        f"Contact: sip:sipp@127.0.0.1:5061\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    return invite, ack, bye


def core_call_rate(calls: int) -> float:
    """Calls/s of the sans-IO user agent alone (no sockets): parse, answer, serialize."""
    from sipspeak.sip.events import Address
    from sipspeak.sip.sdp import answer_offer, extract_sdp, parse_sdp
    from sipspeak.sip.session import IncomingCall
    from sipspeak.sip.useragent import UserAgent

    ua = UserAgent(local=Address("UDP", "127.0.0.1", 5060))
    source = Address("UDP", "127.0.0.1", 5061)
    start = time.perf_counter()
    now = 0.0
    for i in range(calls):
        now += 0.001
        invite, _, _ = _sipp_like_call(i)
        ua.receive_data(invite, source, now)
        tag = ""
        while (event := ua.next_event()) is not None:
            if isinstance(event, IncomingCall):
                session = event.session
                session.ring(now)
                offer = extract_sdp(
                    event.request.headers.get("Content-Type"), event.request.body
                )
                answer, _ = answer_offer(
                    parse_sdp(offer or b""),
                    address="127.0.0.1",
                    port=4000,
                    session_id=1,
                    version=1,
                )
                session.answer(answer.serialize(), now)
                tag = session.local_tag
        for item in ua.messages_to_send():
            item.message.serialize()
        _, ack, bye = _sipp_like_call(i, tag)
        ua.receive_data(ack, source, now)
        ua.receive_data(bye, source, now)
        for item in ua.messages_to_send():
            item.message.serialize()
        while ua.next_event() is not None:
            pass
        ua.handle_timer(now)
    return calls / (time.perf_counter() - start)


NICE = 0


def boost(pid: int) -> None:
    """Apply --nice to ``pid`` and to its scheduler autogroup.

    With kernel.sched_autogroup_enabled the CPU is shared between sessions
    first (sched(7)), so on a shared machine a plain nice value only orders a
    session's own tasks: each process is started in a session of its own and
    that session's autogroup gets the nice value too."""
    if not NICE:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, pid, NICE)
        Path(f"/proc/{pid}/autogroup").write_text(str(NICE))
    except OSError as exc:
        print(f"  (cannot renice {pid}: {exc})", flush=True)


def pinned(argv: list[str], core: int | None) -> list[str]:
    if core is not None and shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(core), *argv]
    return argv


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_step(rate: int, step: float, workdir: Path) -> dict[str, float]:
    """One step: fresh callee, sipp at ``rate`` calls/s for ``step`` seconds."""
    # stderr to a file: a pipe nobody reads could fill up and stall the callee
    log_path = workdir / f"callee_{rate}.log"
    server = subprocess.Popen(
        pinned([sys.executable, str(HERE / "sip_uas.py"), "--port", "0"], 0),
        stdout=subprocess.PIPE,
        stderr=log_path.open("w"),
        text=True,
        start_new_session=True,
    )
    boost(server.pid)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(f"callee did not start: {line!r}")
        port = int(line.split()[1])
        cpu_at_start = _cpu_seconds(server.pid)
        stats = workdir / f"stats_{rate}.csv"
        calls = int(rate * step)
        sipp = subprocess.Popen(
            pinned(
                [
                    "sipp",
                    "-sn",
                    "uac",
                    f"127.0.0.1:{port}",
                    "-i",
                    "127.0.0.1",
                    "-p",
                    "0",
                    "-r",
                    str(rate),
                    "-m",
                    str(calls),
                    "-l",
                    str(max(rate * 4, 100)),
                    "-nostdin",
                    "-trace_stat",
                    "-stf",
                    str(stats),
                    "-fd",
                    "1",
                    "-timeout",
                    f"{int(step + 40)}s",
                ],
                1,
            ),
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        boost(sipp.pid)
        try:
            sipp.wait(step + 60)
        except subprocess.TimeoutExpired:
            sipp.kill()
            sipp.wait()
        server_cpu = _cpu_seconds(server.pid) - cpu_at_start
        rows = list(csv.reader(stats.open(), delimiter=";"))
        header, last = rows[0], rows[-1]

        def value(name: str) -> float:
            return float(last[header.index(name)])

        done = value("SuccessfulCall(C)")
        failed = value("FailedCall(C)") + max(
            0.0, calls - done - value("FailedCall(C)")
        )
        retrans = value("Retransmissions(C)")
        # sipp sends INVITE, ACK and BYE per call: retransmissions relative to those
        return {
            "rate": rate,
            "calls": calls,
            "successful": done,
            "failed": failed,
            "retransmissions": retrans,
            "retransmission_share": retrans / max(1.0, 3 * calls),
            "sipp_exit": sipp.returncode,
            # CPU the callee spent per call: what one free core would sustain
            "server_cpu_ms_per_call": 1000 * server_cpu / max(1.0, done),
            "callee_log_lines": len(log_path.read_text().splitlines()),
        }
    finally:
        server.terminate()
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def highest_rate(rates: list[int], step: float) -> tuple[int, list[dict[str, float]]]:
    best = 0
    results = []
    with tempfile.TemporaryDirectory(prefix="sip_calls_") as tmp:
        for rate in rates:
            result = run_step(rate, step, Path(tmp))
            results.append(result)
            ok = result["failed"] == 0 and result["retransmission_share"] < 0.01
            print(
                f"  {rate:5d} calls/s: {int(result['successful'])}/{result['calls']} ok, "
                f"{int(result['failed'])} failed, {int(result['retransmissions'])} retransmissions, "
                f"callee CPU {result['server_cpu_ms_per_call']:.2f} ms/call "
                f"-> {'pass' if ok else 'FAIL'}",
                flush=True,
            )
            if not ok:
                break
            best = rate
    return best, results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="50,100,200,300,400,600,800,1000,1200,1500")
    parser.add_argument(
        "--step", type=float, default=30.0, help="seconds per rate step (default 30)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs; the median is reported"
    )
    parser.add_argument("--parser-seconds", type=float, default=5.0)
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="scheduling priority of this process, the callee and sipp (-20 on a busy box)",
    )
    args = parser.parse_args()
    global NICE
    NICE = args.nice
    if NICE:
        try:
            os.setsid()
        except OSError:
            pass  # already leading a session
        boost(os.getpid())
    if shutil.which("sipp") is None:
        sys.exit("sipp is not installed (Debian package sip-tester)")
    rates = [int(r) for r in args.rates.split(",")]
    print(
        f"parser + serializer, {args.parser_seconds:.0f} s on one core ...", flush=True
    )
    parser_runs = [parser_rate(args.parser_seconds) for _ in range(args.repeat)]
    parser_median = {
        k: statistics.median(run[k] for run in parser_runs) for k in parser_runs[0]
    }
    for name, value in parser_median.items():
        print(f"  {name:28s} {value:10.0f} messages/s", flush=True)
    core_runs = [core_call_rate(3000) for _ in range(args.repeat)]
    core_rate = statistics.median(core_runs)
    print(
        f"  sans-IO user agent alone     {core_rate:10.0f} calls/s (INVITE..BYE, no sockets)"
    )
    bests = []
    steps = []
    for run in range(args.repeat):
        print(
            f"call rate run {run + 1}/{args.repeat}, {args.step:.0f} s per step",
            flush=True,
        )
        best, results = highest_rate(rates, args.step)
        bests.append(best)
        steps.append(results)
        print(f"  highest clean rate: {best} calls/s", flush=True)
    summary = {
        "benchmark": "sip_calls",
        "step_seconds": args.step,
        "runs": args.repeat,
        "calls_per_second": statistics.median(bests),
        "calls_per_second_runs": bests,
        "parser_messages_per_second": {k: round(v) for k, v in parser_median.items()},
        "core_calls_per_second": round(core_rate),
        "callee_cpu_ms_per_call": round(
            statistics.median(
                r["server_cpu_ms_per_call"] for run in steps for r in run
            ),
            3,
        ),
        "load_average_1min": os.getloadavg()[0],
        "nice": args.nice,
        "steps": steps,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

"""Bridged calls per core (docs/benchmarks-protocol.md).

N calls, each two RTP legs through the engine's bridge (two ``RtpEndpoint``s
and one ``Bridge``, RTCP on).  Phone processes play both far ends of every
leg from one socket per leg group: each leg gets a 20 ms PCMU packet (172
bytes) 50 times a second carrying its send time (CLOCK_MONOTONIC, shared by
all processes), and the phone holding the other leg's far end measures loss
and added latency.  Steps run up in N until a step fails (loss >= 0.1 % or
p99 added latency >= 5 ms); the result per mode is the largest passing N.

Modes, all in the same run:
  relay   a bare uvloop UDP relay (no engine logic): the ceiling
  engine  the engine's endpoints + bridge, recording off
  record  the same with a stereo WavRecorder per call
  engine-py, record-py  (on request) the same on the Python twin of the C
          relay loop, as installed without a compiler

The engine runs under uvloop, pinned to CPU 0; phones are pinned to the other
CPUs.  Its CPU share per step is read from /proc over the measured window.

    python bench/bridge.py --duration 15

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import multiprocessing as mp
import os
import platform
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

PTIME = 0.02
PAYLOAD = 160
HIST_BIN = 1e-5  # 10 us latency bins
HIST_SIZE = 20001  # up to 200 ms; the last bin holds everything slower
STAMP = struct.Struct("!dII")  # send time, stream id, round
HEADER = struct.Struct("!BBHII")
LEGS_PER_SOCKET = 64
SOCK_BUF = 4 * 1024 * 1024


@dataclass
class StepResult:
    mode: str
    calls: int
    sent: int
    received: int
    loss: float
    p50_ms: float
    p99_ms: float
    engine_cpu: float
    phone_cpu: float
    phone_max_lag_ms: float
    passed: bool


# ----------------------------------------------------------------------------- engine


NICE = 0


def pin(cpus: set[int]) -> None:
    """Pin to ``cpus`` and apply the --nice priority (the machine may be shared)."""
    try:
        os.sched_setaffinity(0, cpus)
    except (AttributeError, OSError):
        pass
    if NICE:
        try:
            os.nice(NICE)
        except OSError:
            pass
        boost_autogroup(os.getpid(), new_session=True)


def boost_autogroup(pid: int, *, new_session: bool = False) -> None:
    """Give ``pid`` its own scheduler autogroup niced to --nice.

    With CONFIG_SCHED_AUTOGROUP (kernel.sched_autogroup_enabled=1) CPU time is
    shared between sessions first, so a process nice only orders tasks inside
    its own session: on a machine shared with other sessions it is the
    autogroup's nice that counts (sched(7), "The autogroup feature").
    """
    try:
        if new_session:
            os.setsid()
        with open(f"/proc/{pid}/autogroup", "w") as f:
            f.write(str(NICE))
    except OSError:
        pass


def engine_main(
    mode: str, phone_addrs: list[tuple[str, int]], conn: Connection, cpu: int
) -> None:
    pin({cpu})
    if mode.endswith("-py"):
        # The engine without its C relay loop (sipspeak.media._rtppy): what a
        # machine without a compiler at install time gets.
        os.environ["SIPSPEAK_MEDIA_NATIVE"] = "0"
        mode = mode.removesuffix("-py")
    import uvloop

    profile = os.environ.get("BENCH_PROFILE")
    if not profile:
        uvloop.run(engine(mode, phone_addrs, conn))
        return
    import cProfile

    cProfile.runctx(
        "uvloop.run(engine(mode, phone_addrs, conn))",
        globals(),
        locals(),
        f"{profile}.{mode}",
    )


async def engine(
    mode: str, phone_addrs: list[tuple[str, int]], conn: Connection
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_reader(conn.fileno(), stop.set)
    closers: list[Any] = []
    endpoints: list[Any] = []
    ports: list[int] = []
    tmpdir = tempfile.mkdtemp(prefix="bench-rec-")
    if mode == "relay":
        ports = await open_relay(phone_addrs, closers)
    else:
        from sipspeak.media.bridge import Bridge
        from sipspeak.media.endpoint import open_endpoint
        from sipspeak.media.portpool import PortPool
        from sipspeak.media.recorder import WavRecorder

        pool = PortPool(first=20000, last=60000)
        for call in range(len(phone_addrs) // 2):
            a = await open_endpoint(
                pool=pool, codec="PCMU", remote=phone_addrs[2 * call], name=f"c{call}a"
            )
            b = await open_endpoint(
                pool=pool,
                codec="PCMU",
                remote=phone_addrs[2 * call + 1],
                name=f"c{call}b",
            )
            bridge = Bridge(customer=a, operator=b)
            closers += [bridge.close, a.close, b.close]
            endpoints += [a, b]
            if mode == "record":
                rec = WavRecorder(path=os.path.join(tmpdir, f"{call}.wav"))
                bridge.set_tap("customer", rec.tap("customer"))
                bridge.set_tap("operator", rec.tap("operator"))
                closers.append(functools.partial(rec.close, wait=False))
            ports += [a.local_port, b.local_port]
    # Everything long-lived exists now: keep the collector off it.
    gc.collect()
    gc.freeze()
    conn.send(ports)
    await stop.wait()
    conn.recv()
    for close in closers:
        close()
    shutil.rmtree(tmpdir, ignore_errors=True)
    counters = {
        "received": sum(e.packets_received for e in endpoints),
        "sent": sum(e.packets_sent for e in endpoints),
        "dropped_foreign": sum(e.dropped_foreign for e in endpoints),
        "dropped_malformed": sum(e.dropped_malformed for e in endpoints),
    }
    conn.send(counters)


async def open_relay(
    phone_addrs: list[tuple[str, int]], closers: list[Any]
) -> list[int]:
    """The ceiling: two sockets per call, each datagram forwarded unchanged."""
    loop = asyncio.get_running_loop()

    class Relay(asyncio.DatagramProtocol):
        def __init__(self) -> None:
            self.peer: asyncio.DatagramTransport | None = None
            self.dest: tuple[str, int] | None = None

        def datagram_received(self, data: bytes, addr: Any) -> None:
            if self.peer is not None:
                self.peer.sendto(data, self.dest)

    ports = []
    for call in range(len(phone_addrs) // 2):
        ta, pa = await loop.create_datagram_endpoint(Relay, local_addr=("127.0.0.1", 0))
        tb, pb = await loop.create_datagram_endpoint(Relay, local_addr=("127.0.0.1", 0))
        pa.peer, pa.dest = tb, phone_addrs[2 * call + 1]
        pb.peer, pb.dest = ta, phone_addrs[2 * call]
        closers += [ta.close, tb.close]
        ports += [ta.get_extra_info("sockname")[1], tb.get_extra_info("sockname")[1]]
    return ports


# ----------------------------------------------------------------------------- phones


def phone_main(
    socks: list[socket.socket],
    streams: list[tuple[int, int, int]],  # (socket index, engine port, stream id)
    t0: float,
    warmup_rounds: int,
    rounds: int,
    conn: Connection,
    cpus: set[int],
) -> None:
    """Send every stream's packets on schedule and sink whatever comes back."""
    pin(cpus)
    gc.disable()
    poller = select.epoll()
    by_fd = {}
    for s in socks:
        poller.register(s.fileno(), select.EPOLLIN)
        by_fd[s.fileno()] = s
    k_total = len(streams)
    phases = [i * PTIME / k_total for i in range(k_total)]
    bufs = []
    for _sock_index, _port, stream_id in streams:
        buf = bytearray(12 + PAYLOAD)
        HEADER.pack_into(buf, 0, 0x80, 0, 0, 0, 0x10000 + stream_id)
        bufs.append(buf)
    targets = [(socks[si], ("127.0.0.1", port)) for si, port, _ in streams]
    hist = [0] * HIST_SIZE
    received = 0
    sent = 0
    window_end = warmup_rounds + rounds
    k = 0
    m = 0
    next_due = t0
    monotonic = time.monotonic
    stamp = STAMP.pack_into
    header = HEADER.pack_into
    unpack = STAMP.unpack_from
    finish = t0 + (window_end + 1) * PTIME + 1.0  # drain stragglers for a second
    sending = True
    max_lag = 0.0
    cpu0 = os.times()
    while True:
        now = monotonic()
        if sending:
            if now - next_due > max_lag and m >= warmup_rounds:
                max_lag = now - next_due
            while next_due <= now:
                buf = bufs[k]
                sock, dest = targets[k]
                header(
                    buf,
                    0,
                    0x80,
                    0,
                    m & 0xFFFF,
                    (m * 160) & 0xFFFFFFFF,
                    0x10000 + streams[k][2],
                )
                stamp(buf, 12, monotonic(), streams[k][2], m)
                try:
                    sock.sendto(buf, dest)
                except (BlockingIOError, OSError):
                    pass  # counted as lost: it never got out
                if warmup_rounds <= m < window_end:
                    sent += 1
                k += 1
                if k == k_total:
                    k = 0
                    m += 1
                    if m >= window_end:
                        sending = False
                        break
                next_due = t0 + m * PTIME + phases[k]
            timeout = max(0.0, min(next_due - monotonic(), 0.002)) if sending else 0.05
        else:
            if now >= finish:
                break
            timeout = 0.05
        for fd, _ev in poller.poll(timeout):
            s = by_fd[fd]
            while True:
                try:
                    data = s.recv(2048)
                except BlockingIOError:
                    break
                if len(data) < 12 + STAMP.size or data[1] & 0x7F != 0:
                    continue  # RTCP or other traffic
                arrival = monotonic()
                sent_at, _sid, rnd = unpack(data, 12)
                if warmup_rounds <= rnd < window_end:
                    received += 1
                    i = int((arrival - sent_at) / HIST_BIN)
                    hist[i if i < HIST_SIZE else HIST_SIZE - 1] += 1
    cpu1 = os.times()
    cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (finish - t0)
    conn.send((sent, received, hist, max_lag, cpu))


# ----------------------------------------------------------------------------- C phone

# The same phone in C (sendto + recvmmsg): about a tenth of the Python phone's
# CPU, so that on a small machine the phones are not the first to saturate.
PHONE_C = r"""
/* RTP phone for bench/bridge.py: sends every stream's packets on schedule and
   sinks what comes back, measuring loss and latency.  Built from bridge.py. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PTIME 0.02
#define PKT 172
#define HIST_BIN 1e-5
#define HIST_SIZE 20001
#define BATCH 64

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    int fd;
    struct sockaddr_in dest;
    uint32_t id;
    unsigned char buf[PKT];
} stream_t;

static unsigned long hist[HIST_SIZE];

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: phone t0 warmup_rounds rounds < streams\n");
        return 2;
    }
    double t0 = atof(argv[1]);
    long warmup = atol(argv[2]), rounds = atol(argv[3]);
    long window_end = warmup + rounds;
    int n;
    if (scanf("%d", &n) != 1 || n <= 0) return 2;
    stream_t *st = calloc(n, sizeof(stream_t));
    double *phase = calloc(n, sizeof(double));
    int epfd = epoll_create1(0);
    int fds[4096], nfds = 0;
    for (int i = 0; i < n; i++) {
        int fd, port;
        unsigned id;
        if (scanf("%d %d %u", &fd, &port, &id) != 3) return 2;
        st[i].fd = fd;
        st[i].id = id;
        st[i].dest.sin_family = AF_INET;
        st[i].dest.sin_port = htons(port);
        st[i].dest.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        st[i].buf[0] = 0x80;
        st[i].buf[1] = 0;
        uint32_t ssrc = htonl(0x10000 + id);
        memcpy(st[i].buf + 8, &ssrc, 4);
        phase[i] = i * PTIME / n;
        int seen = 0;
        for (int j = 0; j < nfds; j++) seen |= fds[j] == fd;
        if (!seen) {
            fds[nfds++] = fd;
            struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
            epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
        }
    }
    unsigned long sent = 0, received = 0;
    double max_lag = 0;
    long m = 0;
    int k = 0;
    double next_due = t0;
    double finish = t0 + (window_end + 1) * PTIME + 1.0;
    int sending = 1;
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    unsigned char rbuf[BATCH][256];
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = rbuf[i];
        iov[i].iov_len = sizeof rbuf[i];
        memset(&msgs[i], 0, sizeof msgs[i]);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    struct epoll_event events[256];
    for (;;) {
        double now = mono();
        if (sending) {
            if (m >= warmup && now - next_due > max_lag) max_lag = now - next_due;
            while (next_due <= now) {
                stream_t *s = &st[k];
                uint16_t seq = htons((uint16_t)m);
                uint32_t ts = htonl((uint32_t)(m * 160));
                memcpy(s->buf + 2, &seq, 2);
                memcpy(s->buf + 4, &ts, 4);
                double t = mono();
                memcpy(s->buf + 12, &t, 8);
                uint32_t rnd = htonl((uint32_t)m);
                memcpy(s->buf + 20, &rnd, 4);
                sendto(s->fd, s->buf, PKT, MSG_DONTWAIT, (struct sockaddr *)&s->dest, sizeof s->dest);
                if (m >= warmup && m < window_end) sent++;
                if (++k == n) {
                    k = 0;
                    if (++m >= window_end) {
                        sending = 0;
                        break;
                    }
                }
                next_due = t0 + m * PTIME + phase[k];
            }
        } else if (now >= finish) {
            break;
        }
        int ready = epoll_wait(epfd, events, 256, 1);
        for (int e = 0; e < ready; e++) {
            int fd = events[e].data.fd;
            for (;;) {
                int got = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
                if (got <= 0) break;
                double arrival = mono();
                for (int i = 0; i < got; i++) {
                    unsigned char *p = rbuf[i];
                    if (msgs[i].msg_len < 24 || (p[1] & 0x7f) != 0) continue;
                    double t;
                    uint32_t rnd;
                    memcpy(&t, p + 12, 8);
                    memcpy(&rnd, p + 20, 4);
                    long r = ntohl(rnd);
                    if (r >= warmup && r < window_end) {
                        received++;
                        long b = (long)((arrival - t) / HIST_BIN);
                        if (b < 0) b = 0;
                        hist[b < HIST_SIZE ? b : HIST_SIZE - 1]++;
                    }
                }
                if (got < BATCH) break;
            }
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
    printf("%lu %lu %.6f %.6f\n", sent, received, max_lag, cpu / (finish - t0));
    for (int i = 0; i < HIST_SIZE; i++)
        if (hist[i]) printf("%d %lu\n", i, hist[i]);
    return 0;
}
"""


def build_c_phone(directory: str) -> str | None:
    """Compile the C phone with the system compiler; ``None`` if there is none."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    source = os.path.join(directory, "phone.c")
    binary = os.path.join(directory, "phone")
    with open(source, "w") as f:
        f.write(PHONE_C)
    result = subprocess.run(
        [cc, "-O2", "-o", binary, source], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        print(
            f"C phone did not build, using Python phones:\n{result.stderr}", flush=True
        )
        return None
    return binary


def start_c_phone(
    binary: str,
    socks: list[socket.socket],
    streams: list[tuple[int, int, int]],
    t0: float,
    warmup_rounds: int,
    rounds: int,
    cpus: set[int],
) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [binary, repr(t0), str(warmup_rounds), str(rounds)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        pass_fds=[s.fileno() for s in socks],
        start_new_session=True,
    )
    try:  # it only waits for t0 until then: pinning right after the start is in time
        os.sched_setaffinity(proc.pid, cpus)
        if NICE:
            os.setpriority(os.PRIO_PROCESS, proc.pid, NICE)
            boost_autogroup(proc.pid)
    except (AttributeError, OSError):
        pass
    assert proc.stdin is not None
    lines = [f"{len(streams)}"] + [
        f"{socks[si].fileno()} {port} {sid}" for si, port, sid in streams
    ]
    proc.stdin.write("\n".join(lines) + "\n")
    proc.stdin.close()
    return proc


def read_c_phone(
    proc: subprocess.Popen[str], timeout: float
) -> tuple[int, int, list[int], float, float]:
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.wait(timeout)
    first, *rest = out.splitlines()
    sent, received, lag, cpu = first.split()
    hist = [0] * HIST_SIZE
    for line in rest:
        i, count = line.split()
        hist[int(i)] = int(count)
    return int(sent), int(received), hist, float(lag), float(cpu)


# ----------------------------------------------------------------------------- control


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def udp_drops(ports: set[int]) -> int:
    """Datagrams the kernel dropped on these local ports (receive buffer full)."""
    drops = 0
    try:
        with open("/proc/net/udp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if int(fields[1].split(":")[1], 16) in ports:
                    drops += int(fields[-1])
    except (OSError, ValueError, IndexError):
        pass
    return drops


def percentile(hist: list[int], q: float) -> float:
    total = sum(hist)
    if not total:
        return float("inf")
    target = q * total
    acc = 0
    for i, c in enumerate(hist):
        acc += c
        if acc >= target:
            return (i + 0.5) * HIST_BIN * 1000
    return HIST_SIZE * HIST_BIN * 1000


def run_step(mode: str, calls: int, args: argparse.Namespace) -> StepResult:
    ctx = mp.get_context("fork")
    ncpu = os.cpu_count() or 1
    engine_cpu = 0
    # Phones may use every CPU: the engine, pinned and alone on CPU 0, is measured.
    phone_cpus = (
        set(range(ncpu)) if args.phones_anywhere else (set(range(1, ncpu)) or {0})
    )
    legs = 2 * calls
    phones = args.phones
    # One socket per LEGS_PER_SOCKET legs, spread over the phone processes.
    per_phone: list[list[int]] = [[] for _ in range(phones)]
    for leg in range(legs):
        per_phone[leg % phones].append(leg)
    sockets: list[list[socket.socket]] = []
    addr_of_leg: dict[int, tuple[int, int]] = {}  # leg -> (phone, socket index)
    phone_addrs: list[tuple[str, int]] = [("", 0)] * legs
    for p, mine in enumerate(per_phone):
        socks = []
        for j in range(0, len(mine), LEGS_PER_SOCKET):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCK_BUF)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCK_BUF)
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
            for leg in mine[j : j + LEGS_PER_SOCKET]:
                addr_of_leg[leg] = (p, len(socks))
                phone_addrs[leg] = s.getsockname()
            socks.append(s)
        sockets.append(socks)
    parent_conn, child_conn = ctx.Pipe()
    eng = ctx.Process(
        target=engine_main,
        args=(mode, phone_addrs, child_conn, engine_cpu),
        daemon=True,
    )
    eng.start()
    procs: list[mp.process.BaseProcess] = [eng]
    c_phones: list[subprocess.Popen[str]] = []
    try:
        if not parent_conn.poll(120):
            raise RuntimeError("engine did not start within 120 s")
        ports: list[int] = parent_conn.recv()
        warmup_rounds = int(args.warmup / PTIME)
        rounds = int(args.duration / PTIME)
        t0 = time.monotonic() + 0.5
        pipes = []
        for p in range(phones):
            streams = []
            for leg in per_phone[p]:
                _, si = addr_of_leg[leg]
                streams.append((si, ports[leg], leg))
            if args.c_phone:
                c_phones.append(
                    start_c_phone(
                        args.c_phone,
                        sockets[p],
                        streams,
                        t0,
                        warmup_rounds,
                        rounds,
                        phone_cpus,
                    )
                )
                continue
            a, b = ctx.Pipe()
            proc = ctx.Process(
                target=phone_main,
                args=(sockets[p], streams, t0, warmup_rounds, rounds, b, phone_cpus),
                daemon=True,
            )
            proc.start()
            procs.append(proc)
            pipes.append(a)
        time.sleep(max(0.0, t0 + warmup_rounds * PTIME - time.monotonic()))
        c0 = cpu_ticks(eng.pid or 0)
        w0 = time.monotonic()
        time.sleep(max(0.0, t0 + (warmup_rounds + rounds) * PTIME - time.monotonic()))
        c1 = cpu_ticks(eng.pid or 0)
        w1 = time.monotonic()
        kernel_drops = udp_drops(set(ports))
        if kernel_drops:
            print(
                f"    kernel dropped {kernel_drops} datagrams at the engine's sockets",
                flush=True,
            )
        sent = received = 0
        phone_cpu = phone_lag = 0.0
        hist = [0] * HIST_SIZE
        reports = []
        for a in pipes:
            if not a.poll(args.duration + 30):
                raise RuntimeError("a phone process did not report")
            reports.append(a.recv())
        for proc in c_phones:
            reports.append(read_c_phone(proc, args.duration + 30))
        for s_, r_, h_, lag_, cpu_ in reports:
            phone_lag = max(phone_lag, lag_)
            phone_cpu += cpu_
            sent += s_
            received += r_
            hist = [x + y for x, y in zip(hist, h_, strict=True)]
        parent_conn.send("stop")
        engine_counters = parent_conn.recv() if parent_conn.poll(60) else {}
        if any(engine_counters.values()):
            print(f"    engine endpoints: {engine_counters}", flush=True)
        cpu = (c1 - c0) / os.sysconf("SC_CLK_TCK") / (w1 - w0)
    finally:
        for cp in c_phones:
            if cp.poll() is None:
                cp.kill()
                cp.wait(5)
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
        for socks in sockets:
            for s in socks:
                s.close()
    loss = max(0.0, 1 - received / sent) if sent else 1.0
    p99 = percentile(hist, 0.99)
    return StepResult(
        mode=mode,
        calls=calls,
        sent=sent,
        received=received,
        loss=loss,
        p50_ms=percentile(hist, 0.50),
        p99_ms=p99,
        engine_cpu=cpu,
        phone_cpu=phone_cpu,
        phone_max_lag_ms=phone_lag * 1000,
        passed=loss < 0.001 and p99 < 5.0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--duration", type=float, default=60.0, help="seconds measured per step"
    )
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds before measuring"
    )
    parser.add_argument(
        "--steps", default="100,200,300,500,700,1000,1500,2000", help="calls per step"
    )
    parser.add_argument("--modes", default="relay,engine,record")
    parser.add_argument("--phones", type=int, default=3, help="phone processes")
    parser.add_argument(
        "--phones-anywhere",
        action="store_true",
        help="let phone processes run on the engine's CPU too (default: the other CPUs)",
    )
    parser.add_argument(
        "--failures",
        type=int,
        default=1,
        help="stop a mode after this many failed steps",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="nice for engine and phones and their scheduler autogroups (e.g. -20 on a busy shared machine)",
    )
    parser.add_argument(
        "--python-phones",
        action="store_true",
        help="use the Python phones, not the C ones",
    )
    args = parser.parse_args()
    global NICE
    NICE = args.nice
    build_dir = tempfile.mkdtemp(prefix="bench-phone-")
    args.c_phone = None if args.python_phones else build_c_phone(build_dir)
    steps = [int(x) for x in args.steps.split(",")]
    cpu_model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu_model = next(
                (
                    line.split(":", 1)[1].strip()
                    for line in f
                    if line.startswith("model name")
                ),
                cpu_model,
            )
    except OSError:
        pass
    print(
        f"bridged calls per core: {args.duration:g} s per step, steps {steps}, "
        f"{os.cpu_count()} CPUs ({cpu_model}), python {sys.version.split()[0]}, "
        f"nice {args.nice}, load average {os.getloadavg()[0]:.1f}, "
        f"{'C' if args.c_phone else 'Python'} phones",
        flush=True,
    )
    load_at_start = os.getloadavg()[0]
    results: dict[str, list[StepResult]] = {}
    best: dict[str, int] = {}
    # Largest N under the loss criterion alone: on a shared, oversubscribed
    # machine the p99 criterion measures the neighbours as much as the engine.
    best_loss_only: dict[str, int] = {}
    for mode in args.modes.split(","):
        failures = 0
        results[mode] = []
        best[mode] = 0
        best_loss_only[mode] = 0
        for calls in steps:
            r = run_step(mode, calls, args)
            results[mode].append(r)
            print(
                f"  {mode:9s} {calls:5d} calls: loss {r.loss * 100:6.3f} %  "
                f"p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:7.2f} ms  "
                f"engine CPU {r.engine_cpu * 100:5.1f} %  phones CPU {r.phone_cpu * 100:5.1f} % "
                f"(max send lag {r.phone_max_lag_ms:.1f} ms)  {'ok' if r.passed else 'FAIL'}",
                flush=True,
            )
            if r.loss < 0.001:
                best_loss_only[mode] = max(best_loss_only[mode], calls)
            if r.passed:
                best[mode] = max(best[mode], calls)
            if r.loss >= 0.001:
                failures += 1
                if failures >= args.failures:
                    break
    figures: dict[str, Any] = {
        "benchmark": "bridged_calls_per_core",
        "step_seconds": args.duration,
        "cpu_model": cpu_model,
        "cpus": os.cpu_count(),
        "nice": args.nice,
        "load_average_at_start": round(load_at_start, 2),
        "best_calls": best,
        "best_calls_loss_only": best_loss_only,
        "steps": {
            mode: [
                {
                    "calls": r.calls,
                    "loss_pct": round(r.loss * 100, 4),
                    "p50_ms": round(r.p50_ms, 3),
                    "p99_ms": round(r.p99_ms, 3),
                    "engine_cpu_pct": round(r.engine_cpu * 100, 1),
                    "phones_cpu_pct": round(r.phone_cpu * 100, 1),
                    "phones_max_send_lag_ms": round(r.phone_max_lag_ms, 2),
                    "passed": r.passed,
                }
                for r in rs
            ]
            for mode, rs in results.items()
        },
    }
    for label, table in (("", best), ("_loss_only", best_loss_only)):
        if table.get("relay"):
            for mode in table:
                if mode != "relay":
                    figures[f"{mode}_fraction_of_relay{label}"] = round(
                        table[mode] / table["relay"], 3
                    )
    figures["phones"] = "c" if args.c_phone else "python"
    shutil.rmtree(build_dir, ignore_errors=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

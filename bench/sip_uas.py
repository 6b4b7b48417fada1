"""A callee for the SIP benchmarks: answers every INVITE at once (no media), on uvloop.

Run by bench/sip_calls.py; prints "READY <port>" when listening.
    python bench/sip_uas.py --host 127.0.0.1 --port 0
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from sipspeak.sip.events import Address
from sipspeak.sip.sdp import answer_offer, build_offer, extract_sdp, parse_sdp
from sipspeak.sip.session import IncomingCall
from sipspeak.sip.transport import SipEndpoint
from sipspeak.sip.useragent import UserAgent


async def serve(host: str, port: int) -> None:
    endpoint = SipEndpoint(UserAgent(local=Address("UDP", host, port), user="bench"))
    local = await endpoint.listen_udp(host, port)
    fallback = build_offer(
        address=host, port=40000, session_id=1, version=1
    ).serialize()

    def on_event(event: object) -> None:
        if not isinstance(event, IncomingCall):
            return
        session = event.session
        now = endpoint.loop.time()
        session.ring(now)
        offer = extract_sdp(
            event.request.headers.get("Content-Type"), event.request.body
        )
        if offer is None:
            body = fallback
        else:
            answer, _ = answer_offer(
                parse_sdp(offer), address=host, port=40000, session_id=1, version=1
            )
            body = answer.serialize()
        session.answer(body, now)

    endpoint.on_event = on_event
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        endpoint.loop.add_signal_handler(sig, stop.set)
    print(f"READY {local.port}", flush=True)
    await stop.wait()
    await endpoint.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.host, args.port))
    else:
        uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()

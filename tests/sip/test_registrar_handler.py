"""RegisterHandler: RFC 3261 §10.3 steps around auth and the binding table."""

from __future__ import annotations

import asyncio

from sipspeak.sip.auth import DigestServer, StoredSecret
from sipspeak.sip.digest import DigestClient
from sipspeak.sip.events import Address
from sipspeak.sip.message import SipRequest, SipResponse, parse_message
from sipspeak.sip.registrar import (
    ExtensionOffline,
    ExtensionOnline,
    Registrar,
    RegistrarEvent,
)
from sipspeak.sip.registrar_aio import RegisterHandler

SOURCE = Address("UDP", "10.0.0.5", 5062)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def register(
    user: str = "101",
    *,
    domain: str = "pbx.local",
    cseq: int = 1,
    expires: int = 120,
    extra: str = "",
) -> SipRequest:
    data = (
        f"REGISTER sip:{domain} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK" + str(cseq) + "\r\n"
        f"From: <sip:{user}@{domain}>;tag=a\r\n"
        f"To: <sip:{user}@{domain}>\r\n"
        "Call-ID: reg-1@10.0.0.5\r\n"
        f"CSeq: {cseq} REGISTER\r\n"
        f"Contact: <sip:{user}@10.0.0.5:5062>\r\n"
        f"Expires: {expires}\r\n{extra}"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    message = parse_message(data)
    assert isinstance(message, SipRequest)
    return message


async def lookup(user: str) -> StoredSecret | None:
    await asyncio.sleep(0)  # storage is async
    return {
        "101": StoredSecret.from_password("pw101"),
        "102": StoredSecret.from_password("pw102"),
    }.get(user)


def make(clock: Clock, events: list[RegistrarEvent]) -> RegisterHandler:
    return RegisterHandler(
        registrar=Registrar(min_expires=60),
        auth=DigestServer(realm="pbx.local", key=b"z" * 32),
        lookup=lookup,
        domains=["pbx.local"],
        clock=clock,
        on_event=events.append,
    )


async def login(
    handler: RegisterHandler, request_factory, client: DigestClient
) -> SipResponse:
    first = request_factory(1)
    challenge = await handler.handle(first, SOURCE)
    assert challenge.status == 401
    headers = client.begin("REGISTER", str(first.uri)).on_challenge(
        401, challenge.headers.get_all("WWW-Authenticate")
    )
    assert headers
    second = request_factory(2)
    for name, value in headers:
        second.headers.add(name, value)
    return await handler.handle(second, SOURCE)


async def test_register_then_expiry_task_reports_offline() -> None:
    clock, events = Clock(), []
    handler = make(clock, events)
    ok = await login(
        handler,
        lambda cseq: register(cseq=cseq),
        DigestClient(username="101", password="pw101"),
    )
    assert ok.status == 200 and ok.to.tag
    assert (ok.headers.get("Date") or "").endswith(" GMT")
    assert [str(c) for c in ok.contact] == ["<sip:101@10.0.0.5:5062>;expires=120"]
    assert [type(e) for e in events] == [ExtensionOnline]
    binding = handler.registrar.lookup("101", clock.now)[0]
    assert binding.source == SOURCE
    task = asyncio.create_task(handler.run_expiry())
    try:
        await asyncio.sleep(0.01)
        assert len(events) == 1
        clock.now += 121  # the deadline passed: the task purges at once
        handler.reschedule()
        for _ in range(100):
            if len(events) == 2:
                break
            await asyncio.sleep(0.01)
        assert isinstance(events[-1], ExtensionOffline)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_phone_cannot_register_someone_elses_extension() -> None:
    clock, events = Clock(), []
    handler = make(clock, events)
    response = await login(
        handler,
        lambda cseq: register("102", cseq=cseq),
        DigestClient(username="101", password="pw101"),
    )
    assert response.status == 403 and "address-of-record" in response.reason
    assert handler.registrar.lookup("102", clock.now) == [] and events == []


async def test_unknown_domain_and_require() -> None:
    handler = make(Clock(), [])
    assert (
        await handler.handle(register(domain="other.example"), SOURCE)
    ).status == 404
    response = await handler.handle(register(extra="Require: path, gruu\r\n"), SOURCE)
    assert (
        response.status == 420 and response.headers.get("Unsupported") == "path, gruu"
    )


async def test_423_reaches_the_phone() -> None:
    handler = make(Clock(), [])
    response = await login(
        handler,
        lambda cseq: register(cseq=cseq, expires=10),
        DigestClient(username="101", password="pw101"),
    )
    assert response.status == 423 and response.headers.get("Min-Expires") == "60"


async def test_operator_invite_is_challenged_with_407() -> None:
    from sipspeak.sip.digest import RequestAuthenticator
    from sipspeak.sip.registrar_aio import authenticate_request

    invite = parse_message(
        b"INVITE sip:79001234567@pbx.local SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKinv1\r\n"
        b"From: <sip:101@pbx.local>;tag=a\r\nTo: <sip:79001234567@pbx.local>\r\n"
        b"Call-ID: inv-1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    assert isinstance(invite, SipRequest)
    clock = Clock()
    auth = DigestServer(realm="pbx.local", key=b"z" * 32)
    kwargs = {"source": SOURCE, "lookup": lookup, "clock": clock, "proxy": True}
    challenge = await authenticate_request(auth, invite, **kwargs)
    assert isinstance(challenge, SipResponse) and challenge.status == 407
    assert len(challenge.headers.get_all("Proxy-Authenticate")) == 2
    headers = RequestAuthenticator(DigestClient(username="101", password="pw101"))(
        invite, challenge
    )
    assert headers
    for name, value in headers:
        invite.headers.add(name, value)
    assert await authenticate_request(auth, invite, **kwargs) == "101"


async def test_locked_out_phone_gets_403_with_retry_after() -> None:
    clock = Clock()
    handler = RegisterHandler(
        registrar=Registrar(),
        auth=DigestServer(
            realm="pbx.local", key=b"z" * 32, max_failures=1, lockout_seconds=90
        ),
        lookup=lookup,
        clock=clock,
    )
    locked = await login(
        handler,
        lambda cseq: register(cseq=cseq),
        DigestClient(username="101", password="bad"),
    )
    assert locked.status == 403 and locked.headers.get("Retry-After") == "90"
    clock.now += 30
    again = await handler.handle(register(cseq=3), SOURCE)
    assert again.status == 403 and again.headers.get("Retry-After") == "60"

"""A mail server stand-in for the e-mail tests: enough of SMTP (RFC 5321, AUTH PLAIN of
RFC 4954) on 127.0.0.1 to take a message the way a real server does."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest


@dataclass
class MailServer:
    port: int = 0
    user: str = "cc"
    password: str = "mail-secret"
    refuse: set[str] = field(default_factory=set)
    """Recipients answered 550."""
    received: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")

        say("220 standin ESMTP")
        sender, recipients, authed = "", [], False
        while line := (await reader.readline()).decode(errors="replace").rstrip("\r\n"):
            verb, _, rest = line.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                say("250-standin")
                say("250 AUTH PLAIN")
            elif verb == "AUTH":
                _, _, blob = rest.partition(" ")
                parts = base64.b64decode(blob).split(b"\0")
                authed = parts[1:] == [self.user.encode(), self.password.encode()]
                say("235 ok" if authed else "535 authentication failed")
            elif verb == "MAIL":
                if not authed:
                    say("530 authentication required")
                    continue
                sender = rest.partition(":")[2].strip("<> ")
                say("250 ok")
            elif verb == "RCPT":
                address = rest.partition(":")[2].strip("<> ")
                if address in self.refuse:
                    say("550 no such user")
                else:
                    recipients.append(address)
                    say("250 ok")
            elif verb == "DATA":
                say("354 go on")
                await writer.drain()
                data = b""
                while (chunk := await reader.readline()) not in (b".\r\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                parsed = message_from_bytes(data, policy=policy.default)
                assert isinstance(parsed, EmailMessage)
                self.received.append((sender, recipients, parsed))
                say("250 queued")
            elif verb == "QUIT":
                say("221 bye")
                await writer.drain()
                break
            else:
                say("250 ok")
            await writer.drain()
        writer.close()


@pytest.fixture
async def mail_server() -> AsyncIterator[MailServer]:
    standin = MailServer()
    standin.server = await asyncio.start_server(standin.handle, "127.0.0.1", 0)
    standin.port = standin.server.sockets[0].getsockname()[1]
    yield standin
    standin.server.close()
    await standin.server.wait_closed()

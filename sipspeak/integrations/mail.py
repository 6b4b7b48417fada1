"""E-mail from a client card (manual §5.2.7: «Во вкладках SMS, E-mail можно задать шаблон …
для отправки напрямую из карточки»).

The project's e-mail template is plain text with placeholders
(:mod:`sipspeak.integrations.placeholders`).  A first line ``Тема: …`` (or ``Subject: …``) is the subject, else the project's
name.  :func:`render` and :func:`message` are pure; :func:`send` hands the message to the
``[smtp]`` server (RFC 5321; STARTTLS RFC 3207 or implicit TLS; AUTH RFC 4954 when a login
is set) in a worker thread with the configured timeout.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid, parseaddr

from sipspeak.config import Config
from sipspeak.i18n import Text

from .placeholders import fill

__all__ = ["Draft", "MailError", "configured", "message", "render", "send"]

_SUBJECT = re.compile(r"^(?:Тема|Subject)\s*:\s*(.*)$", re.IGNORECASE)
MAX_SUBJECT = 300
MAX_BODY = 20_000


class MailError(Exception):
    """Why the e-mail did not go: a catalogue :class:`Text`."""


@dataclass(frozen=True, slots=True)
class Draft:
    subject: str
    body: str


def render(template: str, values: Mapping[str, str], *, default_subject: str) -> Draft:
    """The template with the card's values in: a draft to show, edit and send."""
    text = fill(template, values)
    lines = text.replace("\r\n", "\n").split("\n")
    found = _SUBJECT.match(lines[0]) if lines else None
    if found is not None:
        subject, body = found.group(1).strip(), "\n".join(lines[1:]).lstrip("\n")
    else:
        subject, body = default_subject, text
    return Draft(subject=subject[:MAX_SUBJECT], body=body[:MAX_BODY])


def configured(config: Config) -> bool:
    return bool(str(config.get("smtp", "host")).strip())


def valid_address(address: str) -> bool:
    _, found = parseaddr(address)
    return bool(re.fullmatch(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+", found)) and found == address.strip()


def message(config: Config, *, to: str, draft: Draft, to_name: str = "") -> EmailMessage:
    """The RFC 5322 message: From the configured address, To the contact, UTF-8 text."""
    sender = str(config.get("smtp", "from_address")).strip()
    if not sender:
        raise MailError(Text("mail.error.no_from"))
    if "\n" in draft.subject or "\r" in draft.subject:
        raise MailError(Text("mail.error.subject"))
    msg = EmailMessage()
    msg["From"] = sender
    name = " ".join(to_name.split())  # a name typed over several lines: one line
    msg["To"] = formataddr((name, to)) if name else to
    msg["Subject"] = draft.subject
    msg["Message-ID"] = make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2] or None)
    msg.set_content(draft.body)
    return msg


async def send(config: Config, msg: EmailMessage) -> None:
    """Deliver ``msg`` through the ``[smtp]`` server; :class:`MailError` with the reason."""
    await asyncio.to_thread(_send, config, msg)


def _send(config: Config, msg: EmailMessage) -> None:
    host = str(config.get("smtp", "host")).strip()
    port = int(config.get("smtp", "port"))
    timeout = float(config.get("smtp", "timeout"))
    security = str(config.get("smtp", "security"))
    user = str(config.get("smtp", "username"))
    try:
        client: smtplib.SMTP
        if security == "ssl":
            client = smtplib.SMTP_SSL(host, port, timeout=timeout,
                                      context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        with client:
            if security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if user:
                client.login(user, str(config.get("smtp", "password")))
            client.send_message(msg)
    except smtplib.SMTPAuthenticationError:
        raise MailError(Text("mail.error.auth")) from None
    except smtplib.SMTPNotSupportedError:
        raise MailError(Text("mail.error.starttls")) from None
    except smtplib.SMTPRecipientsRefused:
        raise MailError(Text("mail.error.recipient")) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(Text("mail.error.server", reason=str(exc) or type(exc).__name__)) from None

"""SMS from a client card through an HTTP gateway (manual §5.2.7, the «SMS» tab).

Russian SMS gateways take a message as an HTTP request with the number and the text in its
query (sms.ru, SMSC and the like), so ``[sms] url`` is such a URL with ``{to}`` (the number's
digits, no ``+``) and ``{text}`` (URL-encoded) in it; ``[sms] method`` POST sends the query as a
form instead.  The gateway took the message when it answered 2xx and, if ``success_text`` is
set, its answer contains that text.  :func:`request` and :func:`accepted` are pure;
:func:`send` does the HTTP with the configured timeout.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

import aiohttp

from sipspeak.config import Config
from sipspeak.i18n import Text

__all__ = ["MAX_TEXT", "SmsError", "SmsRequest", "accepted", "configured", "request", "send"]

MAX_TEXT = 1000
"""The longest SMS text sent (several segments; the gateway splits it)."""


class SmsError(Exception):
    """Why the SMS did not go: a catalogue :class:`Text`."""


@dataclass(frozen=True, slots=True)
class SmsRequest:
    method: str
    url: str
    form: tuple[tuple[str, str], ...] = ()


def configured(config: Config) -> bool:
    return bool(str(config.get("sms", "url")).strip())


def digits(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit())


def request(url_template: str, method: str, *, to: str, text: str) -> SmsRequest:
    """The gateway's request for one message to ``to`` (E.164, with or without ``+``)."""
    url = (url_template.replace("{to}", quote(digits(to), safe=""))
           .replace("{text}", quote(text, safe="")))
    if method != "POST":
        return SmsRequest(method="GET", url=url)
    parts = urlsplit(url)
    form = tuple(parse_qsl(parts.query, keep_blank_values=True))
    return SmsRequest(method="POST", url=urlunsplit(parts._replace(query="")), form=form)


def accepted(status: int, body: str, success_text: str) -> bool:
    return 200 <= status < 300 and (not success_text or success_text in body)


async def send(config: Config, *, to: str, text: str) -> None:
    """Hand the message to the gateway; :class:`SmsError` with the reason."""
    req = request(str(config.get("sms", "url")), str(config.get("sms", "method")), to=to,
                  text=text)
    timeout = aiohttp.ClientTimeout(total=float(config.get("sms", "timeout")))
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            if req.method == "POST":
                response = await session.post(req.url, data=list(req.form))
            else:
                response = await session.get(req.url)
            async with response:
                body = await response.text(errors="replace")
                status = response.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise SmsError(Text("sms.error.gateway", reason=str(exc) or type(exc).__name__)) \
            from None
    if not accepted(status, body, str(config.get("sms", "success_text"))):
        raise SmsError(Text("sms.error.refused", status=status, answer=body.strip()[:200]))

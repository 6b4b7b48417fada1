"""Outgoing webhooks: the events, the body, the signature and the retry schedule (sans-IO).

Each call event is POSTed to every active endpoint that takes its type as one JSON object::

    {"id": "4f0c…", "type": "call.ended", "timestamp": "2026-03-02T09:15:04.120Z",
     "occurred_at": 1772442904120, "data": {"call_id": …, "outcome": "answered", …}}

``id`` names the event (the same in every retry, so a receiver can drop a repeat),
``timestamp`` / ``occurred_at`` say when it happened (ISO 8601 UTC / epoch ms).  The body is
signed with the endpoint's secret: ``X-SipSpeak-Signature: sha256=<hex>`` is HMAC-SHA256
(RFC 2104) of the exact body bytes, which the receiver recomputes and compares in constant
time (:func:`verify`).  Any 2xx answer takes the event; anything else, a timeout or no
answer is tried again after :data:`RETRY_DELAYS_MS`; after the last the delivery has failed.

Sending, storing and retrying are :mod:`sipspeak.integrations.webhook_outbox`'s; turning the
bus's call events into webhook events is :mod:`sipspeak.integrations.webhook_events`'s.
Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "DEFAULT_EVENTS", "EVENT_HEADER", "EVENT_TYPES", "ID_HEADER", "RETRY_DELAYS_MS",
    "SIGNATURE_HEADER", "TEST_EVENT", "delivered", "envelope", "iso_time", "retry_delay_ms",
    "sign", "verify",
]

EVENT_TYPES: tuple[str, ...] = (
    "call.started",        # a call began: our INVITE went out, or a provider's came in
    "call.inbound",        # an inbound call was taken into its project's queue
    "call.ringing",        # the customer's phone rings (180/183)
    "call.answered",       # the customer answered (or we answered an inbound call)
    "call.amd",            # the answering-machine detector's verdict
    "call.offered",        # an operator is being rung for the call
    "call.offer_ended",    # that ring is over (answered elsewhere, declined, timed out)
    "call.bridged",        # an operator joined the customer
    "call.hold",           # a side put the call on hold or took it off
    "call.dtmf",           # keys pressed
    "call.listening",      # a supervisor listens in
    "call.listening_ended",
    "call.ended",          # the call ended: outcome, durations
)
"""Every event an endpoint may take, in the order a call goes through them."""

DEFAULT_EVENTS: tuple[str, ...] = (
    "call.started", "call.offered", "call.answered", "call.bridged", "call.ended")
"""What a new endpoint takes unless told otherwise: the call's life, not every key press."""

TEST_EVENT = "webhook.test"
"""The event of the settings page's «Проверить»: sent at once, never stored or retried."""

SIGNATURE_HEADER = "X-SipSpeak-Signature"
EVENT_HEADER = "X-SipSpeak-Event"
ID_HEADER = "X-SipSpeak-Event-Id"

RETRY_DELAYS_MS: tuple[int, ...] = (
    10_000, 60_000, 5 * 60_000, 15 * 60_000, 60 * 60_000, 3 * 60 * 60_000)
"""After a failed attempt wait this long; after the last, the delivery has failed (seven
attempts over about 4 h 21 min)."""


def iso_time(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC with milliseconds (``2026-03-02T09:15:04.120Z``)."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def envelope(*, event_id: str, event_type: str, at_ms: int, data: Mapping[str, Any]) -> str:
    """The body of one event for one endpoint: compact JSON, Cyrillic kept as is (UTF-8)."""
    return json.dumps({"id": event_id, "type": event_type, "timestamp": iso_time(at_ms),
                       "occurred_at": at_ms, "data": dict(data)},
                      ensure_ascii=False, separators=(",", ":"))


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does: recompute the signature and compare in constant time."""
    return header is not None and hmac.compare_digest(sign(secret, body), header.strip())


def delivered(status: int) -> bool:
    """Whether the receiver took the event: any 2xx.  A redirect is not followed, so an
    event only ever goes to the address the administrator set: 3xx is a failure."""
    return 200 <= status < 300


def retry_delay_ms(attempts_done: int) -> int | None:
    """How long to wait after the ``attempts_done``-th failed attempt; None: no more."""
    if attempts_done < 1 or attempts_done > len(RETRY_DELAYS_MS):
        return None
    return RETRY_DELAYS_MS[attempts_done - 1]

"""The webhooks outbox: call events are stored for each endpoint first, then delivered.

Two owned tasks.  The *collector* follows the bus's call events (a bounded subscription:
publishing never waits for it, so the call path is never slowed by a receiver or by the
database), turns each into webhook events (:mod:`~sipspeak.integrations.webhook_events`)
and stores one delivery per active endpoint that takes the type, all in one transaction.
The *sender* delivers what is due: at most ``concurrency`` requests at once and one per
endpoint at a time (a receiver that hangs holds one slot, not all of them), each signed
with the endpoint's secret (:func:`~sipspeak.integrations.webhooks.sign`).  A slot takes an
endpoint's next :data:`DUE_BATCH` due deliveries in one indexed read and sends them in
order, so a backlog of thousands (a receiver that was down for an hour) costs a read per
batch, not per delivery; endpoints waiting for a slot get it oldest delivery first.
A 2xx answer marks the delivery sent; anything else is tried again after
:data:`~sipspeak.integrations.webhooks.RETRY_DELAYS_MS`, and after the last the delivery
has failed and the administrators are told — once per outage of the endpoint, not once per
event (the endpoint is marked failing until a delivery gets through again).

Stored first, an event survives a restart (what was being sent when the process stopped is
sent again: the receiver sees the same event id) and a receiver that is down for hours.
Each outcome is published on the bus as ``webhook.delivery`` (id, endpoint, event, state).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from sipspeak import __version__
from sipspeak.events import Event, EventBus
from sipspeak.i18n import Text
from sipspeak.storage import Database, NotFound, StorageError, now_ms
from sipspeak.storage.models import Project, Webhook, WebhookDelivery

from .webhook_events import CallTracker, Occurrence, event_data
from .webhooks import (
    EVENT_HEADER,
    ID_HEADER,
    SIGNATURE_HEADER,
    TEST_EVENT,
    delivered,
    envelope,
    retry_delay_ms,
    sign,
)

__all__ = ["Answer", "WebhookOutbox", "post_event", "send_test"]

log = logging.getLogger(__name__)

IDLE_CHECK_S = 60.0
"""Without a wake-up the sender looks for due deliveries this often."""
KEEP_MS = 30 * 24 * 3600 * 1000
"""Deliveries that ended (sent or failed) are forgotten after this long."""
PRUNE_EVERY_MS = 3600 * 1000
DUE_BATCH = 100
"""An endpoint's due deliveries are read this many at a time, in the order they are sent."""
BUS_BACKLOG = 10_000
"""Call events waiting for the collector; beyond, the oldest are dropped (and logged)."""
ANSWER_EXCERPT = 500
"""How much of a receiver's answer is kept (the settings page shows it)."""
DRAIN_S = 5.0
"""At the stop, the collector stores what the bus gave it before (the ends of the calls the
stop itself ended) for at most this long."""
_STOP = "webhooks.stop"


@dataclass(frozen=True, slots=True)
class Answer:
    """What one POST came to: the receiver's status and the start of its body, or why there
    was no answer (``error``, in the library's words)."""

    status: int | None
    body: str
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and delivered(self.status)

    @property
    def reason(self) -> str:
        """One line for the log, the delivery row and the administrators' notification."""
        if self.status is None:
            return self.error
        return f"HTTP {self.status}: {self.body}" if self.body else f"HTTP {self.status}"


def new_event_id() -> str:
    return secrets.token_hex(16)


async def post_event(session: aiohttp.ClientSession, *, url: str, secret: str, body: str,
                     event_id: str, event_type: str) -> Answer:
    """POST one signed event; redirects are not followed (see ``delivered``)."""
    raw = body.encode("utf-8")
    headers = {"Content-Type": "application/json; charset=utf-8",
               "User-Agent": f"SipSpeak-Webhooks/{__version__}",
               EVENT_HEADER: event_type, ID_HEADER: event_id,
               SIGNATURE_HEADER: sign(secret, raw)}
    try:
        async with session.post(url, data=raw, headers=headers,
                                allow_redirects=False) as response:
            text = await response.content.read(ANSWER_EXCERPT * 4)
            excerpt = text.decode("utf-8", errors="replace").strip()[:ANSWER_EXCERPT]
            return Answer(status=response.status, body=excerpt)
    except TimeoutError:
        return Answer(status=None, body="", error="timeout")
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        return Answer(status=None, body="", error=str(exc) or type(exc).__name__)


async def send_test(webhook: Webhook, *, timeout_s: float, at: int | None = None) -> Answer:
    """The settings page's «Проверить»: a ``webhook.test`` event to the endpoint now, and
    what it answered.  Nothing is stored or retried."""
    event_id = new_event_id()
    body = envelope(event_id=event_id, event_type=TEST_EVENT, at_ms=at or now_ms(),
                    data={"webhook_id": webhook.id, "name": webhook.name,
                          "events": list(webhook.event_types)})
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        return await post_event(session, url=webhook.url, secret=webhook.secret, body=body,
                                event_id=event_id, event_type=TEST_EVENT)


class WebhookOutbox:
    """See the module docstring.  ``start()``, then ``aclose()`` at shutdown."""

    def __init__(self, db: Database, bus: EventBus, *, timeout_s: float = 10.0,
                 concurrency: int = 4, clock: Callable[[], int] = now_ms,
                 ids: Callable[[], str] = new_event_id) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._db = db
        self._bus = bus
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._concurrency = concurrency
        self._clock = clock
        self._ids = ids
        self._tracker = CallTracker()
        self._wake = asyncio.Event()
        self._collector: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._subscription = bus.subscribe("call.", maxsize=BUS_BACKLOG)
        self._dropped = 0
        self._pruned_at = 0
        self._slot_wanted_since: int | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        loop = asyncio.get_running_loop()
        self._collector = loop.create_task(self._collect(), name="webhooks-collect")
        self._sender = loop.create_task(self._send(), name="webhooks-send")

    async def aclose(self) -> None:
        """Stop sending at once (what is in flight is sent again after a restart); store
        the call events already published, then stop collecting."""
        self._subscription.close()
        tasks = [t for t in (self._sender, self._collector) if t is not None]
        if self._sender is not None:
            self._sender.cancel()
        if self._collector is not None:
            self._subscription.offer(Event(_STOP))
            try:
                await asyncio.wait_for(asyncio.shield(self._collector), DRAIN_S)
            except TimeoutError:
                log.error("webhooks: call events still unstored at the stop are dropped")
            self._collector.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def wake(self) -> None:
        """Look for due deliveries now (one was stored, or the clock was moved on)."""
        self._wake.set()

    # -- the collector ----------------------------------------------------------------------
    async def _collect(self) -> None:
        while True:
            event = await self._subscription.get()
            if event.topic == _STOP:
                return
            if self._subscription.dropped != self._dropped:
                log.error("webhooks: %d call event(s) dropped, the outbox fell behind",
                          self._subscription.dropped - self._dropped)
                self._dropped = self._subscription.dropped
            try:
                await self._take(event.topic, event.data)
            except (StorageError, ValueError, TypeError) as exc:
                log.error("webhooks: %s not stored: %s", event.topic, exc)
            except Exception:
                log.exception("webhooks: %s not stored", event.topic)

    async def _take(self, topic: str, data: dict[str, object]) -> None:
        call_id = data.get("call_id")
        started_at = None
        if isinstance(call_id, str) and not self._tracker.known(call_id):
            started_at = await self._started_at(data.get("cdr_id"))
        for occurrence in self._tracker.take(topic, data, now=self._clock(),
                                             started_at=started_at):
            await self._store(occurrence)

    async def _started_at(self, cdr_id: object) -> int | None:
        """When the call began by its record (opened before its first event)."""
        if not isinstance(cdr_id, int):
            return None
        try:
            return (await self._db.calls.get(cdr_id)).started_at
        except NotFound:
            return None

    async def _store(self, occurrence: Occurrence) -> None:
        hooks = await self._db.webhooks.subscribed(occurrence.type)
        if not hooks:
            return
        project = await self._project(occurrence.project_id)
        operator = await self._operator_name(occurrence.operator_id)
        event_id = self._ids()
        bodies: dict[bool, str] = {}
        rows = []
        for hook in hooks:
            if hook.full_numbers not in bodies:
                data = event_data(occurrence, project=project, operator_name=operator,
                                  full_numbers=hook.full_numbers)
                bodies[hook.full_numbers] = envelope(event_id=event_id,
                                                     event_type=occurrence.type,
                                                     at_ms=occurrence.at, data=data)
            rows.append((hook.id, event_id, occurrence.type, bodies[hook.full_numbers]))
        await self._db.webhook_deliveries.add_many(rows, now=self._clock())
        self._wake.set()

    async def _project(self, project_id: int | None) -> Project | None:
        if project_id is None:
            return None
        try:
            return await self._db.projects.get(project_id, include_deleted=True)
        except NotFound:
            return None

    async def _operator_name(self, user_id: int | None) -> str:
        if user_id is None:
            return ""
        try:
            return (await self._db.users.get(user_id, include_deleted=True)).full_name
        except NotFound:
            return ""

    # -- the sender ---------------------------------------------------------------------------
    async def _send(self) -> None:
        busy: set[int] = set()  # endpoints with a batch in hand
        async with asyncio.TaskGroup() as group:
            while True:
                wait = IDLE_CHECK_S
                try:
                    await self._prune()
                    now = self._clock()
                    first_due = await self._db.webhook_deliveries.first_due()
                    waiting = sorted((at, hook) for hook, at in first_due.items()
                                     if at <= now and hook not in busy)
                    while waiting and len(busy) < self._concurrency:
                        _, hook = waiting.pop(0)
                        busy.add(hook)
                        group.create_task(self._work(hook, now, busy))
                    # Due ones without a slot wait for a batch to end (which wakes the loop).
                    self._slot_wanted_since = waiting[0][0] if waiting else None
                    later = [at for at in first_due.values() if at > now]
                    if later:
                        wait = min(wait, (min(later) - now) / 1000)
                except StorageError as exc:
                    log.error("webhooks outbox: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                self._wake.clear()

    async def _prune(self) -> None:
        now = self._clock()
        if now - self._pruned_at < PRUNE_EVERY_MS:
            return
        self._pruned_at = now
        gone = await self._db.webhook_deliveries.prune(before=now - KEEP_MS)
        if gone:
            log.info("webhooks: %d old deliveries forgotten", gone)

    async def _work(self, webhook_id: int, now: int, busy: set[int]) -> None:
        """One endpoint's next batch of due deliveries, one after another.  The batch ends
        early when an endpoint waiting for a slot has a delivery due before this one's
        next (so a long backlog takes its turn oldest first, as one delivery at a time
        would), and when the endpoint is gone."""
        try:
            batch = await self._db.webhook_deliveries.due(webhook_id=webhook_id, now=now,
                                                          limit=DUE_BATCH)
            for n, delivery in enumerate(batch):
                wanted = self._slot_wanted_since
                if n and wanted is not None and wanted < delivery.next_attempt_at:
                    self._slot_wanted_since = None  # one slot is handed over per waiter
                    break
                if not await self._attempt(delivery):
                    break
        except StorageError as exc:
            log.error("webhook %s: %s", webhook_id, exc)
        except Exception:
            log.exception("webhook %s", webhook_id)
        finally:
            busy.discard(webhook_id)
            self._wake.set()

    async def _attempt(self, delivery: WebhookDelivery) -> bool:
        """Deliver one; False when the rest of its batch should wait (the endpoint is gone,
        or storage failed)."""
        try:
            return await self._deliver(delivery)
        except StorageError as exc:
            log.error("webhook delivery %s: %s", delivery.id, exc)
        except Exception:
            log.exception("webhook delivery %s", delivery.id)
        return False

    async def _deliver(self, delivery: WebhookDelivery) -> bool:
        """Send one delivery and store how it went; False when its endpoint is gone."""
        assert self._session is not None, "start() the outbox first"
        try:
            hook = await self._db.webhooks.get(delivery.webhook_id)
        except NotFound:
            return False  # removed meanwhile: its deliveries went with it
        if not hook.active:
            await self._db.webhook_deliveries.failed(delivery.id, status=None,
                                                     error=str(Text("webhooks.error.off")))
            self._published(delivery, "failed")
            return True
        started = time.monotonic()
        answer = await post_event(self._session, url=hook.url, secret=hook.secret,
                                  body=delivery.body, event_id=delivery.event_id,
                                  event_type=delivery.event_type)
        if answer.ok:
            assert answer.status is not None
            await self._db.webhook_deliveries.sent(delivery.id, status=answer.status,
                                                   at=self._clock())
            await self._db.webhooks.recovered(hook.id)
            log.debug("webhook %s: %s %s delivered in %.0f ms", hook.id, delivery.event_type,
                      delivery.event_id, (time.monotonic() - started) * 1000)
            self._published(delivery, "sent", status=answer.status)
            return True
        reason = answer.reason
        delay = retry_delay_ms(delivery.attempts + 1)
        if delay is not None:
            log.warning("webhook %s (%s): %s %s not delivered (%s); next attempt in %d s",
                        hook.id, hook.url, delivery.event_type, delivery.event_id, reason,
                        delay // 1000)
            await self._db.webhook_deliveries.retry(delivery.id, status=answer.status,
                                                    error=reason,
                                                    next_attempt_at=self._clock() + delay)
            await self._db.webhooks.note_error(hook.id, reason)
            self._published(delivery, "pending", status=answer.status, error=reason)
            return True
        await self._db.webhook_deliveries.failed(delivery.id, status=answer.status,
                                                 error=reason)
        log.error("webhook %s (%s): %s %s failed after %d attempts: %s", hook.id, hook.url,
                  delivery.event_type, delivery.event_id, delivery.attempts + 1, reason)
        if await self._db.webhooks.failing(hook.id, at=self._clock(), error=reason):
            await self._tell_admins(hook, reason)
        self._published(delivery, "failed", status=answer.status, error=reason)
        return True

    async def _tell_admins(self, hook: Webhook, reason: str) -> None:
        note = Text("webhooks.note.failed", name=hook.name, url=hook.url, reason=reason)
        for user in await self._db.users.list(role="admin"):
            await self._db.notifications.add(text=note.render(user.language), user_id=user.id,
                                             level="error")

    def _published(self, delivery: WebhookDelivery, state: str, *, status: int | None = None,
                   error: str = "") -> None:
        self._bus.publish("webhook.delivery", delivery_id=delivery.id,
                          webhook_id=delivery.webhook_id, event_id=delivery.event_id,
                          event_type=delivery.event_type, state=state, status=status,
                          error=error)

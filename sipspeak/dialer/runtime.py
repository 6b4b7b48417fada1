"""The campaign runtime: the asyncio shell that makes launched projects dial (one per process).

Wiring as the package docstring of :mod:`sipspeak.dialer` describes it; every decision is made
by the sans-IO parts (pacers, :class:`~sipspeak.dialer.acd.AcdQueue`,
:class:`~sipspeak.dialer.agents.AgentRoster`, :class:`~sipspeak.dialer.retries.RetryPolicy`,
:func:`~sipspeak.dialer.selection.pick_contacts`); this module only carries inputs to them and
their outputs to the call layer and to storage.

* **Time.** ``now_ms`` is the loop's monotonic clock mapped once, at start, to epoch
  milliseconds. One ``loop.call_at`` is armed for the earliest of the pacing tick, every queue's
  ``get_timer()`` and the roster's ``get_timer()`` (wrap-up limits).
* **Inputs.** Call and operator events come from the call layer through
  :meth:`CampaignRuntime.on_call_event` / :meth:`CampaignRuntime.on_operator_event` (plain
  callbacks, handled at once). From the bus: ``agent.state`` (the workspace's status buttons:
  ``available`` / ``pause`` / ``dnd`` / ``offline``, plus ``card_saved`` and ``logged_out``),
  ``projects.changed`` (the launch switch or settings changed: :meth:`CampaignRuntime.reload`),
  ``call.inbound`` (an answered inbound call for a project's queue), and the ``call.*`` events
  of operators' own calls (``kind`` manual / click: «Слушает гудки», «В разговоре»).
* **Storage.** Every write and every pacing pick runs on one owned worker task, in order: due
  operator tasks are dialled for their own operators first, then the pacer's count is filled
  with callbacks and the base (:mod:`sipspeak.dialer.runtime_dialling`: read, filtered by
  :func:`~sipspeak.dialer.selection.pick_contacts`, claimed atomically ('dialing') and only
  then originated); a finished dial writes ``dial_state``, ``attempts``, ``last_call_at`` and
  ``next_attempt_at``; a task's call bridged to an operator closes the task (``task.done`` on
  the bus); every closed operator interval goes to ``operator_intervals`` and to the bus as
  ``agent.interval``.
* **Stopping** a project turns its run switch off at once: no new call starts, calls in
  progress finish and their outcomes are still written; the campaign is dropped when idle.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Final

from sipspeak.dialer.acd import (
    AbandonCall,
    BridgeCall,
    QueueAction,
    RingOperator,
    StartHoldMusic,
    StopRinging,
)
from sipspeak.dialer.agents import (
    AgentRoster,
    AgentState,
    AgentStateInterval,
    AgentTrigger,
)
from sipspeak.dialer.campaign import (
    Campaign,
    CampaignConfigError,
    Dial,
    build_campaign,
    dial_state_after,
)
from sipspeak.dialer.monitoring import Board, OperatorLine, board, operator_line
from sipspeak.dialer.ports import (
    AmdResult,
    AmdVerdict,
    CallAnswered,
    CallControl,
    CallEnded,
    CallEvent,
    CallOutcome,
    CallRinging,
    OperatorAnswered,
    OperatorEvent,
    OperatorRinger,
)
from sipspeak.dialer.predictive import PredictivePacer
from sipspeak.dialer.runtime_dialling import CampaignDialler
from sipspeak.dialer.runtime_worker import StorageWorker
from sipspeak.dialer.statuses import STATUS_TRIGGERS, OperatorStatuses
from sipspeak.events import Event, EventBus, Subscription
from sipspeak.storage import Database, NotFound, now_ms

__all__ = ["STATUS_TRIGGERS", "CampaignRuntime"]

log = logging.getLogger(__name__)

MIN_OFFER_MS: Final = 1000
"""A refused offer is passed on no sooner than this after the ring started (see
:meth:`CampaignRuntime.on_operator_event`)."""

_ENDED_MEMORY = 1000

class CampaignRuntime:
    """See the module docstring. Start with :meth:`start`, stop with :meth:`aclose`."""

    def __init__(
        self,
        *,
        db: Database,
        bus: EventBus,
        calls: CallControl,
        ringer: OperatorRinger,
        wrap_up_limit_ms: int | None = 30_000,
        tick_ms: int = 1000,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        if tick_ms <= 0:
            raise ValueError(f"tick must be positive, got {tick_ms} ms")
        self._db = db
        self._bus = bus
        self._calls = calls
        self._ringer = ringer
        self._tick_ms = tick_ms
        self._clock = clock
        self.roster = AgentRoster(wrap_up_limit_ms=wrap_up_limit_ms)
        self.campaigns: dict[int, Campaign] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._epoch_ms = 0
        self._loop_t0 = 0.0
        self._last_now = 0
        self._next_tick_ms = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: int | None = None
        self._worker = StorageWorker("campaigns: storage")
        self._listener: asyncio.Task[None] | None = None
        self._pace_pending = False
        self._dialling = False
        self._rings: dict[str, tuple[int, int]] = {}  # ring id -> project id, rung at
        self._held: dict[str, asyncio.TimerHandle] = {}
        self._built_from: dict[int, object] = {}
        self._statuses = OperatorStatuses(self.roster)
        self._ended_unknown: OrderedDict[str, None] = OrderedDict()
        self._dialler = CampaignDialler(db=db, bus=bus, calls=calls, roster=self.roster,
                                        clock=self.now_ms, dialling=lambda: self._dialling)

    # --- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._epoch_ms = self._clock()
        self._loop_t0 = loop.time()
        self._last_now = self._epoch_ms
        self._next_tick_ms = self._epoch_ms
        released = await self._db.contacts.release_stale_claims(now=self._epoch_ms)
        if released:
            log.warning("%d contact(s) left mid-dial by the previous run are due again", released)
        subscription = self._bus.subscribe("agent.state", "projects.changed", "call.",
                                           maxsize=10_000)
        self._worker.start()
        self._listener = loop.create_task(self._listen(subscription), name="campaigns: bus")
        self._dialling = True
        await self.reload()

    def stop_dialling(self) -> None:
        """No new calls from now on (the process is stopping); events are still handled."""
        self._dialling = False

    async def aclose(self) -> None:
        """Finish the queued storage writes, then stop the tasks and the timer."""
        self._dialling = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for held in self._held.values():
            held.cancel()
        self._held.clear()
        self._drain_intervals()
        if self._worker.running:
            # Every operator's current state, closed now: the status history stays complete.
            now = self.now_ms()
            still_open = [m.open_interval(now) for m in self.roster.machines()]
            self._worker.enqueue(lambda: self._write_intervals(still_open))
        await self._worker.aclose()
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None

    async def reload(self) -> None:
        """Re-read the projects: launched ones dial, stopped ones stop at once. The web layer
        calls this (or publishes ``projects.changed``) after the launch switch flips."""
        await self._worker.submit(self._load)

    def stop_project(self, project_id: int) -> None:
        """Stop a project's dialling now, before storage is read again: a pick under way
        places no call for it (the web layer calls this, then :meth:`reload`, when the launch
        switch goes off; ``projects.changed`` with ``launched=False`` does the same)."""
        campaign = self.campaigns.get(project_id)
        if campaign is not None and campaign.switch.running:
            campaign.switch.stop()
            log.info("project %s stopped: no new calls", project_id)

    async def settle(self) -> None:
        """Wait until every storage job queued so far is done (tests, shutdown)."""
        await self._worker.join()

    def now_ms(self) -> int:
        """The runtime's clock: monotonic, in epoch milliseconds, never going back."""
        loop = self._loop
        if loop is None:
            return self._clock()
        now = self._epoch_ms + int((loop.time() - self._loop_t0) * 1000)
        self._last_now = max(self._last_now, now)
        return self._last_now

    def _loop_time(self, at_ms: int) -> float:
        return self._loop_t0 + (at_ms - self._epoch_ms) / 1000

    # --- the bus ------------------------------------------------------------------------------

    async def _listen(self, subscription: Subscription) -> None:
        try:
            while True:
                event = await subscription.get()
                try:
                    self._on_bus_event(event)
                except Exception:
                    log.exception("campaigns: bus event %s failed", event.topic)
        finally:
            subscription.close()

    def _on_bus_event(self, event: Event) -> None:
        if event.topic == "agent.state":
            user_id, state = event.data.get("user_id"), event.data.get("state")
            if isinstance(user_id, int) and isinstance(state, str):
                self.set_agent_status(user_id, state)
        elif event.topic == "projects.changed":
            project_id = event.data.get("project_id")
            if event.data.get("launched") is False and isinstance(project_id, int):
                self.stop_project(project_id)
            self._worker.enqueue(self._load)
        elif event.topic == "call.inbound":
            call_id, project_id = event.data.get("call_id"), event.data.get("project_id")
            if isinstance(call_id, str) and isinstance(project_id, int):
                self._worker.enqueue(lambda: self._inbound(call_id, project_id))
        elif event.data.get("kind") in ("manual", "click"):
            self._operator_call(event)

    def _operator_call(self, event: Event) -> None:
        """An operator's own call (from his phone, or click-to-call) moves him through
        «Слушает гудки» and «В разговоре», so that no queue offers him a call meanwhile."""
        operator_id, call_id = event.data.get("operator_id"), event.data.get("call_id")
        if not isinstance(operator_id, int) or not isinstance(call_id, str):
            return
        if self._statuses.own_call(event.topic, operator_id, call_id, self.now_ms()):
            self._after_change()

    # --- projects -----------------------------------------------------------------------------

    async def _build(self, project_id: int) -> Campaign | None:
        """The campaign of a stored project; the one already running if nothing changed, so
        that a pacer keeps what it measured."""
        db = self._db
        try:
            project = await db.projects.get(project_id)
        except NotFound:
            return None
        intervals = await db.projects.intervals(project_id)
        operator_ids = await db.projects.operator_ids(project_id)
        key: object = (
            dataclasses.replace(project, launched=False, updated_at=0),
            tuple(intervals),
            tuple(operator_ids),
        )
        current = self.campaigns.get(project_id)
        if current is not None and self._built_from.get(project_id) == key:
            return current
        try:
            campaign = build_campaign(project, intervals=intervals, operator_ids=operator_ids,
                                      roster=self.roster)
        except CampaignConfigError as exc:
            log.error("project %s cannot dial: %s", project_id, exc)
            return None
        self._built_from[project_id] = key
        return campaign

    async def _load(self) -> None:
        launched = {p.id for p in await self._db.projects.list(launched=True)}
        for project_id, campaign in list(self.campaigns.items()):
            if project_id not in launched:
                if campaign.switch.running:
                    campaign.switch.stop()
                    log.info("project %s stopped: no new calls", project_id)
                if campaign.idle:
                    del self.campaigns[project_id]
        for project_id in sorted(launched):
            current = self.campaigns.get(project_id)
            if current is not None and not current.idle:
                # Calls in flight keep the queue and the dials they belong to; a new order
                # of the same operators (§5.2.4 «по списку») applies at once all the same.
                if current.dial_settings is not None:
                    current.switch.start()
                current.take_operator_order(await self._db.projects.operator_ids(project_id))
                continue
            built = await self._build(project_id)
            if built is None:
                self.campaigns.pop(project_id, None)
                continue
            if built is not current:
                log.info("project %s runs (%s)", project_id, type(built.pacer).__name__)
            if built.dial_settings is not None:
                built.switch.start()
            self.campaigns[project_id] = built
            await self._seed_operators(built.operator_ids)
        self._after_change()

    async def _seed_operators(self, operator_ids: tuple[int, ...]) -> None:
        """Operators not yet seen take the status the workspace last stored for them."""
        now = self.now_ms()
        for operator_id in operator_ids:
            if operator_id in self.roster:
                continue
            rows = await self._db.intervals.between(start=now, end=now + 1, user_id=operator_id)
            open_rows = [r for r in rows if r.ended_at is None]
            if open_rows and operator_id not in self.roster:
                self.set_agent_status(operator_id, open_rows[-1].state)

    async def _inbound(self, call_id: str, project_id: int) -> None:
        """An inbound call answered for ``project_id`` waits in the project's queue."""
        if self._ended_unknown.pop(call_id, False) is None:
            return  # it ended before the bus told us about it (the key was there)
        campaign = self.campaigns.get(project_id)
        if campaign is None:
            built = await self._build(project_id)
            if built is None:
                self._calls.hang_up(call_id)
                return
            campaign = built
            campaign.switch.stop()  # not launched: its queue takes inbound calls only
            self.campaigns[project_id] = campaign
            await self._seed_operators(campaign.operator_ids)
        if self._ended_unknown.pop(call_id, False) is None:
            return
        now = self.now_ms()
        dial = Dial(call_id=call_id, project_id=project_id, started_ms=now, answered_ms=now)
        campaign.dials[call_id] = dial
        self._to_queue(campaign, dial, now)
        self._after_change()

    # --- pacing -------------------------------------------------------------------------------

    def _request_pace(self) -> None:
        if self._pace_pending or not self._dialling:
            return
        if not any(c.switch.running for c in self.campaigns.values()):
            return
        self._pace_pending = True
        self._worker.enqueue(self._pace)

    async def _pace(self) -> None:
        self._pace_pending = False
        for campaign in list(self.campaigns.values()):
            if not self._dialling:
                return
            # Operator tasks due now go first: they take their operators out of the pool.
            if await self._dialler.dial_tasks(campaign):
                self._drain_intervals()
                self._arm()
            self._withdraw(campaign)
            count = campaign.calls_to_place(self.now_ms(), self.roster)
            if count > 0:
                await self._dialler.dial_pool(campaign, count)

    def _withdraw(self, campaign: Campaign) -> None:
        """CANCEL the ringing dials whose persons no operator would take (predictive only)."""
        now = self.now_ms()
        for dial in campaign.dials_to_withdraw(now, self.roster):
            dial.withdrawn_ms = now
            campaign.tally.withdrawn += 1
            assert isinstance(campaign.pacer, PredictivePacer)
            campaign.pacer.observe_withdrawn(now - dial.started_ms)
            log.debug("project %s: withdrawing %s after %d ms of ringing: no operator expected",
                     campaign.project_id, dial.call_id, now - (dial.ringing_ms or now))
            self._calls.hang_up(dial.call_id)

    # --- call events --------------------------------------------------------------------------

    def _find(self, call_id: str) -> tuple[Campaign, Dial] | None:
        for campaign in self.campaigns.values():
            dial = campaign.dials.get(call_id)
            if dial is not None:
                return campaign, dial
        return None

    def on_call_event(self, event: CallEvent) -> None:
        """The call layer reports on a customer leg (CallControl listener)."""
        found = self._find(event.call_id)
        if found is None:
            if isinstance(event, CallEnded):
                self._ended_unknown[event.call_id] = None
                while len(self._ended_unknown) > _ENDED_MEMORY:
                    self._ended_unknown.popitem(last=False)
            return
        campaign, dial = found
        now = self.now_ms()
        if isinstance(event, CallRinging):
            if dial.ringing_ms is None:
                dial.ringing_ms = now
        elif isinstance(event, CallAnswered):
            dial.answered_ms = now
            settings = campaign.dial_settings
            if settings is None or not settings.amd_enabled:
                self._to_queue(campaign, dial, now)
        elif isinstance(event, AmdResult):
            if dial.resolved:
                pass
            elif event.verdict is AmdVerdict.MACHINE:
                dial.machine = True
                self._observe_dial(campaign, dial, "machine", now)
                self._calls.hang_up(dial.call_id)
                self._carry(campaign, campaign.queue.release(dial.call_id, now), now)
            else:
                self._to_queue(campaign, dial, now)
        elif isinstance(event, CallEnded):
            self._ended(campaign, dial, event, now)
        self._after_change()

    def _to_queue(self, campaign: Campaign, dial: Dial, now: int) -> None:
        dial.queued_ms = now
        self._observe_dial(campaign, dial, "person", now)
        if self._calls.robot_takes(dial.call_id):
            return  # «Робот»: the call layer gives the person to the robot, not to the queue
        self._carry(campaign, campaign.queue.enqueue(dial.call_id, now), now)

    def _ended(self, campaign: Campaign, dial: Dial, event: CallEnded, now: int) -> None:
        if campaign.queue.is_waiting(dial.call_id):
            # The customer hung up while waiting: abandoned (the dial is still known here).
            self._carry(campaign, campaign.queue.customer_left(dial.call_id, now), now)
        # A task's call that reached no person gives its operator back.
        self._carry(campaign, campaign.queue.release(dial.call_id, now), now)
        del campaign.dials[dial.call_id]
        if not dial.resolved:
            self._observe_dial(campaign, dial, "other", now)
        elif (dial.withdrawn_ms is not None and event.outcome is CallOutcome.ABANDONED
                and dial.paced):
            # The answer crossed our CANCEL (RFC 3261 §9.1): whoever picked up got the BYE.
            self._person(campaign, abandoned=True)
        if dial.operator_id is not None:
            if self.roster.state(dial.operator_id) is AgentState.TALKING:
                self.roster.fire(dial.operator_id, AgentTrigger.CALL_ENDED, now)
            if isinstance(campaign.pacer, PredictivePacer) and dial.bridged_ms is not None:
                campaign.pacer.observe_talk(now - dial.bridged_ms)
        outcome = event.outcome
        if (dial.abandoned and dial.bridged_ms is None
                and outcome is not CallOutcome.ANSWERING_MACHINE):
            outcome = CallOutcome.ABANDONED
        if dial.contact_id is not None:
            self._record_outcome(campaign, dial, dataclasses.replace(event, outcome=outcome))
        if not campaign.switch.running and campaign.idle:
            self.campaigns.pop(campaign.project_id, None)

    def _record_outcome(self, campaign: Campaign, dial: Dial, event: CallEnded) -> None:
        contact_id = dial.contact_id
        assert contact_id is not None
        decision = campaign.retry.after_call(dial.history, event.outcome, event.at_ms,
                                             sip_code=event.sip_code)
        state = dial_state_after(event.outcome, event.sip_code)
        log.info("project %s: contact %s %s -> %s (%s)", campaign.project_id, contact_id,
                 event.outcome.value, state, decision.reason)

        async def write() -> None:
            await self._db.contacts.record_attempt(
                contact_id, dial_state=state, attempts=decision.history.attempts,
                next_attempt_at=decision.retry_at_ms, last_call_at=event.at_ms)

        self._worker.enqueue(write)

    def _observe_dial(self, campaign: Campaign, dial: Dial, kind: str, now: int) -> None:
        """The pacer measures the dials it placed (not operator tasks nor inbound calls)."""
        if isinstance(campaign.pacer, PredictivePacer) and dial.paced:
            campaign.pacer.observe_dial(kind=kind, resolution_ms=max(0, now - dial.started_ms))

    # --- queue actions and operator events ----------------------------------------------------

    def _carry(self, campaign: Campaign, actions: list[QueueAction], now: int) -> None:
        for action in actions:
            if isinstance(action, RingOperator):
                self._rings[action.ring_id] = (campaign.project_id, now)
                self._ringer.ring_operator(action.ring_id, action.operator_id, action.call_id,
                                           auto_answer=action.auto_answer)
            elif isinstance(action, StopRinging):
                self._rings.pop(action.ring_id, None)
                held = self._held.pop(action.ring_id, None)
                if held is not None:
                    held.cancel()
                self._ringer.stop_ringing(action.ring_id)
            elif isinstance(action, StartHoldMusic):
                self._ringer.start_hold_music(action.call_id)
            elif isinstance(action, BridgeCall):
                dial = campaign.dials.get(action.call_id)
                if dial is not None:
                    dial.bridged_ms = now
                    dial.operator_id = action.operator_id
                # The abandonment controller counts the persons the pacer called, not callers.
                if dial is not None and dial.paced:
                    self._person(campaign, abandoned=False)
                self._calls.bridge(action.call_id, action.operator_id)
                if dial is not None and dial.task_id is not None:
                    self._worker.enqueue(self._task_done(dial.task_id, action.operator_id))
            elif isinstance(action, AbandonCall):
                dial = campaign.dials.get(action.call_id)
                if dial is not None:
                    dial.abandoned = True
                if dial is not None and dial.paced:
                    self._person(campaign, abandoned=True)
                self._calls.abandon(action.call_id)

    @staticmethod
    def _person(campaign: Campaign, *, abandoned: bool) -> None:
        """A person the pacer called reached an operator, or was abandoned."""
        campaign.tally.person(abandoned=abandoned)
        if isinstance(campaign.pacer, PredictivePacer):
            campaign.pacer.observe_person(abandoned=abandoned)

    def _task_done(self, task_id: int, operator_id: int) -> Callable[[], Awaitable[None]]:
        """The job that marks an operator task done: its call was answered and bridged."""

        async def complete() -> None:
            try:
                await self._db.tasks.complete(task_id)
            except NotFound:
                return  # removed, or closed by hand meanwhile
            self._bus.publish("task.done", task_id=task_id, operator_id=operator_id)

        return complete

    def on_operator_event(self, event: OperatorEvent) -> None:
        """The call layer reports on an operator leg the queue rang (OperatorRinger listener).

        A refusal that comes at once (the operator has no phone registered, say) is handed to
        the queue only :data:`MIN_OFFER_MS` after the ring started: the queue offers the call
        again to the same operator when he is the only one free, and the pair must not spin.
        """
        ring = self._rings.get(event.ring_id)
        if ring is None:
            if isinstance(event, OperatorAnswered):
                self._ringer.stop_ringing(event.ring_id)
            return
        rung_at = ring[1]
        loop = self._loop
        if (not isinstance(event, OperatorAnswered) and loop is not None
                and self.now_ms() < rung_at + MIN_OFFER_MS and event.ring_id not in self._held):
            self._held[event.ring_id] = loop.call_at(
                self._loop_time(rung_at + MIN_OFFER_MS), self._release_held, event)
            return
        self._deliver_operator_event(event)

    def _release_held(self, event: OperatorEvent) -> None:
        self._held.pop(event.ring_id, None)
        try:
            self._deliver_operator_event(event)
        except Exception:
            log.exception("operator event %s failed", type(event).__name__)

    def _deliver_operator_event(self, event: OperatorEvent) -> None:
        held = self._held.pop(event.ring_id, None)
        if held is not None:
            held.cancel()
        ring = self._rings.pop(event.ring_id, None)
        campaign = self.campaigns.get(ring[0]) if ring is not None else None
        if campaign is None:
            return
        now = self.now_ms()
        self._carry(campaign, campaign.queue.on_operator_event(
            dataclasses.replace(event, at_ms=now)), now)
        self._after_change()

    # --- operators ----------------------------------------------------------------------------

    def set_agent_status(self, operator_id: int, status: str) -> None:
        """The workspace changed the operator's status (``agent.state`` on the bus)."""
        if not self._statuses.choose(operator_id, status, self.now_ms()):
            log.warning("operator %s: unknown status %r", operator_id, status)
            return
        self._after_change()

    def board(self) -> Board:
        """«Мониторинг» (manual §7): every queue and its operators right now."""
        return board(self.campaigns, self.roster, self.now_ms())

    def agent_line(self, operator_id: int) -> OperatorLine:
        """The operator's state right now (ringing, talking, «В карточке» …) and since when."""
        return operator_line(self.roster, operator_id)

    def agent_status(self, operator_id: int) -> str:
        """The status the workspace shows for an operator: the one he chose (``available`` /
        ``pause`` / ``dnd`` / ``offline``), the pending one while he is on a call."""
        return self._statuses.shown(operator_id)

    def _drain_intervals(self) -> None:
        intervals = [iv for iv in self.roster.drain_intervals() if iv.duration_ms > 0]
        if not intervals:
            return
        for iv in intervals:
            self._bus.publish("agent.interval", user_id=iv.agent_id, state=iv.state.value,
                              started_at=iv.start_ms, ended_at=iv.end_ms)
            if iv.state is AgentState.WRAP_UP:
                for campaign in self.campaigns.values():
                    if (isinstance(campaign.pacer, PredictivePacer)
                            and iv.agent_id in campaign.operator_ids):
                        campaign.pacer.observe_wrap_up(iv.duration_ms)

        self._worker.enqueue(lambda: self._write_intervals(intervals))

    async def _write_intervals(self, intervals: list[AgentStateInterval]) -> None:
        for iv in intervals:
            if iv.duration_ms > 0:
                await self._db.intervals.add_closed(user_id=iv.agent_id, state=iv.state.value,
                                                    started_at=iv.start_ms, ended_at=iv.end_ms)

    # --- after every input: dispatch, log, pace, re-arm ---------------------------------------

    def _after_change(self) -> None:
        now = self.now_ms()
        self._statuses.apply_pending(now)
        for campaign in list(self.campaigns.values()):
            if campaign.queue.waiting_count:
                self._carry(campaign, campaign.queue.dispatch(now), now)
        self._drain_intervals()
        self._request_pace()
        self._arm()

    def _arm(self) -> None:
        loop = self._loop
        if loop is None or not self._worker.running:
            return
        deadlines = [self._next_tick_ms]
        deadlines += [t for c in self.campaigns.values() if (t := c.queue.get_timer()) is not None]
        if (roster_timer := self.roster.get_timer()) is not None:
            deadlines.append(roster_timer)
        when = min(deadlines)
        if self._timer is not None and self._timer_at == when:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = loop.call_at(self._loop_time(when), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        try:
            now = self.now_ms()
            for campaign in list(self.campaigns.values()):
                deadline = campaign.queue.get_timer()
                if deadline is not None and deadline <= now:
                    self._carry(campaign, campaign.queue.handle_timer(now), now)
            self.roster.handle_timer(now)
            if now >= self._next_tick_ms:
                self._next_tick_ms = now + self._tick_ms
        except Exception:
            log.exception("campaign timer failed")
        self._after_change()

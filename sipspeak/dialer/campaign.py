"""One running project as the campaign runtime holds it: its dialling parts and its dials.

:func:`build_campaign` turns a stored project (its settings, weekday intervals and operators)
into the sans-IO parts of :mod:`sipspeak.dialer`: the pacer of its «Тип автонабора», the
:class:`~sipspeak.dialer.acd.AcdQueue`, the :class:`~sipspeak.dialer.schedule.CampaignSchedule`,
the :class:`~sipspeak.dialer.retries.RetryPolicy` and the
:class:`~sipspeak.dialer.selection.ProjectRunSwitch`. :class:`Campaign` keeps the dials in flight
(``call_id`` → :class:`Dial`) so that the pacer can be told what is ringing, waiting or talking.

Also here: a contact's :class:`~sipspeak.dialer.retries.AttemptHistory` rebuilt from storage
(its dial count and the outcomes of its finished calls, :func:`attempt_history`) and the
contact ``dial_state`` an outcome leaves behind (:func:`dial_state_after`).

Nothing here awaits or reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sipspeak.dialer.acd import AcdQueue, QueueSettings, QueueStrategy
from sipspeak.dialer.agents import AgentRoster
from sipspeak.dialer.pacing import Pacer, PacingInput, ProgressivePacer, UnlimitedPacer
from sipspeak.dialer.ports import CallOutcome, ProjectDialSettings
from sipspeak.dialer.predictive import PredictivePacer, PredictiveSettings
from sipspeak.dialer.retries import (
    AttemptHistory,
    RetryClass,
    RetryPolicy,
    RetryRule,
    retry_class,
)
from sipspeak.dialer.schedule import WHOLE_DAY, CampaignSchedule, TimeWindow
from sipspeak.dialer.selection import ContactKind, DueContact, ProjectRunSwitch
from sipspeak.storage.models import Project, WeekdayInterval

__all__ = [
    "Campaign",
    "CampaignConfigError",
    "Dial",
    "DialTally",
    "attempt_history",
    "build_campaign",
    "dial_state_after",
]

DEFAULT_ZONE = "Europe/Moscow"


class CampaignConfigError(ValueError):
    """A project whose settings cannot drive a campaign (no trunk, a bad interval list …)."""


@dataclass(slots=True)
class Dial:
    """One customer leg the runtime placed (or an inbound call its queue took).

    ``contact_id`` is ``None`` for inbound calls; ``history`` is the contact's attempt history
    before this dial. ``task_id`` is the operator task (manual §6.1.1 «Задачи») the dial
    carries out; ``for_operator`` the operator held for it, who alone gets the answered call.
    """

    call_id: str
    project_id: int
    started_ms: int
    contact_id: int | None = None
    history: AttemptHistory = field(default_factory=AttemptHistory)
    ringing_ms: int | None = None
    """The first 180/183: the customer's phone rings from here."""
    answered_ms: int | None = None
    queued_ms: int | None = None
    """When the person was handed to the queue (AMD passed, or AMD off)."""
    bridged_ms: int | None = None
    operator_id: int | None = None
    abandoned: bool = False
    machine: bool = False
    task_id: int | None = None
    for_operator: int | None = None
    withdrawn_ms: int | None = None
    """When the pacer withdrew the dial still ringing (CANCEL sent)."""

    @property
    def paced(self) -> bool:
        """A dial the pacer placed for the pool: an outbound call not held for one operator."""
        return self.contact_id is not None and self.for_operator is None

    @property
    def resolved(self) -> bool:
        """A dial stops counting as "ringing or in AMD" once it is a person, a machine or
        withdrawn."""
        return self.queued_ms is not None or self.machine or self.withdrawn_ms is not None

    def withdrawable(self, now_ms: int, min_ring_ms: int | None) -> bool:
        """Still only ringing, for at least ``min_ring_ms`` (``None``: never withdrawable)."""
        return (
            min_ring_ms is not None
            and self.paced
            and self.ringing_ms is not None
            and self.answered_ms is None
            and not self.resolved
            and now_ms - self.ringing_ms >= min_ring_ms
        )


@dataclass(slots=True)
class DialTally:
    """What the campaign's paced dials came to since it was built (the day, as the pacer's
    abandonment target counts it): persons who answered, those of them no operator took
    in time, and dials withdrawn still ringing."""

    persons: int = 0
    abandoned: int = 0
    withdrawn: int = 0

    def person(self, *, abandoned: bool) -> None:
        self.persons += 1
        if abandoned:
            self.abandoned += 1


@dataclass(slots=True)
class Campaign:
    """See the module docstring. ``operator_ids`` are the project's operators, in list order."""

    project_id: int
    dial_settings: ProjectDialSettings | None
    """``None`` for a project that takes inbound calls only (no trunk to dial through)."""
    pacer: Pacer
    queue: AcdQueue
    schedule: CampaignSchedule
    retry: RetryPolicy
    switch: ProjectRunSwitch
    operator_ids: tuple[int, ...]
    from_end: bool
    call_center_zone: str
    max_lines: int
    withdraw_after_ms: int | None = None
    """The minimum ring time before the pacer may withdraw a dial (``None``: it never does)."""
    dials: dict[str, Dial] = field(default_factory=dict)
    tally: DialTally = field(default_factory=DialTally)

    @property
    def dial_mode(self) -> str:
        """«Тип автонабора» of the running pacer: unlimited, progressive or predictive."""
        if isinstance(self.pacer, PredictivePacer):
            return "predictive"
        return "unlimited" if isinstance(self.pacer, UnlimitedPacer) else "progressive"

    @property
    def dialling(self) -> int:
        """Paced dials ringing (or in AMD) right now."""
        return len(self._in_flight())

    @property
    def idle(self) -> bool:
        """No call of this campaign is alive: a stopped campaign may be dropped."""
        return not self.dials and self.queue.waiting_count == 0

    def take_operator_order(self, operator_ids: Sequence[int]) -> bool:
        """A new order of the same operators (their group's list was reordered) applies at
        once, calls in flight or not: «по списку» and «по кругу» follow it.  Another set of
        operators waits for the campaign to be built again."""
        order = tuple(dict.fromkeys(operator_ids))
        if order == self.operator_ids or sorted(order) != sorted(self.operator_ids):
            return False
        self.operator_ids = order
        self.queue.settings = replace(self.queue.settings, operator_ids=order)
        return True

    def _in_flight(self) -> list[Dial]:
        return [d for d in self.dials.values() if d.paced and not d.resolved]

    def pacing_input(self, now_ms: int, roster: AgentRoster) -> PacingInput:
        operators = [roster[op] for op in self.operator_ids if op in roster]
        outbound = [d for d in self.dials.values() if d.contact_id is not None]
        in_flight = self._in_flight()
        # Operator tasks bring their own operator: neither demand nor supply of the pool.
        return PacingInput(
            now_ms=now_ms,
            operators=operators,
            dial_started_ms=[d.started_ms for d in in_flight],
            waiting_persons=self.queue.waiting_count - self.queue.directed_waiting_count,
            lines_in_use=len(outbound),
            withdrawable=[i for i, d in enumerate(in_flight)
                          if d.withdrawable(now_ms, self.withdraw_after_ms)],
        )

    def dials_to_withdraw(self, now_ms: int, roster: AgentRoster) -> list[Dial]:
        """The ringing dials the predictive pacer gives up on now (see
        :meth:`~sipspeak.dialer.predictive.PredictivePacer.dials_to_withdraw`)."""
        if not isinstance(self.pacer, PredictivePacer) or self.withdraw_after_ms is None:
            return []
        inp = self.pacing_input(now_ms, roster)
        if not inp.withdrawable:
            return []
        in_flight = self._in_flight()
        return [in_flight[i] for i in self.pacer.dials_to_withdraw(inp)]

    def calls_to_place(self, now_ms: int, roster: AgentRoster) -> int:
        """The pacer's count, never more than the project's «Максимальное количество
        одновременных звонков» allows on top of the lines in use, whatever the mode."""
        if not self.switch.running or self.dial_settings is None:
            return 0
        inp = self.pacing_input(now_ms, roster)
        return max(0, min(self.pacer.calls_to_place(inp), self.max_lines - inp.lines_in_use))

    def allows(self, now_ms: int, zone: str | None) -> bool:
        """May a contact in ``zone`` (``None``: the call center's) be called at ``now_ms``?"""
        return self.schedule.allows(now_ms, ZoneInfo(_zone_name(zone, self.call_center_zone)))

    def due_contact(self, contact_id: int, phone: str, zone: str | None, due_ms: int,
                    kind: ContactKind = ContactKind.BASE) -> DueContact:
        return DueContact(
            contact_id=contact_id,
            phone=phone,
            client_zone=_zone_name(zone, self.call_center_zone),
            upload_seq=contact_id,
            due_ms=due_ms,
            kind=kind,
        )


def _zone_name(name: str | None, fallback: str) -> str:
    for candidate in (name, fallback, DEFAULT_ZONE):
        if not candidate:
            continue
        try:
            ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            continue
        return candidate
    return "UTC"


def _date(text: str | None, what: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CampaignConfigError(f"{what} is not a date: {text!r}") from None


def _schedule(project: Project, intervals: Sequence[WeekdayInterval]) -> CampaignSchedule:
    zone_name = _zone_name(project.timezone, DEFAULT_ZONE)
    try:
        if intervals:
            weekly: dict[int, tuple[TimeWindow, ...]] = {}
            for item in intervals:
                window = TimeWindow.parse(item.start_time, item.end_time)
                weekly[item.weekday] = (*weekly.get(item.weekday, ()), window)
        else:
            # No weekday intervals configured: the project is not limited by weekday.
            weekly = {day: (WHOLE_DAY,) for day in range(7)}
        client = TimeWindow.parse(project.client_time_from, project.client_time_to)
        return CampaignSchedule(
            call_center_zone=ZoneInfo(zone_name),
            weekly=weekly,
            client_window=client,
            start_date=_date(project.starts_on, "the start date"),
            end_date=_date(project.ends_on, "the end date"),
        )
    except ValueError as exc:
        raise CampaignConfigError(f"project {project.id}: {exc}") from None


def _retry_policy(project: Project) -> RetryPolicy:
    try:
        return RetryPolicy(
            max_attempts=project.max_attempts,
            rules={
                RetryClass.BUSY: RetryRule.parse(
                    project.retry_busy_intervals, project.retry_busy_attempts
                ),
                RetryClass.NO_ANSWER: RetryRule.parse(
                    project.retry_no_answer_intervals, project.retry_no_answer_attempts
                ),
                RetryClass.ANSWERING_MACHINE: RetryRule.parse(
                    project.retry_machine_intervals, project.retry_machine_attempts
                ),
                RetryClass.LOST: RetryRule.parse(
                    project.retry_lost_intervals, project.retry_lost_attempts
                ),
            },
        )
    except ValueError as exc:
        raise CampaignConfigError(f"project {project.id}: {exc}") from None


def _pacer(project: Project, wrap_up_limit_ms: int | None) -> Pacer:
    lines = max(1, project.max_concurrent_calls)
    if project.dial_mode == "unlimited":
        return UnlimitedPacer(lines=lines)
    if project.dial_mode == "predictive":
        return PredictivePacer(
            PredictiveSettings(
                predictive_percent=float(min(100, max(1, project.predictive_percent))),
                max_wait_ms=max(0, project.queue_timeout_s) * 1000,
                max_lines=lines,
                wrap_up_limit_ms=wrap_up_limit_ms,
            )
        )
    return ProgressivePacer()


def build_campaign(
    project: Project,
    *,
    intervals: Sequence[WeekdayInterval],
    operator_ids: Iterable[int],
    roster: AgentRoster,
) -> Campaign:
    """The campaign of one stored project; its switch is on when the project is launched."""
    operators = tuple(dict.fromkeys(operator_ids))
    dial_settings = None
    if project.trunk_id is not None:
        try:
            dial_settings = ProjectDialSettings(
                project_id=project.id,
                trunk_id=project.trunk_id,
                caller_id=project.caller_id,
                dial_timeout_ms=project.dial_timeout_s * 1000,
                amd_enabled=project.amd_enabled,
                global_timeout_ms=(
                    project.global_timeout_s * 1000
                    if project.global_timeout_enabled
                    else None
                ),
            )
        except ValueError as exc:
            raise CampaignConfigError(f"project {project.id}: {exc}") from None
    try:
        queue_settings = QueueSettings(
            strategy=QueueStrategy(project.strategy),
            queue_timeout_ms=max(1, project.queue_timeout_s) * 1000,
            operator_timeout_ms=max(1, project.operator_timeout_s) * 1000,
            operator_ids=operators,
            auto_answer=project.operator_auto_answer,
            music_on_hold=project.music_on_hold,
        )
    except ValueError as exc:
        raise CampaignConfigError(f"project {project.id}: {exc}") from None
    return Campaign(
        project_id=project.id,
        dial_settings=dial_settings,
        pacer=_pacer(project, roster.wrap_up_limit_ms),
        queue=AcdQueue(settings=queue_settings, roster=roster),
        schedule=_schedule(project, intervals),
        retry=_retry_policy(project),
        switch=ProjectRunSwitch(running=project.launched and dial_settings is not None),
        operator_ids=operators,
        from_end=project.call_from_end,
        call_center_zone=_zone_name(project.timezone, DEFAULT_ZONE),
        max_lines=max(1, project.max_concurrent_calls),
        withdraw_after_ms=(
            project.withdraw_after_s * 1000 if project.withdraw_after_s > 0 else None
        ),
    )


# --- what storage keeps of a contact's dials ---------------------------------------------------


def attempt_history(
    attempts: int, outcomes: Iterable[tuple[str, int | None]]
) -> AttemptHistory:
    """The :class:`AttemptHistory` of a contact from its dial count and the outcomes of its
    finished calls (``(result, sip_code)`` as the CDRs hold them); unknown results are skipped."""
    counts: dict[RetryClass, int] = {}
    for result, sip_code in outcomes:
        try:
            outcome = CallOutcome(result)
        except ValueError:
            continue
        cls = retry_class(outcome, sip_code)
        if cls is not None:
            counts[cls] = counts.get(cls, 0) + 1
    return AttemptHistory(
        attempts, tuple(sorted(counts.items(), key=lambda kv: kv[0].value))
    )


def dial_state_after(outcome: CallOutcome, sip_code: int | None) -> str:
    """The contact's ``dial_state`` after a dial (the §5.5 counters read it)."""
    if outcome is CallOutcome.ANSWERED:
        return "done"
    cls = retry_class(outcome, sip_code)
    if cls is None or outcome is CallOutcome.FAILED:
        return "error"  # the number does not exist, or the call failed with a status
    return {
        RetryClass.BUSY: "busy",
        RetryClass.NO_ANSWER: "no_answer",
        RetryClass.ANSWERING_MACHINE: "machine",
        RetryClass.LOST: "lost",
    }[cls]

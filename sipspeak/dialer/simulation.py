"""A discrete-event call world that drives the real pacers, ACD queue and agent machines.

The world is the standard one of the project's benchmark protocol ("Dialer pacing
(simulation)"), with every figure a parameter of :class:`WorldParameters`:

* each dial reaches someone with probability ``answer_rate`` after a ring time uniform in
  ``ring_s``; otherwise it is busy with probability ``busy_rate`` (known after ``busy_s``), else
  it rings out at ``dial_timeout_s``;
* ``machine_share`` of the answers are answering machines: AMD frees the line ``amd_machine_s``
  after the answer; a person is passed on ``amd_person_s`` after the answer;
* a person must reach an operator within ``max_wait_s`` of the AMD decision, else the call is
  abandoned — the ACD queue's «Таймаут очереди»; operators auto-answer;
* the predictive pacer may withdraw a dial not yet answered once it has rung
  ``withdraw_after_s`` (``None``: never); its answer, had it come, never does;
* talk and wrap-up times are log-normal with the given mean and sd.

Time is integer milliseconds on a fake clock; one run is deterministic for its seed. The world
plays the call layer: it decides what the network would do and feeds the dialer the resulting
events, and it carries out the queue's actions (ring → auto-answer → bridge → talk → wrap-up).
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from sipspeak.dialer.acd import (
    AbandonCall,
    AcdQueue,
    BridgeCall,
    QueueAction,
    QueueSettings,
    QueueStrategy,
    RingOperator,
)
from sipspeak.dialer.agent_stats import operator_statistics
from sipspeak.dialer.agents import AgentRoster, AgentStateInterval, AgentTrigger
from sipspeak.dialer.pacing import Pacer, PacingInput
from sipspeak.dialer.ports import OperatorAnswered
from sipspeak.dialer.predictive import PredictivePacer


@dataclass(frozen=True, slots=True)
class WorldParameters:
    agents: int
    answer_rate: float
    shift_s: float = 8 * 3600.0
    ring_s: tuple[float, float] = (4.0, 20.0)
    busy_rate: float = 0.25
    busy_s: tuple[float, float] = (1.0, 3.0)
    dial_timeout_s: float = 30.0
    machine_share: float = 0.20
    amd_machine_s: float = 2.5
    amd_person_s: float = 0.8
    max_wait_s: float = 2.0
    talk_mean_s: float = 120.0
    talk_sd_s: float = 60.0
    wrap_up_mean_s: float = 15.0
    wrap_up_sd_s: float = 8.0
    withdraw_after_s: float | None = 15.0
    tick_s: float = 1.0
    pace_on_resolution: bool = True
    strategy: QueueStrategy = QueueStrategy.LONGEST_IDLE

    def __post_init__(self) -> None:
        if self.agents <= 0:
            raise ValueError("the world needs at least one operator")
        if not 0.0 < self.answer_rate <= 1.0:
            raise ValueError(f"answer rate must be in (0, 1], got {self.answer_rate}")


@dataclass(frozen=True, slots=True)
class ShiftFigures:
    """One simulated shift's figures, as the benchmark protocol names them."""

    talk_minutes_per_agent_hour: float
    utilisation: float
    abandonment_rate: float
    dials_per_agent_hour: float
    idle_share: float
    dials: int
    persons: int
    abandoned: int
    withdrawn: int = 0


def _lognormal(rng: random.Random, mean: float, sd: float) -> float:
    sigma2 = math.log(1.0 + (sd / mean) ** 2)
    return rng.lognormvariate(math.log(mean) - sigma2 / 2.0, math.sqrt(sigma2))


# Event kinds in the heap.
_TICK, _DIAL_RESOLVED, _PERSON_READY, _QUEUE_TIMER, _TALK_END, _WRAP_END = range(6)


class SimulatedCallCenter:
    """One project, its operators, queue and pacer, in the simulated world."""

    def __init__(self, params: WorldParameters, pacer: Pacer, seed: int) -> None:
        self.params = params
        self.pacer = pacer
        self.rng = random.Random(seed)
        self.roster = AgentRoster()
        operator_ids = tuple(range(1, params.agents + 1))
        for op in operator_ids:
            self.roster.add(op, 0)
            self.roster.fire(op, AgentTrigger.LOG_IN, 0)
            self.roster.fire(op, AgentTrigger.SET_AVAILABLE, 0)
        self.queue = AcdQueue(
            settings=QueueSettings(
                strategy=params.strategy,
                queue_timeout_ms=round(params.max_wait_s * 1000),
                operator_timeout_ms=10_000,
                operator_ids=operator_ids,
                auto_answer=True,
            ),
            roster=self.roster,
        )
        self._heap: list[tuple[int, int, int, object]] = []
        self._seq = 0
        self._queue_timer_at: int | None = None
        self._pending: dict[int, int] = {}  # dial id -> start ms, unresolved dials
        self._answer_at: dict[int, int] = {}  # dial id -> when it will be answered
        self._withdrawn: set[int] = set()
        self._lines = 0  # live outbound customer legs
        self._next_dial = 0
        self._operator_of_call: dict[str, int] = {}
        self.dials = 0
        self.persons = 0
        self.abandoned = 0
        self.withdrawn = 0
        self._predictive = pacer if isinstance(pacer, PredictivePacer) else None

    # --- plumbing ----------------------------------------------------------------------------

    def _at(self, t_ms: int, kind: int, payload: object) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t_ms, self._seq, kind, payload))

    def _arm_queue_timer(self) -> None:
        deadline = self.queue.get_timer()
        if deadline is not None and (
            self._queue_timer_at is None or deadline < self._queue_timer_at
        ):
            self._queue_timer_at = deadline
            self._at(deadline, _QUEUE_TIMER, None)

    def _carry_out(self, actions: list[QueueAction], now: int) -> None:
        for action in actions:
            if isinstance(action, RingOperator):
                # Auto-answer: the operator's device picks up at once.
                follow = self.queue.on_operator_event(
                    OperatorAnswered(action.ring_id, action.operator_id, now)
                )
                self._carry_out(follow, now)
            elif isinstance(action, BridgeCall):
                self.persons += 1
                if self._predictive is not None:
                    self._predictive.observe_person(abandoned=False)
                talk_ms = round(
                    _lognormal(self.rng, self.params.talk_mean_s, self.params.talk_sd_s)
                    * 1000
                )
                self._at(now + talk_ms, _TALK_END, (action.operator_id, talk_ms))
            elif isinstance(action, AbandonCall):
                self.persons += 1
                self.abandoned += 1
                self._lines -= 1
                if self._predictive is not None:
                    self._predictive.observe_person(abandoned=True)
        self._arm_queue_timer()

    # --- the world's reactions ---------------------------------------------------------------

    def _place_dial(self, now: int) -> None:
        p, rng = self.params, self.rng
        dial_id = self._next_dial
        self._next_dial += 1
        self.dials += 1
        self._lines += 1
        self._pending[dial_id] = now
        u = rng.random()
        if u < p.answer_rate:
            answer_ms = rng.uniform(*p.ring_s) * 1000
            self._answer_at[dial_id] = now + round(answer_ms)
            if rng.random() < p.machine_share:
                self._at(
                    now + round(answer_ms + p.amd_machine_s * 1000),
                    _DIAL_RESOLVED,
                    (dial_id, "machine"),
                )
            else:
                self._at(
                    now + round(answer_ms + p.amd_person_s * 1000),
                    _PERSON_READY,
                    dial_id,
                )
        elif rng.random() < p.busy_rate:
            self._at(
                now + round(rng.uniform(*p.busy_s) * 1000),
                _DIAL_RESOLVED,
                (dial_id, "other"),
            )
        else:
            self._at(
                now + round(p.dial_timeout_s * 1000), _DIAL_RESOLVED, (dial_id, "other")
            )

    def _resolve(self, dial_id: int, kind: str, now: int) -> None:
        started = self._pending.pop(dial_id)
        self._answer_at.pop(dial_id, None)
        if self._predictive is not None:
            self._predictive.observe_dial(kind=kind, resolution_ms=now - started)

    def _input(self, now: int) -> PacingInput:
        after = self.params.withdraw_after_s
        withdrawable: list[int] = []
        if after is not None and self._predictive is not None:
            min_ring = round(after * 1000)
            withdrawable = [
                position
                for position, (dial_id, started) in enumerate(self._pending.items())
                if now - started >= min_ring and self._answer_at.get(dial_id, now + 1) > now
            ]
        return PacingInput(
            now_ms=now,
            operators=self.roster.machines(),
            dial_started_ms=list(self._pending.values()),
            waiting_persons=self.queue.waiting_count,
            lines_in_use=self._lines,
            withdrawable=withdrawable,
        )

    def _tick(self, now: int) -> None:
        inp = self._input(now)
        if self._predictive is not None and inp.withdrawable:
            ids = list(self._pending)
            for position in self._predictive.dials_to_withdraw(inp):
                dial_id = ids[position]
                self._predictive.observe_withdrawn(now - self._pending.pop(dial_id))
                self._answer_at.pop(dial_id, None)
                self._withdrawn.add(dial_id)
                self._lines -= 1
                self.withdrawn += 1
            inp = self._input(now)
        for _ in range(self.pacer.calls_to_place(inp)):
            self._place_dial(now)

    # --- run ---------------------------------------------------------------------------------

    def run(self, progress: Callable[[str], None] | None = None) -> ShiftFigures:
        p = self.params
        end = round(p.shift_s * 1000)
        tick = round(p.tick_s * 1000)
        self._at(0, _TICK, None)
        while self._heap:
            now, _, kind, payload = heapq.heappop(self._heap)
            if now > end:
                break
            if kind == _TICK:
                self._tick(now)
                self._at(now + tick, _TICK, None)
            elif kind == _DIAL_RESOLVED:
                assert isinstance(payload, tuple)
                dial_id, how = payload
                if dial_id in self._withdrawn:
                    self._withdrawn.discard(dial_id)
                    continue
                self._resolve(dial_id, how, now)
                self._lines -= 1
                if self.params.pace_on_resolution:
                    self._tick(now)
            elif kind == _PERSON_READY:
                assert isinstance(payload, int)
                if payload in self._withdrawn:
                    self._withdrawn.discard(payload)
                    continue
                self._resolve(payload, "person", now)
                self._carry_out(self.queue.enqueue(f"c{payload}", now), now)
            elif kind == _QUEUE_TIMER:
                if self._queue_timer_at == now:
                    self._queue_timer_at = None
                    self._carry_out(self.queue.handle_timer(now), now)
            elif kind == _TALK_END:
                assert isinstance(payload, tuple)
                operator_id, talk_ms = payload
                self._lines -= 1
                self.roster.fire(operator_id, AgentTrigger.CALL_ENDED, now)
                if self._predictive is not None:
                    self._predictive.observe_talk(talk_ms)
                wrap_ms = round(
                    _lognormal(self.rng, p.wrap_up_mean_s, p.wrap_up_sd_s) * 1000
                )
                self._at(now + wrap_ms, _WRAP_END, (operator_id, wrap_ms))
                self._tick(now)
            elif kind == _WRAP_END:
                assert isinstance(payload, tuple)
                operator_id, wrap_ms = payload
                self.roster.fire(operator_id, AgentTrigger.CARD_SAVED, now)
                if self._predictive is not None:
                    self._predictive.observe_wrap_up(wrap_ms)
                self._carry_out(self.queue.dispatch(now), now)
                self._tick(now)
        return self._figures(end)

    def _figures(self, end: int) -> ShiftFigures:
        intervals = self.roster.drain_intervals()
        intervals += [
            m.open_interval(max(end, m.since_ms)) for m in self.roster.machines()
        ]
        by_agent: dict[int, list[AgentStateInterval]] = {}
        for interval in intervals:
            by_agent.setdefault(interval.agent_id, []).append(interval)
        talk = wrap = idle = on_line = 0
        for agent_id, own in by_agent.items():
            stats = operator_statistics(
                agent_id, own, period_start_ms=0, period_end_ms=end
            )
            talk += stats.talking_ms
            wrap += stats.wrap_up_ms
            idle += stats.available_ms
            on_line += stats.on_line_ms
        agent_hours = self.params.agents * end / 3_600_000
        return ShiftFigures(
            talk_minutes_per_agent_hour=talk / 60_000 / agent_hours,
            utilisation=(talk + wrap) / on_line if on_line else 0.0,
            abandonment_rate=self.abandoned / self.persons if self.persons else 0.0,
            dials_per_agent_hour=self.dials / agent_hours,
            idle_share=idle / on_line if on_line else 0.0,
            dials=self.dials,
            persons=self.persons,
            abandoned=self.abandoned,
            withdrawn=self.withdrawn,
        )


def simulate_shift(params: WorldParameters, pacer: Pacer, seed: int) -> ShiftFigures:
    """Run one shift of the world with ``pacer`` and return its figures."""
    return SimulatedCallCenter(params, pacer, seed).run()

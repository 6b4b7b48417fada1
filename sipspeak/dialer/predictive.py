"""«Предиктивный набор» (manual §5.2.5): dial ahead of operators who will soon be free.

Sans-IO like every pacer: :meth:`PredictivePacer.calls_to_place` takes a
:class:`~sipspeak.dialer.pacing.PacingInput` and returns a count,
:meth:`PredictivePacer.dials_to_withdraw` the ringing dials to withdraw; measurements come in
through the ``observe_*`` methods (the fits and the dial life table are in
:mod:`sipspeak.dialer.predictive_model`). numpy only does the arithmetic; nothing here reads a
clock.

The model (one decision)
------------------------
Time ahead is cut into one-second steps ``h = 0 … H``. For each ``h``:

* demand ``A(h)`` — persons who will have reached the queue by ``now + h``: persons waiting
  now, each call in flight with the measured probability that it turns into a person within
  ``h`` given how long it has been ringing (a life table of dial outcomes per second), and the
  new dials, each a person by ``h`` with the measured probability ``G(h)``;
* supply ``F(h + w)`` — operators free by ``now + h + w``, where ``w`` is how long a person may
  wait (the queue timeout): 1 for an available operator; for wrap-up, the conditional probability
  that it ends within the step given its age; for talk, that talk *and then* wrap-up end within
  it (a convolution of the two measured log-normal fits). Under a wrap-up limit
  (``wrap_up_limit_ms``) the deadline is known: a wrap-up ends by it for certain.

A person who arrives at ``h`` finds no operator when the persons before him already took every
operator free by then: treating ``A(h) − F(h + w)`` as normal, that chance is
``P(A(h) + ½ > F(h + w))``. Weighted by when a new call's person would arrive (``dG``), it is the
chance that the next call placed brings a person nobody takes. One more call is worth placing
while that chance stays within the allowance ``θ`` (per person it brings); the pacer places the
calls one by one while each passes. Spending the abandonment budget at one marginal price
everywhere gives the most talk for it.

Withdrawing ringing dials
-------------------------
A dial placed for operators who then stayed busy would bring a person nobody can take. Once a
dial has rung the minimum ring time (the project's setting, 15 s by default: what UK and US
rules require before an unanswered call may be ended), the campaign lists it as withdrawable;
the pacer withdraws it when its own person's chance of finding no operator exceeds
``WITHDRAW_MARGIN × θ``. A late dial is judged on the near future, which is known far better
than the future a new dial is placed for; this is where the pacer turns knowledge of the next
few seconds into talk time (the benchmark: about +0.4 talk minutes per agent-hour at the same
abandonment with 50 operators). A withdrawn dial's fate stays unknown: the life table counts it
as censored at its age. A dial already answered is never withdrawn.

``θ`` is the output of the abandonment controller. It starts at the target rate; every person
who reaches or misses an operator moves ``log θ`` against the error from the set point
(``set_point_share`` × target) with a gain that shrinks as 1/√n — a stochastic-approximation
controller, so the long-run rate settles at the set point without jitter — and while the day's
running rate (counting the next person as abandoned) is above 90 % of the set point ``θ`` is
scaled down steeply (and cut to a fifth while one more abandon would take the day over the
target), so the day's abandonment stays under ``target_abandon_rate`` (3 % by default) even
for a small team or a short day.

The «Процент предиктивного набора» knob
---------------------------------------
The manual: "ручная настройка, если база некачественная. Чем выставленное значение меньше, тем
больше звонков система набирает." Here it is the *lowest person rate, in percent, the pacer will
ever assume*: the measured rate is clamped to at least ``predictive_percent / 100``, so a free
operator never gets more than ``100 / predictive_percent`` dials. A poor base (few people answer)
needs a small value to let the pacer dial enough; a larger value is a safety cap that keeps a
badly measured sample from flooding the trunk. Default 3 (the manual's screenshot): at most about
33 dials per free operator.

Until dials are measured the pacer assumes every dial reaches a person after 15 s (a prior worth
ten dials), which makes its first decisions progressive; the real rate takes over within a few
dozen calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sipspeak.dialer.agents import AgentState
from sipspeak.dialer.pacing import PacingInput
from sipspeak.dialer.predictive_model import (
    HORIZON_S,
    DialResolutionModel,
    FloatArray,
    LogNormalFit,
    ends_within_table,
    normal_cdf,
    rows_at,
    talk_then_wrap_table,
)


@dataclass(frozen=True, slots=True)
class PredictiveSettings:
    target_abandon_rate: float = 0.03
    predictive_percent: float = 3.0
    """The manual's «Процент предиктивного набора»: see the module docstring."""
    max_wait_ms: int = 2000
    """How long a person may wait for an operator: the project's queue timeout."""
    set_point_share: float = 0.95
    """The controller aims at this share of the target: a margin for the day's noise."""
    max_lines: int | None = None
    wrap_up_limit_ms: int | None = None
    """The wrap-up limit the operators work under: no wrap-up lasts longer, so an operator in
    wrap-up is free by that deadline for certain (``None``: no limit)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.target_abandon_rate < 1.0:
            raise ValueError(
                f"target abandonment must be in (0, 1), got {self.target_abandon_rate}"
            )
        if not 0.0 < self.predictive_percent <= 100.0:
            raise ValueError(
                f"predictive percent must be in (0, 100], got {self.predictive_percent}"
            )
        if self.max_wait_ms < 0:
            raise ValueError(
                f"max wait must not be negative, got {self.max_wait_ms} ms"
            )
        if not 0.0 < self.set_point_share <= 1.0:
            raise ValueError(
                f"set point share must be in (0, 1], got {self.set_point_share}"
            )
        if self.max_lines is not None and self.max_lines <= 0:
            raise ValueError(f"max lines must be positive, got {self.max_lines}")
        if self.wrap_up_limit_ms is not None and self.wrap_up_limit_ms <= 0:
            raise ValueError(
                f"wrap-up limit must be positive, got {self.wrap_up_limit_ms} ms"
            )


class PredictivePacer:
    """«Предиктивный набор». Feed it with the ``observe_*`` methods; ask it with
    :meth:`calls_to_place`. The model and the knob are described in the module docstring."""

    PRIOR_DIALS = 10.0
    PRIOR_DELAY_S = 15
    CONTROLLER_GAIN = (0.03, 0.0005)
    """Step of log θ per person (× error / set point): large while the day is young, shrinking
    as 1/√n towards the floor so that θ stops jittering once it has found its level."""
    THETA_RANGE = (1e-3, 1.0)
    GUARD_SHARE = 0.9
    AT_TARGET_SHARE = 0.2
    WITHDRAW_MARGIN = 2.0
    """A ringing dial is withdrawn when its person's chance of finding no operator is above
    this multiple of θ (the chance a new call may carry); measured best between 1 and 4."""
    REFIT_DIALS_EVERY = 25
    REFIT_DURATIONS_SHARE = 0.1
    """Duration tables are rebuilt when the samples grew by this share (at least every 400)."""

    def __init__(self, settings: PredictiveSettings | None = None) -> None:
        self.settings = settings or PredictiveSettings()
        self.dials = DialResolutionModel(
            prior_dials=self.PRIOR_DIALS, prior_delay_s=self.PRIOR_DELAY_S
        )
        self.talk = LogNormalFit(prior_mean_s=120.0, prior_sd_s=60.0, prior_weight=5.0)
        self.wrap_up = LogNormalFit(prior_mean_s=15.0, prior_sd_s=8.0, prior_weight=5.0)
        self.persons_handled = 0
        self.persons_abandoned = 0
        self._log_theta = math.log(self.settings.target_abandon_rate)
        self._dials_unfitted = self._durations_unfitted = 0
        self._talk_table: FloatArray = np.zeros((0, 0))
        self._wrap_table: FloatArray = np.zeros((0, 0))
        self._q_table: FloatArray = np.zeros((0, 0))
        self._g: FloatArray = np.zeros(0)
        self._refit_dials()
        self._refit_durations()

    # --- measurements ------------------------------------------------------------------------

    def observe_dial(self, *, kind: str, resolution_ms: int) -> None:
        """A dial resolved: ``person`` (handed to the queue), ``machine`` (AMD hung up) or
        ``other`` (busy, no answer, failed…), ``resolution_ms`` after it was placed."""
        self.dials.observe(kind, resolution_ms)
        self._dials_unfitted += 1

    def observe_withdrawn(self, age_ms: int) -> None:
        """A dial withdrawn still ringing, ``age_ms`` after it was placed: censored, so its
        unknown fate does not count as anything."""
        self.dials.censor(age_ms)
        self._dials_unfitted += 1

    def observe_talk(self, talk_ms: int) -> None:
        self.talk.observe(talk_ms)
        self._durations_unfitted += 1

    def observe_wrap_up(self, wrap_up_ms: int) -> None:
        self.wrap_up.observe(wrap_up_ms)
        self._durations_unfitted += 1

    def observe_person(self, *, abandoned: bool) -> None:
        """A person reached an operator, or was abandoned: the controller's feedback."""
        self.persons_handled += 1
        if abandoned:
            self.persons_abandoned += 1
        set_point = self.settings.target_abandon_rate * self.settings.set_point_share
        error = (1.0 if abandoned else 0.0) - set_point
        low, high = self.THETA_RANGE
        first, floor = self.CONTROLLER_GAIN
        gain = max(floor, first / math.sqrt(1.0 + self.persons_handled / 50.0))
        step = gain * error / set_point
        self._log_theta = min(
            math.log(high), max(math.log(low), self._log_theta - step)
        )

    @property
    def abandon_rate(self) -> float:
        """The day's running abandonment rate (abandoned / persons)."""
        return (
            self.persons_abandoned / self.persons_handled
            if self.persons_handled
            else 0.0
        )

    @property
    def theta(self) -> float:
        """The per-decision abandonment allowance in force: the controller's, scaled down
        steeply while the day's rate, counting the next person as abandoned too, is above
        ``GUARD_SHARE`` of the set point — so one unlucky person more cannot take a short day
        or a small team over the target. The day starts as if ``1 / guard`` persons had
        passed with that one abandon among them: at the guard exactly. While one more
        abandoned person would put the day over the target itself, θ is cut to
        ``AT_TARGET_SHARE`` of that."""
        theta = math.exp(self._log_theta)
        guard = (self.settings.target_abandon_rate * self.settings.set_point_share
                 * self.GUARD_SHARE)
        rate = (self.persons_abandoned + 1) / (self.persons_handled + 1 / guard)
        if rate > guard:
            theta *= (guard / rate) ** 4
        if ((self.persons_abandoned + 1) / (self.persons_handled + 1)
                > self.settings.target_abandon_rate):
            theta *= self.AT_TARGET_SHARE  # one more would take the day over the target
        return theta

    # --- decision ----------------------------------------------------------------------------

    def _refit_dials(self) -> None:
        floor = self.settings.predictive_percent / 100.0
        self._q_table, self._g = self.dials.tables(floor)
        self._dials_unfitted = 0

    def _refit_durations(self) -> None:
        # Supply by h + w (a person may wait w): shift the grid now, holding the last column.
        wait_steps = -(-self.settings.max_wait_ms // 1000)
        shift = np.minimum(np.arange(HORIZON_S + 1) + wait_steps, HORIZON_S)
        limit_ms = self.settings.wrap_up_limit_ms
        limit_s = None if limit_ms is None else limit_ms / 1000.0
        self._talk_table = np.ascontiguousarray(
            talk_then_wrap_table(self.talk, self.wrap_up, limit_s)[:, shift]
        )
        self._wrap_table = np.ascontiguousarray(
            ends_within_table(self.wrap_up, limit_s)[:, shift]
        )
        self._durations_unfitted = 0

    def _refit_if_due(self) -> None:
        if self._dials_unfitted >= self.REFIT_DIALS_EVERY:
            self._refit_dials()
        samples = self.talk.count + self.wrap_up.count
        if self._durations_unfitted >= min(400.0, self.REFIT_DURATIONS_SHARE * samples):
            self._refit_durations()

    def _supply(self, inp: PacingInput) -> tuple[FloatArray, FloatArray] | None:
        """Mean and variance of the operators free by ``now + h + w``; ``None`` without any
        operator who is, or will be, free."""
        now = inp.now_ms
        available = 0
        talk_ages: list[int] = []
        wrap_ages: list[int] = []
        for op in inp.operators:
            state = op.state
            if state is AgentState.AVAILABLE:
                available += 1
            elif state is AgentState.WRAP_UP:
                wrap_ages.append(now - op.since_ms)
            elif state is AgentState.TALKING:
                talk_ages.append(now - op.since_ms)
        if available == 0 and not talk_ages and not wrap_ages:
            return None
        f = np.concatenate(
            [rows_at(self._talk_table, talk_ages), rows_at(self._wrap_table, wrap_ages)]
        )
        return available + f.sum(axis=0), (f * (1.0 - f)).sum(axis=0)

    def _in_flight(self, inp: PacingInput) -> FloatArray:
        """Row per dial in flight: P(it is a person by ``now + h``)."""
        return rows_at(self._q_table, [inp.now_ms - s for s in inp.dial_started_ms])

    def calls_to_place(self, inp: PacingInput) -> int:
        self._refit_if_due()
        situation = self._supply(inp)
        if situation is None:
            return 0
        supply, supply_var = situation
        q = self._in_flight(inp)
        demand = inp.waiting_persons + q.sum(axis=0)
        demand_var = (q * (1.0 - q)).sum(axis=0)
        g = self._g
        arriving = np.diff(g, prepend=0.0)  # a new dial's person arrives in second h
        allowance = self.theta * float(g[-1])
        limit = math.ceil(float(supply[-1]) / max(float(g[-1]), 1e-9)) + 1
        if self.settings.max_lines is not None:
            limit = min(limit, self.settings.max_lines - inp.lines_in_use)
        # Every candidate at once: row k is "the call placed after k others".
        n = 0
        chunk = 2
        while n < limit:
            k = np.arange(n, min(n + chunk, limit), dtype=np.float64)[:, None]
            short = _no_operator(
                demand + k * g - supply, demand_var + k * (g * (1.0 - g)) + supply_var
            )
            allowed = (short * arriving).sum(axis=1) <= allowance
            if not allowed.all():
                return n + int(np.argmin(allowed))
            n += len(allowed)
            chunk *= 4
        return n

    def dials_to_withdraw(self, inp: PacingInput) -> list[int]:
        """Positions in ``inp.dial_started_ms`` of the dials to withdraw now: among
        ``inp.withdrawable`` (still ringing, past the minimum ring time), those whose person
        would likely find no operator — a chance of that above ``WITHDRAW_MARGIN`` × θ. The
        one most likely to go without is withdrawn first, then the others are judged again."""
        if not inp.withdrawable:
            return []
        self._refit_if_due()
        situation = self._supply(inp)
        q = self._in_flight(inp)
        candidates = [k for k in dict.fromkeys(inp.withdrawable)
                      if 0 <= k < len(q) and q[k, -1] > 1e-6]
        if situation is None:
            return candidates  # nobody will take its person
        supply, supply_var = situation
        demand = inp.waiting_persons + q.sum(axis=0)
        demand_var = (q * (1.0 - q)).sum(axis=0)
        threshold = self.WITHDRAW_MARGIN * self.theta
        out: list[int] = []
        while candidates:
            rows = q[candidates]
            short = _no_operator(
                demand[None, :] - rows - supply[None, :],
                demand_var[None, :] - rows * (1.0 - rows) + supply_var[None, :],
            )
            risk = (short * np.diff(rows, axis=1, prepend=0.0)).sum(axis=1) / rows[:, -1]
            worst = int(np.argmax(risk))
            if risk[worst] <= threshold:
                break
            k = candidates.pop(worst)
            out.append(k)
            demand = demand - q[k]
            demand_var = demand_var - q[k] * (1.0 - q[k])
        return out


def _no_operator(mean: FloatArray, var: FloatArray) -> FloatArray:
    """P(one more person arriving at step h finds no operator): the persons before him reach
    the operators free by then (``mean`` = their expected excess, ``var`` its variance; a
    continuity correction of ½ for the counts)."""
    return normal_cdf((mean + 0.5) / np.sqrt(np.maximum(var, 1e-12)))

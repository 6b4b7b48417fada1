"""How many outbound calls to place now: the three «Тип автонабора» of manual §5.2.5.

Sans-IO: a pacer gets a :class:`PacingInput` (the time, the project's operators, the calls in
flight) and answers with a count; the campaign runtime picks that many due contacts and
originates them. Pacers are consulted on a short tick (about a second) and whenever an operator
becomes free.

* :class:`UnlimitedPacer` — «Не ограничено»: keep exactly ``lines`` outbound legs alive.
* :class:`ProgressivePacer` — «Прогрессивный набор»: one call per available operator, counting
  calls already placed for them.
* :class:`PredictivePacer` — «Предиктивный набор»: dials ahead of operators who will soon be free,
  from measured answer rate, ring/AMD delays, talk and wrap-up times, held under a target
  abandonment rate by feedback on the measured rate.

The predictive model (one decision)
-----------------------------------
For a horizon ``h`` equal to the measured mean time from a dial to a person reaching the queue:

* supply ``F`` — each operator's probability of being free within ``h``: 1 when available; for
  wrap-up and talk, the conditional probability that the state (talk then wrap-up) ends within
  ``h`` given how long it has lasted, from log-normal fits of measured durations;
* demand — persons already waiting (1 each), each call in flight with the probability that it
  still turns into a person given its age (measured per-class resolution-time histograms), and
  ``n`` new dials with the measured person rate ``p``.

With ``D = demand − supply`` treated as normal, the expected overflow ``E[D⁺]`` is the expected
number of persons who find nobody: abandoned calls. The pacer places the largest ``n`` with
``E[D⁺] ≤ θ · E[demand]``. ``θ`` — the per-decision abandonment allowance — is the feedback
controller's output: every person who reaches or misses an operator moves ``log θ`` against the
error from the set point (a stochastic-approximation controller), and the day's running rate
clamps it, so the day's abandonment stays under ``target_abandon_rate`` (3 % by default).

The «Процент предиктивного набора» knob
---------------------------------------
The manual: "ручная настройка, если база некачественная. Чем выставленное значение меньше, тем
больше звонков система набирает." Here it is the *lowest person rate, in percent, the pacer will
ever assume*: the measured rate is clamped to at least ``predictive_percent / 100``, so one free
operator never has more than ``100 / predictive_percent`` calls in flight. A poor base (few
people answer) needs a small value to let the pacer dial enough; a larger value is a safety cap
that keeps a badly measured or tiny sample from flooding the trunk. Default 3 (the manual's
screenshot), i.e. at most about 33 calls in flight per free operator.

Until the first dials are measured the pacer assumes every dial reaches a person, which makes
its first decisions progressive; it learns the real rate within a few dozen calls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sipspeak.dialer.agents import AgentState


class OperatorView(Protocol):
    """What a pacer reads of an operator: :class:`~sipspeak.dialer.agents.AgentStateMachine`
    satisfies it."""

    @property
    def state(self) -> AgentState: ...

    @property
    def since_ms(self) -> int: ...


@dataclass(frozen=True, slots=True)
class PacingInput:
    """The project's situation at ``now_ms``.

    ``dial_started_ms`` holds the start time of each outbound call not yet resolved (ringing,
    or answered and still in AMD); ``waiting_persons`` counts persons handed to the queue and
    not yet with an operator; ``lines_in_use`` counts every live outbound customer leg.
    """

    now_ms: int
    operators: Sequence[OperatorView]
    dial_started_ms: Sequence[int]
    waiting_persons: int
    lines_in_use: int


class Pacer(Protocol):
    def calls_to_place(self, inp: PacingInput) -> int: ...


class UnlimitedPacer:
    """«Не ограничено»: the number of lines is the only limit; operators are not counted."""

    def __init__(self, *, lines: int) -> None:
        if lines <= 0:
            raise ValueError(f"lines must be positive, got {lines}")
        self.lines = lines

    def calls_to_place(self, inp: PacingInput) -> int:
        return max(0, self.lines - inp.lines_in_use)


class ProgressivePacer:
    """«Прогрессивный набор»: a call as soon as an operator is free, never more calls in flight
    than available operators."""

    def calls_to_place(self, inp: PacingInput) -> int:
        available = sum(1 for op in inp.operators if op.state is AgentState.AVAILABLE)
        return max(0, available - len(inp.dial_started_ms) - inp.waiting_persons)


# --- predictive ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PredictiveSettings:
    target_abandon_rate: float = 0.03
    predictive_percent: float = 3.0
    """The manual's «Процент предиктивного набора»: see the module docstring."""
    set_point_share: float = 0.8
    """The controller aims at this share of the target, keeping a margin for the day's noise."""
    max_lines: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.target_abandon_rate < 1.0:
            raise ValueError(f"target abandonment must be in (0, 1), got {self.target_abandon_rate}")
        if not 0.0 < self.predictive_percent <= 100.0:
            raise ValueError(
                f"predictive percent must be in (0, 100], got {self.predictive_percent}"
            )
        if not 0.0 < self.set_point_share <= 1.0:
            raise ValueError(f"set point share must be in (0, 1], got {self.set_point_share}")
        if self.max_lines is not None and self.max_lines <= 0:
            raise ValueError(f"max lines must be positive, got {self.max_lines}")


class DurationModel:
    """A log-normal fit of measured durations (running moments of the log), with a prior worth
    ``prior_weight`` observations, and cached conditional end probabilities by age in seconds.

    The cache is rebuilt after ``refit_every`` new observations or when the horizon changes,
    so a decision costs a table look-up per operator.
    """

    def __init__(
        self,
        *,
        prior_mean_s: float,
        prior_sd_s: float,
        prior_weight: float,
        refit_every: int = 20,
    ) -> None:
        sigma2 = math.log(1.0 + (prior_sd_s / prior_mean_s) ** 2)
        mu = math.log(prior_mean_s) - sigma2 / 2.0
        self._n = prior_weight
        self._sum = prior_weight * mu
        self._sum2 = prior_weight * (sigma2 + mu * mu)
        self._refit_every = refit_every
        self._unfitted = 0
        self._mu, self._sigma = mu, math.sqrt(sigma2)
        self._horizon_s = -1.0
        self._table: dict[int, float] = {}

    def observe(self, duration_ms: int) -> None:
        x = math.log(max(duration_ms, 1) / 1000.0)
        self._n += 1.0
        self._sum += x
        self._sum2 += x * x
        self._unfitted += 1
        if self._unfitted >= self._refit_every:
            self._refit()

    def _refit(self) -> None:
        mu = self._sum / self._n
        self._mu, self._sigma = mu, math.sqrt(max(self._sum2 / self._n - mu * mu, 1e-6))
        self._unfitted = 0
        self._table.clear()

    @property
    def mean_s(self) -> float:
        return math.exp(self._mu + self._sigma * self._sigma / 2.0)

    def _survival(self, t_s: float) -> float:
        if t_s <= 0.0:
            return 1.0
        return 0.5 * math.erfc((math.log(t_s) - self._mu) / (self._sigma * math.sqrt(2.0)))

    def set_horizon(self, horizon_s: float) -> None:
        if horizon_s != self._horizon_s:
            self._horizon_s = horizon_s
            self._table.clear()

    def ends_within(self, age_ms: int) -> float:
        """P(ends within the horizon | lasted ``age_ms``), at one-second resolution."""
        age = max(age_ms, 0) // 1000
        cached = self._table.get(age)
        if cached is not None:
            return cached
        alive = self._survival(age)
        value = 1.0 if alive < 1e-12 else 1.0 - self._survival(age + self._horizon_s) / alive
        self._table[age] = value
        return value


class DialResolutionModel:
    """How outbound dials resolve, measured: the person rate and, per class (person / machine /
    no person), a 1-second histogram of the time from dial to resolution (a person handed to
    the queue, or the line freed)."""

    _BINS = 180
    REFIT_EVERY = 20

    def __init__(self) -> None:
        self.dials = 0
        self.persons = 0
        self._hist = {kind: [0] * self._BINS for kind in ("person", "machine", "other")}
        self._person_delay_sum_ms = 0
        self._pending_table: list[float] = []
        self._unfitted = 0

    def observe(self, kind: str, resolution_ms: int) -> None:
        if kind not in self._hist:
            raise ValueError(f"dial resolution kind must be person/machine/other, got {kind!r}")
        self.dials += 1
        if kind == "person":
            self.persons += 1
            self._person_delay_sum_ms += resolution_ms
        self._hist[kind][min(resolution_ms // 1000, self._BINS - 1)] += 1
        self._unfitted += 1
        if self._unfitted >= self.REFIT_EVERY or self.dials <= self.REFIT_EVERY:
            self._refit()

    def person_rate(self, floor: float, prior_dials: float) -> float:
        """Measured person rate; starts at 1 (progressive) and is never below ``floor``."""
        rate = (self.persons + prior_dials) / (self.dials + prior_dials)
        return max(rate, floor)

    def mean_person_delay_ms(self, default_ms: int) -> int:
        if self.persons == 0:
            return default_ms
        return self._person_delay_sum_ms // self.persons

    def _refit(self) -> None:
        """Rebuild P(turns into a person | unresolved at age) per second of age."""
        remaining = {k: sum(h) for k, h in self._hist.items()}
        table = []
        for age in range(self._BINS):
            alive = remaining["person"] + remaining["machine"] + remaining["other"]
            table.append(remaining["person"] / alive if alive > 0 else 0.0)
            for kind, hist in self._hist.items():
                remaining[kind] -= hist[age]
        self._pending_table = table
        self._unfitted = 0

    def person_probability(self, age_ms: int, default: float) -> float:
        if self.dials == 0:
            return default
        return self._pending_table[min(max(age_ms, 0) // 1000, self._BINS - 1)]


def _expected_positive_part(mean: float, var: float) -> float:
    """E[max(X, 0)] for X ~ Normal(mean, var)."""
    if var <= 1e-12:
        return max(mean, 0.0)
    sd = math.sqrt(var)
    z = mean / sd
    cdf = 0.5 * math.erfc(-z / math.sqrt(2.0))
    pdf = math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return mean * cdf + sd * pdf


class PredictivePacer:
    """«Предиктивный набор». Feed it measurements with the ``observe_*`` methods; ask it with
    :meth:`calls_to_place`. See the module docstring for the model and the knob."""

    PRIOR_DIALS = 10.0
    """Weight of the starting assumption "every dial reaches a person", in dials."""
    CONTROLLER_STEP = 0.05
    """Change of log θ per person, scaled by the error (1 − set point, or −set point)."""
    THETA_RANGE = (1e-4, 0.5)

    def __init__(self, settings: PredictiveSettings | None = None) -> None:
        self.settings = settings or PredictiveSettings()
        self.dials = DialResolutionModel()
        self.talk = DurationModel(prior_mean_s=120.0, prior_sd_s=60.0, prior_weight=5.0)
        self.wrap_up = DurationModel(prior_mean_s=15.0, prior_sd_s=8.0, prior_weight=5.0)
        self.persons_handled = 0
        self.persons_abandoned = 0
        self._log_theta = math.log(self.settings.target_abandon_rate)

    # --- measurements ------------------------------------------------------------------------

    def observe_dial(self, *, kind: str, resolution_ms: int) -> None:
        """A dial resolved: ``person`` (handed to the queue), ``machine`` (AMD hung up) or
        ``other`` (busy, no answer, failed…), ``resolution_ms`` after it was placed."""
        self.dials.observe(kind, resolution_ms)

    def observe_talk(self, talk_ms: int) -> None:
        self.talk.observe(talk_ms)

    def observe_wrap_up(self, wrap_up_ms: int) -> None:
        self.wrap_up.observe(wrap_up_ms)

    def observe_person(self, *, abandoned: bool) -> None:
        """A person reached an operator, or was abandoned: the controller's feedback."""
        self.persons_handled += 1
        set_point = self.settings.target_abandon_rate * self.settings.set_point_share
        error = (1.0 if abandoned else 0.0) - set_point
        if abandoned:
            self.persons_abandoned += 1
        low, high = self.THETA_RANGE
        self._log_theta = min(
            math.log(high), max(math.log(low), self._log_theta - self.CONTROLLER_STEP * error / set_point)
        )

    @property
    def abandon_rate(self) -> float:
        """The day's running abandonment rate (abandoned / persons)."""
        return self.persons_abandoned / self.persons_handled if self.persons_handled else 0.0

    @property
    def theta(self) -> float:
        """The per-decision abandonment allowance currently in force."""
        theta = math.exp(self._log_theta)
        target = self.settings.target_abandon_rate
        if self.persons_handled >= 50 and self.abandon_rate > target * self.settings.set_point_share:
            # Over the set point for the day: only dial what is nearly certain to be taken,
            # until the running rate comes back down.
            theta = min(theta, target * 0.1)
        return theta

    # --- decision ----------------------------------------------------------------------------

    def calls_to_place(self, inp: PacingInput) -> int:
        p = self.dials.person_rate(self.settings.predictive_percent / 100.0, self.PRIOR_DIALS)
        # Horizons rounded to half a second so that the cached tables survive small changes.
        horizon_s = round(self.dials.mean_person_delay_ms(default_ms=15_000) / 500) / 2
        self.wrap_up.set_horizon(horizon_s)
        # A talking operator is free within h if the talk ends within h − (mean wrap-up).
        self.talk.set_horizon(max(round((horizon_s - self.wrap_up.mean_s) * 2) / 2, 0.0))
        now = inp.now_ms
        supply = supply_var = 0.0
        for op in inp.operators:
            state = op.state
            if state is AgentState.AVAILABLE:
                supply += 1.0
                continue
            if state is AgentState.WRAP_UP:
                f = self.wrap_up.ends_within(now - op.since_ms)
            elif state is AgentState.TALKING:
                f = self.talk.ends_within(now - op.since_ms)
            else:
                continue
            supply += f
            supply_var += f * (1.0 - f)
        if supply <= 0.0:
            return 0
        demand = float(inp.waiting_persons)
        demand_var = 0.0
        for started in inp.dial_started_ms:
            q = self.dials.person_probability(now - started, p)
            demand += q
            demand_var += q * (1.0 - q)
        theta = self.theta
        limit = math.ceil(supply / p) + 1
        if self.settings.max_lines is not None:
            limit = min(limit, self.settings.max_lines - inp.lines_in_use)
        n = 0
        while n < limit:
            mean = demand + (n + 1) * p - supply
            var = demand_var + (n + 1) * p * (1.0 - p) + supply_var
            if _expected_positive_part(mean, var) > theta * (demand + (n + 1) * p):
                break
            n += 1
        return n

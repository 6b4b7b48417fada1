"""«Предиктивный набор» (manual §5.2.5): dial ahead of operators who will soon be free.

Sans-IO like every pacer: :meth:`PredictivePacer.calls_to_place` takes a
:class:`~sipspeak.dialer.pacing.PacingInput` and returns a count; measurements come in through
the ``observe_*`` methods. numpy only does the arithmetic; nothing here reads a clock.

The model (one decision)
------------------------
Time ahead is cut into one-second steps ``h = 0 … H``. For each ``h``:

* demand ``A(h)`` — persons who will have reached the queue by ``now + h``: persons waiting
  now, each call in flight with the measured probability that it turns into a person within
  ``h`` given how long it has been ringing (per-class resolution-time histograms), and ``n``
  new dials, each a person by ``h`` with the measured probability ``G(h)``;
* supply ``F(h + w)`` — operators free by ``now + h + w``, where ``w`` is how long a person may
  wait (the queue timeout): 1 for an available operator; for wrap-up, the conditional probability
  that it ends within the step given its age; for talk, that talk *and then* wrap-up end within
  it (a convolution of the two measured log-normal fits). Under a wrap-up limit
  (``wrap_up_limit_ms``) the deadline is known: a wrap-up ends by it for certain.

Treating ``A(h) − F(h + w)`` as normal, ``E[(A − F)⁺]`` is the expected number of persons
short of an operator at ``h``; summed over the steps it is the expected shortage in
person-seconds, ``S(n)``. One more call is worth placing while the shortage it adds, per person
it is expected to bring, stays within the allowance: ``S(n + 1) − S(n) ≤ θ · G(H)``. The pacer
places the largest ``n`` for which every call so far passed that test. (A marginal test rather
than a cap on the total: with a concave trade-off between talk time and abandonment, spending
the abandonment budget at an even marginal price gives the most talk for it.)

``θ`` is the output of the abandonment controller. It starts at the target rate; every person
who reaches or misses an operator moves ``log θ`` against the error from the set point
(``set_point_share`` × target) with a gain that shrinks as 1/√n — a stochastic-approximation
controller, so the long-run rate settles at the set point without jitter — and while the day's
running rate is above the set point ``θ`` is scaled down steeply, so the day's abandonment stays
under ``target_abandon_rate`` (3 % by default).

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
import numpy.typing as npt

from sipspeak.dialer.agents import AgentState
from sipspeak.dialer.pacing import PacingInput

FloatArray = npt.NDArray[np.float64]

HORIZON_S = 45
"""Steps of the look-ahead grid, in seconds; longer than any dial takes to resolve."""
MAX_AGE_S = 1800
"""Ages beyond this use the last row of the tables."""


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


class LogNormalFit:
    """Running log-moments of measured durations with a prior worth ``prior_weight`` samples."""

    def __init__(
        self, *, prior_mean_s: float, prior_sd_s: float, prior_weight: float
    ) -> None:
        sigma2 = math.log(1.0 + (prior_sd_s / prior_mean_s) ** 2)
        mu = math.log(prior_mean_s) - sigma2 / 2.0
        self.count = prior_weight
        self._sum = prior_weight * mu
        self._sum2 = prior_weight * (sigma2 + mu * mu)

    def observe(self, duration_ms: int) -> None:
        x = math.log(max(duration_ms, 1) / 1000.0)
        self.count += 1.0
        self._sum += x
        self._sum2 += x * x

    @property
    def mu_sigma(self) -> tuple[float, float]:
        mu = self._sum / self.count
        return mu, math.sqrt(max(self._sum2 / self.count - mu * mu, 1e-6))

    @property
    def mean_s(self) -> float:
        mu, sigma = self.mu_sigma
        return math.exp(mu + sigma * sigma / 2.0)

    def survival(self, t_s: FloatArray) -> FloatArray:
        """P(duration > t) for each t (seconds)."""
        mu, sigma = self.mu_sigma
        t = np.maximum(t_s, 1e-9)
        z = (np.log(t) - mu) / (sigma * math.sqrt(2.0))
        out: FloatArray = 0.5 * _erfc(z)
        return np.where(t_s <= 0.0, 1.0, out)


def _erfc(z: FloatArray) -> FloatArray:
    """Complementary error function, elementwise (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7)."""
    x = np.abs(z)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (
        0.254829592
        + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    tail = poly * np.exp(-x * x)
    out: FloatArray = np.where(z >= 0.0, tail, 2.0 - tail)
    return out


def _ends_within_table(fit: LogNormalFit, limit_s: float | None = None) -> FloatArray:
    """T[a, h] = P(ends within h seconds | lasted a seconds); certain once ``a + h`` reaches
    ``limit_s`` (a deadline that ends it)."""
    ages = np.arange(MAX_AGE_S + HORIZON_S + 1, dtype=np.float64)
    s = _survival_with_limit(fit, ages, limit_s)
    alive = s[: MAX_AGE_S + 1, None]
    later = s[np.arange(MAX_AGE_S + 1)[:, None] + np.arange(HORIZON_S + 1)[None, :]]
    with np.errstate(divide="ignore", invalid="ignore"):
        table = np.where(alive > 1e-12, 1.0 - later / alive, 1.0)
    return table.astype(np.float64)


def _survival_with_limit(
    fit: LogNormalFit, t_s: FloatArray, limit_s: float | None
) -> FloatArray:
    """P(duration > t), zero from ``limit_s`` on."""
    s = fit.survival(t_s)
    if limit_s is None:
        return s
    out: FloatArray = np.where(t_s >= limit_s, 0.0, s)
    return out


def _talk_then_wrap_table(
    talk: LogNormalFit, wrap: LogNormalFit, wrap_limit_s: float | None = None
) -> FloatArray:
    """T[a, h] = P(talk ends and then wrap-up ends within h seconds | talk lasted a seconds)."""
    ends = _ends_within_table(talk)  # cumulative in h
    ending_in_step = np.diff(ends, axis=1, prepend=0.0)  # talk ends in [h-1, h)
    h = np.arange(HORIZON_S + 1, dtype=np.float64)
    wrap_cdf = 1.0 - _survival_with_limit(
        wrap, h[None, :] - h[:, None] + 0.5, wrap_limit_s
    )  # [k, h]: wrap ≤ h − k + ½
    wrap_cdf = np.where(h[None, :] >= h[:, None], wrap_cdf, 0.0)
    table: FloatArray = np.einsum("ak,kh->ah", ending_in_step, wrap_cdf)
    return table


class DialResolutionModel:
    """Measured dial outcomes: per class (person / machine / other) a one-second histogram of
    the time from dial to resolution (a person handed to the queue, or the line freed)."""

    KINDS = ("person", "machine", "other")

    def __init__(self, *, prior_dials: float, prior_delay_s: int) -> None:
        self.dials = 0
        self.persons = 0
        self._hist = {kind: np.zeros(HORIZON_S + 1) for kind in self.KINDS}
        self._hist["person"][prior_delay_s] = prior_dials

    def observe(self, kind: str, resolution_ms: int) -> None:
        if kind not in self._hist:
            raise ValueError(
                f"dial resolution kind must be person/machine/other, got {kind!r}"
            )
        self.dials += 1
        if kind == "person":
            self.persons += 1
        self._hist[kind][min(resolution_ms // 1000, HORIZON_S)] += 1.0

    def tables(self, floor: float) -> tuple[FloatArray, FloatArray]:
        """``(Q, G)``: Q[a, h] = P(a person within h | unresolved at age a);
        G[h] = P(a new dial is a person within h), its total clamped to at least ``floor``."""
        person = self._hist["person"]
        total = person + self._hist["machine"] + self._hist["other"]
        n = total.sum()
        cum_person = np.concatenate(
            ([0.0], np.cumsum(person))
        )  # persons resolved before bin
        unresolved = (
            n - np.concatenate(([0.0], np.cumsum(total)))[:-1]
        )  # resolved at >= bin
        ages = np.arange(HORIZON_S + 1)
        upto = np.minimum(ages[:, None] + ages[None, :], HORIZON_S + 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            q = (cum_person[upto] - cum_person[ages][:, None]) / unresolved[:, None]
        q = np.where(unresolved[:, None] > 0, q, 0.0)
        g = cum_person[np.minimum(ages + 1, HORIZON_S + 1)] / n
        rate = person.sum() / n
        if 0.0 < rate < floor:
            g = g * (floor / rate)
        return q.astype(np.float64), g.astype(np.float64)


def _rows_at(table: FloatArray, ages_ms: list[int]) -> FloatArray:
    """Rows of a per-second table at fractional ages, interpolated linearly."""
    if not ages_ms:
        return np.zeros((0, table.shape[1]))
    last = table.shape[0] - 1
    ages = np.minimum(np.array(ages_ms, dtype=np.float64) / 1000.0, float(last))
    low = np.floor(ages).astype(np.intp)
    high = np.minimum(low + 1, last)
    frac = (ages - low)[:, None]
    rows: FloatArray = table[low] * (1.0 - frac) + table[high] * frac
    return rows


def _expected_positive_part(mean: FloatArray, var: FloatArray) -> FloatArray:
    """E[max(X, 0)] for X ~ Normal(mean, var), elementwise."""
    sd = np.sqrt(np.maximum(var, 1e-12))
    z = mean / sd
    cdf = 0.5 * _erfc(-z / math.sqrt(2.0))
    pdf = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    out: FloatArray = mean * cdf + sd * pdf
    return out


class PredictivePacer:
    """«Предиктивный набор». Feed it with the ``observe_*`` methods; ask it with
    :meth:`calls_to_place`. The model and the knob are described in the module docstring."""

    PRIOR_DIALS = 10.0
    PRIOR_DELAY_S = 15
    CONTROLLER_GAIN = (0.03, 0.0005)
    """Step of log θ per person (× error / set point): large while the day is young, shrinking
    as 1/√n towards the floor so that θ stops jittering once it has found its level."""
    THETA_RANGE = (1e-3, 1.0)
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
        """The per-decision abandonment allowance in force."""
        theta = math.exp(self._log_theta)
        set_point = self.settings.target_abandon_rate * self.settings.set_point_share
        rate = self.abandon_rate
        if rate > set_point:
            theta *= (set_point / rate) ** 4
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
            _talk_then_wrap_table(self.talk, self.wrap_up, limit_s)[:, shift]
        )
        self._wrap_table = np.ascontiguousarray(
            _ends_within_table(self.wrap_up, limit_s)[:, shift]
        )
        self._durations_unfitted = 0

    def calls_to_place(self, inp: PacingInput) -> int:
        if self._dials_unfitted >= self.REFIT_DIALS_EVERY:
            self._refit_dials()
        samples = self.talk.count + self.wrap_up.count
        if self._durations_unfitted >= min(400.0, self.REFIT_DURATIONS_SHARE * samples):
            self._refit_durations()
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
            return 0
        f = np.concatenate(
            [
                _rows_at(self._talk_table, talk_ages),
                _rows_at(self._wrap_table, wrap_ages),
            ]
        )
        supply = available + f.sum(axis=0)
        supply_var = (f * (1.0 - f)).sum(axis=0)

        q = _rows_at(self._q_table, [now - s for s in inp.dial_started_ms])
        demand = inp.waiting_persons + q.sum(axis=0)
        demand_var = (q * (1.0 - q)).sum(axis=0)

        theta = self.theta
        g = self._g
        limit = math.ceil(float(supply[-1]) / max(float(g[-1]), 1e-9)) + 1
        if self.settings.max_lines is not None:
            limit = min(limit, self.settings.max_lines - inp.lines_in_use)
        # Every candidate count at once: row k is "place k calls".
        n = 0
        chunk = 2
        while n < limit:
            k = np.arange(n, min(n + chunk, limit) + 1, dtype=np.float64)[:, None]
            mean = demand + k * g - supply
            var = demand_var + k * (g * (1.0 - g)) + supply_var
            shortage = _expected_positive_part(mean, var).sum(axis=1)
            allowed = np.diff(shortage) <= theta * g[-1]
            if not allowed.all():
                return n + int(np.argmin(allowed))
            n += len(allowed)
            chunk *= 4
        return n

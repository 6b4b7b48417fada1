"""The measurements behind «Предиктивный набор»: duration fits and the dial-outcome life table.

Sans-IO and clock-free: :class:`LogNormalFit` keeps running log-moments of talk and wrap-up
times; :class:`DialResolutionModel` what became of the dials (person, machine, anything else, or
withdrawn still ringing) and when. The ``*_table`` functions turn them into one-second grids the
pacer reads rows of: ``T[a, h]`` = probability that something aged ``a`` seconds resolves within
``h`` more. numpy only does the arithmetic.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

HORIZON_S = 45
"""Steps of the look-ahead grid, in seconds; longer than any dial takes to resolve."""
MAX_AGE_S = 1800
"""Ages beyond this use the last row of the tables."""


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
        out: FloatArray = 0.5 * erfc(z)
        return np.where(t_s <= 0.0, 1.0, out)


def erfc(z: FloatArray) -> FloatArray:
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


def ends_within_table(fit: LogNormalFit, limit_s: float | None = None) -> FloatArray:
    """T[a, h] = P(ends within h seconds | lasted a seconds); certain once ``a + h`` reaches
    ``limit_s`` (a deadline that ends it)."""
    ages = np.arange(MAX_AGE_S + HORIZON_S + 1, dtype=np.float64)
    s = survival_with_limit(fit, ages, limit_s)
    alive = s[: MAX_AGE_S + 1, None]
    later = s[np.arange(MAX_AGE_S + 1)[:, None] + np.arange(HORIZON_S + 1)[None, :]]
    with np.errstate(divide="ignore", invalid="ignore"):
        table = np.where(alive > 1e-12, 1.0 - later / alive, 1.0)
    return table.astype(np.float64)


def survival_with_limit(
    fit: LogNormalFit, t_s: FloatArray, limit_s: float | None
) -> FloatArray:
    """P(duration > t), zero from ``limit_s`` on."""
    s = fit.survival(t_s)
    if limit_s is None:
        return s
    out: FloatArray = np.where(t_s >= limit_s, 0.0, s)
    return out


def talk_then_wrap_table(
    talk: LogNormalFit, wrap: LogNormalFit, wrap_limit_s: float | None = None
) -> FloatArray:
    """T[a, h] = P(talk ends and then wrap-up ends within h seconds | talk lasted a seconds)."""
    ends = ends_within_table(talk)  # cumulative in h
    ending_in_step = np.diff(ends, axis=1, prepend=0.0)  # talk ends in [h-1, h)
    h = np.arange(HORIZON_S + 1, dtype=np.float64)
    wrap_cdf = 1.0 - survival_with_limit(
        wrap, h[None, :] - h[:, None] + 0.5, wrap_limit_s
    )  # [k, h]: wrap ≤ h − k + ½
    wrap_cdf = np.where(h[None, :] >= h[:, None], wrap_cdf, 0.0)
    table: FloatArray = np.einsum("ak,kh->ah", ending_in_step, wrap_cdf)
    return table


class DialResolutionModel:
    """Measured dial outcomes: per class (person / machine / other) a one-second histogram of
    the time from dial to resolution (a person handed to the queue, or the line freed), and the
    dials withdrawn unresolved (censored: all that is known is that they lasted that long).

    The tables are a life table (Kaplan–Meier with the actuarial half-interval for dials
    withdrawn within a second): per second the hazard of each class among the dials still
    unresolved. Without withdrawals it is the plain histogram's arithmetic; with them the dials
    withdrawn while ringing do not make the late outcomes look rarer than they are.
    """

    KINDS = ("person", "machine", "other")

    def __init__(self, *, prior_dials: float, prior_delay_s: int) -> None:
        self.dials = 0
        self.persons = 0
        self.withdrawn = 0
        self._hist = {kind: np.zeros(HORIZON_S + 1) for kind in self.KINDS}
        self._hist["person"][prior_delay_s] = prior_dials
        self._censored = np.zeros(HORIZON_S + 1)

    def observe(self, kind: str, resolution_ms: int) -> None:
        if kind not in self._hist:
            raise ValueError(
                f"dial resolution kind must be person/machine/other, got {kind!r}"
            )
        self.dials += 1
        if kind == "person":
            self.persons += 1
        self._hist[kind][min(resolution_ms // 1000, HORIZON_S)] += 1.0

    def censor(self, age_ms: int) -> None:
        """A dial withdrawn unresolved ``age_ms`` after it was placed."""
        self.withdrawn += 1
        self._censored[min(max(age_ms, 0) // 1000, HORIZON_S)] += 1.0

    def tables(self, floor: float) -> tuple[FloatArray, FloatArray]:
        """``(Q, G)``: Q[a, h] = P(a person within h | unresolved at age a), from the seconds
        ``a … a + h − 1``; G[h] = P(a new dial is a person within h) = Q[0, h], its total
        clamped to at least ``floor``."""
        person = self._hist["person"]
        total = person + self._hist["machine"] + self._hist["other"]
        resolved_from = np.cumsum(total[::-1])[::-1]  # resolved in bin b or later
        censored_after = np.concatenate((np.cumsum(self._censored[::-1])[::-1][1:], [0.0]))
        at_risk = resolved_from + censored_after + self._censored / 2.0
        with np.errstate(divide="ignore", invalid="ignore"):
            hazard = np.where(at_risk > 0, total / at_risk, 0.0)
            hazard_person = np.where(at_risk > 0, person / at_risk, 0.0)
        # unresolved[b]: P(a dial is still unresolved at the start of second b).
        unresolved = np.concatenate(([1.0], np.cumprod(1.0 - hazard)))[:-1]
        cum_person = np.concatenate(([0.0], np.cumsum(unresolved * hazard_person)))
        ages = np.arange(HORIZON_S + 1)
        upto = np.minimum(ages[:, None] + ages[None, :], HORIZON_S + 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            q = (cum_person[upto] - cum_person[ages][:, None]) / unresolved[:, None]
        q = np.where(unresolved[:, None] > 1e-12, q, 0.0)
        g = cum_person[ages]  # = Q[0, h]: a new dial is a dial of age 0
        rate = float(cum_person[-1])
        if 0.0 < rate < floor:
            g = g * (floor / rate)
        return q.astype(np.float64), g.astype(np.float64)


def rows_at(table: FloatArray, ages_ms: list[int]) -> FloatArray:
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


def normal_cdf(z: FloatArray) -> FloatArray:
    """Φ(z), elementwise."""
    out: FloatArray = 0.5 * erfc(-z / math.sqrt(2.0))
    return out

"""Jump intensity and size from GARCH-standardised returns, and the GARCH fit that goes with them.

**Method** (a threshold rule in the spirit of Lee & Mykland 2008, on daily data):

1. fit GARCH and GJR with Student-t shocks to the within-contract daily returns and
   choose one (:func:`opl.calibration.garch.fit_models`);
2. a day is a *jump day* when its standardised residual is extreme,
   ``|r_t − μ| > k · σ_t`` with σ_t the fitted conditional volatility and k = 4.5 by
   default;
3. refit GARCH on the returns with the jump days' shocks removed (their return set to
   the fitted mean): in the simulator jumps come on top of the GARCH diffusion and do
   not feed its recursion (``opl.runtime.engine.processes``); judge the original days again
   under the refit's σ_t (a jump left in the recursion inflated σ_t after it and could
   hide the next one) and repeat until the set of jump days settles (at most 5 rounds);
4. a Student-t diffusion puts some days beyond k·σ_t by itself: the expected number
   E = n · P(|t_ν| > k) under the refit's ν (scaled to unit variance). The count is
   tested against it: jumps are *found* when a Poisson(E) count would reach the
   observed one with probability below ``alpha`` (5%):

   * found: intensity = (count − E) / years, size = mean and standard deviation of the
     jump days' log returns, and the refit of step 3 is the diffusion;
   * not found: the fat tails of the Student-t account for the extreme days; intensity
     0 and the first fit of step 1 is the diffusion (removing the days would count the
     same tail twice, once in ν and once in the jumps).

What it cannot see, stated in every result: a jump smaller than k·σ_t passes as
diffusion; the size of a jump day includes that day's diffusive move (about one daily
σ); the sizes are those of the largest moves, so their spread is wider than that of all
jumps would be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from opl.calibration.garch import GarchFit, GarchSelection, fit_models

__all__ = ["JumpEstimate", "JumpModel", "detect_jump_days", "expected_false", "without_jumps", "fit_jump_model",
           "declared_jumps_test", "DEFAULT_THRESHOLD"]

DEFAULT_THRESHOLD = 4.5
_MAX_ROUNDS = 5


def expected_false(n: int, threshold: float, nu: float) -> float:
    """Days beyond ``threshold`` unit standard deviations expected among ``n`` Student-t(ν) shocks.

    >>> round(expected_false(10_000, 4.0, 1e6), 2)  # the normal limit: 2·(1 − Φ(4))·n
    0.63
    """
    if not nu > 2:
        return float("nan")
    return float(n * 2.0 * stats.t.sf(threshold * math.sqrt(nu / (nu - 2.0)), nu))


def detect_jump_days(returns: pd.Series, fit: GarchFit, *, threshold: float = DEFAULT_THRESHOLD) -> pd.Series:
    """The returns of the days with ``|r_t − μ| > threshold · σ_t`` under ``fit``.

    σ_t is the fit's conditional volatility, so ``fit`` may have been made on a cleaned
    copy of ``returns`` (step 3) and still judge the original days.
    """
    if threshold <= 0:
        raise ValueError("threshold must be positive")
    r = returns.dropna()
    sigma = fit.conditional_vol.reindex(r.index) / math.sqrt(fit.periods_per_year)
    return r[np.abs(r - fit.mu) > threshold * sigma]


def without_jumps(returns: pd.Series, days, mu: float) -> pd.Series:
    """``returns`` with the return of each of ``days`` set to ``mu`` (no shock), for the refit of step 3."""
    out = returns.copy()
    out.loc[out.index.isin(pd.DatetimeIndex(days))] = mu
    return out


@dataclass
class JumpEstimate:
    """Detected jump days and the Merton parameters they give (module docstring).

    ``intensity`` is a year of ``periods_per_year`` trading days; ``per_day`` the excess
    count per return, for mapping onto another year length.
    """

    count: int
    n: int
    threshold: float
    expected_false: float
    excess: float
    pvalue: float
    alpha: float
    per_day: float
    intensity: float
    mean: float
    std: float
    periods_per_year: float
    dates: list[str] = field(default_factory=list)
    sizes: list[float] = field(default_factory=list)

    @property
    def found(self) -> bool:
        """Whether the data show significantly more extreme days than the Student-t diffusion explains."""
        return self.count > 0 and self.excess > 0 and self.pvalue < self.alpha

    def to_dict(self) -> dict:
        return {"method": f"|r - mu| > {self.threshold:g} x GARCH conditional sd, count net of the Student-t's "
                          "expected exceedances", "threshold": self.threshold, "count": self.count, "n": self.n,
                "expected_false_detections": self.expected_false, "excess": self.excess, "pvalue": self.pvalue,
                "alpha": self.alpha, "found": self.found,
                "per_day": self.per_day, "intensity": self.intensity, "mean": self.mean, "std": self.std,
                "dates": self.dates, "sizes": self.sizes}

    def summary(self) -> str:
        head = (f"Jumps: {self.count} day{'s' if self.count != 1 else ''} beyond {self.threshold:g} conditional sd "
                f"in {self.n} ({self.expected_false:.1f} expected from the Student-t diffusion alone, "
                f"p = {self.pvalue:.3g})")
        if not self.found:
            return head + ": no jumps beyond the Student-t tails, intensity 0"
        std = f"{self.std:.2%}" if math.isfinite(self.std) else "n/a (one jump)"
        return head + f": {self.intensity:.2f} a year, size mean {self.mean:+.2%}, sd {std}"


@dataclass
class JumpModel:
    """The diffusion (a GARCH selection) and the jumps estimated together."""

    garch: GarchSelection
    jumps: JumpEstimate
    first_pass: GarchSelection
    refitted: bool

    def to_dict(self) -> dict:
        return {"jumps": self.jumps.to_dict(), "refitted_without_jumps": self.refitted,
                "first_pass": None if not self.refitted else self.first_pass.to_dict()}


def _poisson_p(count: int, expected: float) -> float:
    """P(N ≥ count) for N ~ Poisson(expected)."""
    if count <= 0:
        return 1.0
    return float(stats.poisson.sf(count - 1, expected)) if expected > 0 else 0.0


def fit_jump_model(returns: pd.Series, *, threshold: float = DEFAULT_THRESHOLD,
                   criterion: Literal["bic", "aic"] = "bic", periods_per_year: float = 252.0,
                   alpha: float = 0.05) -> JumpModel:
    """Steps 1–4 of the module docstring on daily log returns (NaN roll days skipped)."""
    first = fit_models(returns, criterion=criterion, periods_per_year=periods_per_year)
    days = detect_jump_days(returns, first.best, threshold=threshold)
    n = int(returns.notna().sum())
    years = n / periods_per_year
    diffusion, refitted = first, False
    false = expected_false(n, threshold, first.best.nu)
    second = first
    for _ in range(_MAX_ROUNDS):
        if not len(days):
            break
        # A jump left in the recursion inflates σ_t after it and hides the next one: judge the
        # original days again under the refit until the set of jump days settles.
        second = fit_models(without_jumps(returns, days.index, first.best.mu), criterion=criterion,
                            periods_per_year=periods_per_year)
        again = detect_jump_days(returns, second.best, threshold=threshold)
        if again.index.equals(days.index):
            break
        days = again
    if len(days):
        false = expected_false(n, threshold, second.best.nu)
    excess = len(days) - false
    pvalue = _poisson_p(len(days), false)
    found = len(days) > 0 and excess > 0 and pvalue < alpha
    if found:
        diffusion, refitted = second, True
    sizes = days.to_numpy()
    estimate = JumpEstimate(
        count=len(days), n=n, threshold=threshold, expected_false=false, excess=float(excess), pvalue=pvalue,
        alpha=alpha,
        per_day=max(excess, 0.0) / n if found else 0.0,
        intensity=max(excess, 0.0) / years if found else 0.0,
        mean=float(np.mean(sizes)) if len(sizes) else float("nan"),
        std=float(np.std(sizes, ddof=1)) if len(sizes) > 1 else float("nan"),
        periods_per_year=periods_per_year,
        dates=[str(pd.Timestamp(d).date()) for d in days.index], sizes=[float(s) for s in sizes])
    return JumpModel(garch=diffusion, jumps=estimate, first_pass=first, refitted=refitted)


def declared_jumps_test(*, count: int, n: int, threshold: float, expected_diffusion: float, intensity: float,
                        mean: float, std: float, daily_vol: float, days_per_year: float,
                        alpha: float = 0.05) -> dict:
    """Do the data reject a *declared* jump component? A one-sided Poisson count test.

    Step 4 of the module docstring asks whether the data show *more* extreme days than a Student-t
    diffusion explains; not finding jumps there does not show that there are none (the t's tails can
    absorb them). This is the converse test, the one that may remove a ``jump`` a file declares: under H0
    the declared jumps (``intensity`` a year of ``days_per_year`` days, log sizes N(``mean``, ``std``²))
    come on top of the diffusion, so the days beyond ``threshold`` · σ are expected to number

        E0 = expected_diffusion + n · intensity / days_per_year · P(|J + σZ| > threshold · σ),

    J + σZ ~ N(mean, std² + σ²) with σ = ``daily_vol`` (the diffusion's unconditional daily volatility
    stands in for the conditional one the detection used; more than one jump a day is neglected). H0 is
    rejected when a Poisson(E0) count would fall to the observed ``count`` or below with probability
    under ``alpha``.

    Returns
    -------
    dict
        ``expected`` (E0), ``count``, ``pvalue``, ``alpha``, ``rejected`` and ``text`` (the test in words).

    >>> r = declared_jumps_test(count=0, n=2000, threshold=4.5, expected_diffusion=1.0, intensity=20.0,
    ...                         mean=0.0, std=0.08, daily_vol=0.015, days_per_year=255.5)
    >>> r["rejected"], round(r["expected"], 1)
    (True, 64.7)
    """
    sd = math.sqrt(std**2 + daily_vol**2)
    edge = threshold * daily_vol
    beyond = float(stats.norm.sf((edge - mean) / sd) + stats.norm.cdf((-edge - mean) / sd)) if sd > 0 else \
        float(abs(mean) > edge)
    expected = expected_diffusion + n * intensity / days_per_year * beyond
    pvalue = float(stats.poisson.cdf(count, expected)) if expected > 0 else 1.0
    rejected = pvalue < alpha
    text = (f"declared jumps ({intensity:g} a year of N({mean:+.1%}, {std:.1%})) predict {expected:.1f} days beyond "
            f"{threshold:g} sd in {n}, the data show {count}: one-sided Poisson p = {pvalue:.3g}, "
            + (f"rejected at {alpha:.0%}" if rejected else f"not rejected at {alpha:.0%}"))
    return {"expected": expected, "count": count, "pvalue": pvalue, "alpha": alpha, "rejected": rejected,
            "text": text}

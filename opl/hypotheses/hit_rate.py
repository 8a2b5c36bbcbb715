"""How often is the spot team's direction view right, and how sure can we be?

Definitions
-----------
Entry
    The close of the first trading day on or after the view's ``date`` (a view
    is assumed known by that day's close; one dated on a holiday is entered at
    the next session).
Realised move
    The within-contract log move of the close over the next ``horizon``
    trading days (default 21, about one month, the strategy's holding
    period): the sum of the daily log returns, a roll day contributing nothing
    (:func:`opl.data.rolls.forward_moves`), so a contract roll never counts as
    a move.
Flat band
    The move is ``up`` when it is above ``+flat_band``, ``down`` below
    ``-flat_band``, ``flat`` otherwise (default 0.03, i.e. ±3 % in log terms,
    about a third of a month's standard deviation for jujube).
Hit
    The view equals the realised class. Views whose window runs past the end
    of the data are unresolved: listed and counted, not scored.

Intervals are two-sided at ``1 - alpha``: Wilson (score) and Clopper–Pearson
(exact), from ``statsmodels.stats.proportion.proportion_confint``. They assume
independent outcomes; overlapping windows (views less than ``horizon`` days
apart) are counted because they break that.

Sample size
-----------
To *claim* a rate of at least ``claim`` (0.90) one tests H0: p <= claim against
H1: p > claim with an exact one-sided binomial test at level ``alpha``. If the
true rate were exactly 0.90 no sample would suffice, so the size is given for
true rates above it (0.93, 0.95, 0.97 and the estimate when it is above the
claim): the smallest n from which on the test's power is at least ``power``
for every larger n (the exact power saw-tooths with n, so the first n where it
touches ``power`` would be misleading). The normal approximation is given
beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from opl.data.rolls import ContractReturns, classify_moves, forward_moves

__all__ = ["HitRateResult", "hit_rate", "intervals", "sample_size_for_claim", "claim_power"]

_CLASSES = ("up", "down", "flat")


def intervals(*, hits: int, n: int, alpha: float = 0.05) -> dict[str, tuple[float, float]]:
    """Wilson and Clopper–Pearson two-sided intervals at ``1 - alpha``."""
    from statsmodels.stats.proportion import proportion_confint

    if n <= 0:
        raise ValueError("n must be > 0")
    wilson = proportion_confint(hits, n, alpha=alpha, method="wilson")
    exact = proportion_confint(hits, n, alpha=alpha, method="beta")
    return {"wilson": (float(wilson[0]), float(wilson[1])),
            "clopper_pearson": (float(exact[0]), float(exact[1]))}


def sample_size_for_claim(*, claim: float = 0.90, true_rate: float, alpha: float = 0.05, power: float = 0.80) -> dict:
    """Signals needed to claim ``rate >= claim`` when the rate is really ``true_rate``.

    Returns
    -------
    dict
        ``exact``: the smallest n whose exact one-sided binomial test has power
        >= ``power`` at that n and at every larger n searched (up to four times
        the normal approximation plus 200); ``normal``: the normal
        approximation; ``true_rate``.
    """
    if not 0 < claim < true_rate < 1:
        raise ValueError("need 0 < claim < true_rate < 1")
    z_a, z_b = stats.norm.isf(alpha), stats.norm.isf(1.0 - power)
    normal = int(np.ceil(((z_a * np.sqrt(claim * (1 - claim)) + z_b * np.sqrt(true_rate * (1 - true_rate)))
                          / (true_rate - claim)) ** 2))
    n = np.arange(1, 4 * normal + 201)
    # Smallest c with P(X >= c | claim) <= alpha; ppf gives P(X <= c-1) >= 1 - alpha.
    critical = stats.binom.ppf(1.0 - alpha, n, claim) + 1
    achieved = stats.binom.sf(critical - 1, n, true_rate)
    ok = achieved >= power
    ok_after = np.flip(np.minimum.accumulate(np.flip(ok)))
    exact = int(n[np.argmax(ok_after)]) if ok_after.any() else None
    return {"true_rate": true_rate, "exact": exact, "normal": normal}


def claim_power(*, n: int, claim: float = 0.90, true_rate: float, alpha: float = 0.05) -> float:
    """Exact power of the one-sided binomial test of ``rate <= claim`` with ``n`` signals."""
    critical = stats.binom.ppf(1.0 - alpha, n, claim) + 1
    return float(stats.binom.sf(critical - 1, n, true_rate))


@dataclass
class HitRateResult:
    """Hit rate of the direction view with its intervals, tests and sample-size needs."""

    estimate: float | None
    n: int
    hits: int
    wilson: tuple[float, float] | None
    clopper_pearson: tuple[float, float] | None
    alpha: float
    horizon: int
    flat_band: float
    claim: float
    power: float
    pvalue_below_claim: float | None
    pvalue_above_claim: float | None
    confusion: pd.DataFrame
    scored: pd.DataFrame
    unresolved: list[str]
    n_rolls_inside: int
    n_overlapping: int
    sample_sizes: list[dict] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """``supported``, ``rejected``, ``not established`` (for the claim) or ``no data``."""
        if self.n == 0:
            return "no data"
        if self.pvalue_above_claim is not None and self.pvalue_above_claim < self.alpha:
            return "supported"
        if self.pvalue_below_claim is not None and self.pvalue_below_claim < self.alpha:
            return "rejected"
        return "not established"

    @property
    def plain(self) -> str:
        if self.n == 0:
            return "No view could be scored: no signals, or none with a complete window."
        lo, hi = self.wilson
        text = (f"The view was right {self.hits} times out of {self.n} ({self.estimate:.1%}); the "
                f"{1 - self.alpha:.0%} Wilson interval is {lo:.1%}–{hi:.1%}.")
        if self.verdict == "supported":
            return text + f" That supports a rate of at least {self.claim:.0%} (one-sided exact test)."
        if self.verdict == "rejected":
            return text + f" A rate of {self.claim:.0%} is contradicted by the data (one-sided exact test)."
        need = next((s for s in self.sample_sizes if s["exact"]), None)
        more = (f" Claiming ≥ {self.claim:.0%} would need about {need['exact']} views if the true rate were "
                f"{need['true_rate']:.0%}." if need else "")
        return text + f" The data neither confirm nor refute {self.claim:.0%}." + more

    @property
    def implication(self) -> str:
        if self.n == 0:
            return "Keep the hit rate as an untested assumption; run the simulation across a range (e.g. 0.5–0.9)."
        lo, hi = self.wilson
        return (f"Use {self.estimate:.2f} as the simulation's `signal direction hit_rate` and stress it over "
                f"[{lo:.2f}, {hi:.2f}]; size positions on the lower end ({lo:.2f}), not on {self.claim:.2f}.")

    def summary(self) -> str:
        if self.n == 0:
            return f"Direction hit rate: no scored views. {self.plain}"
        lines = [f"Direction hit rate: {self.verdict.upper()} for ≥ {self.claim:.0%} "
                 f"(horizon {self.horizon} days, flat band ±{self.flat_band:.1%})",
                 f"  estimate {self.estimate:.3f} = {self.hits}/{self.n}; Wilson [{self.wilson[0]:.3f}, "
                 f"{self.wilson[1]:.3f}], Clopper–Pearson [{self.clopper_pearson[0]:.3f}, "
                 f"{self.clopper_pearson[1]:.3f}]",
                 f"  unresolved {len(self.unresolved)}, windows with a roll {self.n_rolls_inside}, "
                 f"overlapping windows {self.n_overlapping}"]
        for s in self.sample_sizes:
            lines.append(f"  n to claim ≥ {self.claim:.0%} if true rate {s['true_rate']:.3f}: {s['exact']} "
                         f"(normal approx. {s['normal']})")
        lines += [self.plain, "Implication: " + self.implication]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "estimate": self.estimate, "n": self.n, "hits": self.hits,
            "wilson": list(self.wilson) if self.wilson else None,
            "clopper_pearson": list(self.clopper_pearson) if self.clopper_pearson else None,
            "alpha": self.alpha, "horizon": self.horizon, "flat_band": self.flat_band, "claim": self.claim,
            "power": self.power, "pvalue_below_claim": self.pvalue_below_claim,
            "pvalue_above_claim": self.pvalue_above_claim, "verdict": self.verdict,
            "confusion": {view: {real: int(self.confusion.loc[view, real]) for real in _CLASSES}
                          for view in _CLASSES},
            "unresolved": self.unresolved, "n_unresolved": len(self.unresolved),
            "n_rolls_inside": self.n_rolls_inside, "n_overlapping": self.n_overlapping,
            "sample_sizes": self.sample_sizes, "plain": self.plain, "implication": self.implication,
        }


def hit_rate(*, signals: pd.DataFrame | None, returns: ContractReturns, horizon: int = 21,
             flat_band: float = 0.03, alpha: float = 0.05, claim: float = 0.90, power: float = 0.80,
             alternatives=(0.93, 0.95, 0.97)) -> HitRateResult:
    """Score the direction views against realised moves (definitions in the module docstring).

    Parameters
    ----------
    signals : pandas.DataFrame or None
        Validated signals (:func:`opl.data.loaders.load_signals`): ``date`` and
        a normalised ``direction``.
    returns : ContractReturns
        Within-contract daily returns of the futures close.
    horizon, flat_band, alpha, claim, power
        See the module docstring.
    alternatives : sequence of float
        True rates above ``claim`` for the sample-size table.
    """
    empty = pd.DataFrame(0, index=list(_CLASSES), columns=list(_CLASSES))
    if signals is None or len(signals) == 0:
        return HitRateResult(estimate=None, n=0, hits=0, wilson=None, clopper_pearson=None, alpha=alpha,
                             horizon=horizon, flat_band=flat_band, claim=claim, power=power,
                             pvalue_below_claim=None, pvalue_above_claim=None, confusion=empty,
                             scored=pd.DataFrame(), unresolved=[], n_rolls_inside=0, n_overlapping=0)
    moves = forward_moves(returns, signals["date"], horizon=horizon)
    moves["view"] = signals["direction"].to_numpy()
    moves["realised"] = classify_moves(moves["move"].to_numpy(), flat_band=flat_band)
    moves["hit"] = moves["view"] == moves["realised"]
    done = moves["complete"].to_numpy()
    scored = moves.loc[done].reset_index(drop=True)
    unresolved = [str(pd.Timestamp(d).date()) for d in moves.loc[~done, "date"]]
    n, hits = len(scored), int(scored["hit"].sum())
    confusion = pd.crosstab(scored["view"], scored["realised"]).reindex(
        index=list(_CLASSES), columns=list(_CLASSES), fill_value=0)
    overlapping = int((scored["entry"].iloc[1:].to_numpy() < scored["exit"].iloc[:-1].to_numpy()).sum()) if n else 0
    if n == 0:
        return HitRateResult(estimate=None, n=0, hits=0, wilson=None, clopper_pearson=None, alpha=alpha,
                             horizon=horizon, flat_band=flat_band, claim=claim, power=power,
                             pvalue_below_claim=None, pvalue_above_claim=None, confusion=confusion,
                             scored=scored, unresolved=unresolved, n_rolls_inside=0, n_overlapping=0)
    ci = intervals(hits=hits, n=n, alpha=alpha)
    estimate = hits / n
    rates = sorted({*alternatives, *([round(estimate, 3)] if claim < estimate < 1 else [])})
    sizes = [sample_size_for_claim(claim=claim, true_rate=r, alpha=alpha, power=power) for r in rates]
    return HitRateResult(
        estimate=estimate, n=n, hits=hits, wilson=ci["wilson"], clopper_pearson=ci["clopper_pearson"],
        alpha=alpha, horizon=horizon, flat_band=flat_band, claim=claim, power=power,
        pvalue_below_claim=float(stats.binomtest(hits, n, claim, alternative="less").pvalue),
        pvalue_above_claim=float(stats.binomtest(hits, n, claim, alternative="greater").pvalue),
        confusion=confusion, scored=scored, unresolved=unresolved,
        n_rolls_inside=int((scored["rolls_inside"] > 0).sum()), n_overlapping=overlapping, sample_sizes=sizes)

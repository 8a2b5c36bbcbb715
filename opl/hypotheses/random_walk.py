"""Is the futures price a random walk over one day to one month?

The battery, on daily log returns within contracts (:mod:`opl.data.rolls`; a
roll-day return is never used):

* **Portmanteau at lags h = 1, 5, 10, 21** — the heteroskedasticity-robust
  Ljung–Box/Box–Pierce form ``Q*_h = Σ_{k≤h} t_k²`` with
  ``t_k = Σ x_t x_{t-k} / sqrt(Σ (x_t x_{t-k})²)`` (Diebold 1986; Lobato,
  Nankervis & Savin 2001), χ²(h) under the null. The classical statistic of
  ``statsmodels.stats.diagnostic.acorr_ljungbox`` is reported beside it but is
  not part of the verdict: its size assumes i.i.d. returns, and on GARCH-t
  returns like jujube's it rejects a true random walk 19–54 % of the time at a
  nominal 5 % (1500 days, α+β = 0.98; 300 replications). Volatility
  clustering is not what this battery is asked about.
* **Lo–MacKinlay variance ratio** at q = 2, 5, 10, 21 days (the shortest
  horizon is q = 2 because VR(1) ≡ 1; VR(2) = 1 + ρ₁ carries the one-day
  autocorrelation). Each row is named by its q — in the tables, the JSON
  ``horizon``, the verdict text and the plot alike — never by the h of the
  portmanteau it sits beside. Overlapping, debiased,
  heteroskedasticity-robust (``arch.unitroot.VarianceRatio``), on the spliced
  log price.
* **Augmented Dickey–Fuller** on the spliced log price, constant, lags by AIC
  (``arch.unitroot.ADF``). Its null is the unit root, so a rejection means the
  level mean-reverts.

**Verdict.** The nine p-values form one family; the **Holm** step-down
correction (valid under any dependence between the tests, which here are
strongly dependent) controls the chance of rejecting a true random walk
anywhere in the family at ``alpha`` (default 0.05). The verdict is
``"rejected"`` when any Holm-adjusted p-value is below ``alpha``, else
``"consistent"``. ``correction="bonferroni"`` is available and more
conservative.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from opl.data.rolls import ContractReturns

__all__ = ["HORIZONS", "PARAMETER", "RandomWalkTest", "RandomWalkResult", "random_walk_tests", "robust_portmanteau"]

HORIZONS = (1, 5, 10, 21)

#: The name of each test's horizon: the portmanteau's number of lags h, the
#: variance ratio's aggregation q; the ADF has none.
PARAMETER = {"portmanteau": "h", "variance_ratio": "q", "adf": None}


@dataclass(frozen=True)
class RandomWalkTest:
    """One test of the family, with its raw and multiplicity-adjusted p-values."""

    name: str
    horizon: int
    statistic: float
    pvalue: float
    adjusted_pvalue: float
    reject: bool
    detail: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The horizon under the test's own name: ``h=5``, ``q=2``, or ``–`` for the ADF."""
        name = PARAMETER[self.name]
        return f"{name}={self.horizon}" if name else "–"

    def to_dict(self) -> dict:
        return {"name": self.name, "horizon": self.horizon, "label": self.label, "statistic": self.statistic,
                "pvalue": self.pvalue, "adjusted_pvalue": self.adjusted_pvalue, "reject": self.reject, **self.detail}


@dataclass
class RandomWalkResult:
    """The battery's tests, the ACF, and the verdict with what it implies."""

    verdict: str
    alpha: float
    correction: str
    n: int
    n_excluded: int
    tests: list[RandomWalkTest]
    acf: np.ndarray
    acf_se_robust: np.ndarray
    ljung_box_classical: pd.DataFrame
    detectable_rho: float

    @property
    def rejected_tests(self) -> list[RandomWalkTest]:
        return [t for t in self.tests if t.reject]

    def variance_ratios(self) -> pd.DataFrame:
        rows = [{"q": t.detail["q"], "horizon": t.horizon, "vr": t.detail["vr"], "se": t.detail["se"],
                 "pvalue": t.pvalue} for t in self.tests if t.name == "variance_ratio"]
        return pd.DataFrame(rows)

    @property
    def plain(self) -> str:
        if self.verdict == "consistent":
            return (f"Consistent with a random walk at 1–21 trading days: none of the {len(self.tests)} tests "
                    f"rejects at α = {self.alpha:g} after the {self.correction.title()} correction "
                    f"({self.n} daily returns). With this sample only autocorrelations of about "
                    f"±{self.detectable_rho:.2f} or larger would have been seen reliably.")
        names = ", ".join(f"{t.name} ({t.label}, adjusted p={t.adjusted_pvalue:.3g})"
                          for t in self.rejected_tests)
        return (f"Not a random walk at α = {self.alpha:g} ({self.correction.title()}-corrected): rejected by "
                f"{names}.")

    @property
    def implication(self) -> str:
        if self.verdict == "consistent":
            return ("Simulate daily log returns without autocorrelation (GBM, GARCH or jumps for the variance); "
                    "the tests allow volatility clustering, so a GARCH variance is not contradicted. "
                    "Nothing here supports a short-term drift or mean-reversion term.")
        parts = []
        vr = [t for t in self.rejected_tests if t.name == "variance_ratio"]
        if any(t.detail["vr"] > 1 for t in vr):
            parts.append("variance grows faster than linearly (trending/momentum): add an autocorrelated or "
                         "regime drift; a random walk understates how far the price travels in a month, "
                         "which is the short strangle's main risk")
        if any(t.detail["vr"] < 1 for t in vr):
            parts.append("variance grows slower than linearly (mean reversion): a random walk overstates the "
                         "monthly range; add a mean-reverting drift and check the premium edge is not an "
                         "artefact")
        if any(t.name == "adf" for t in self.rejected_tests):
            parts.append("the level itself mean-reverts (ADF): model an Ornstein–Uhlenbeck-type pull")
        if any(t.name == "portmanteau" for t in self.rejected_tests) and not vr:
            h = max(t.horizon for t in self.rejected_tests if t.name == "portmanteau")
            k = int(np.argmax(np.abs(self.acf[:h]))) + 1
            kind = "reversal" if self.acf[:h].sum() < 0 else "continuation"
            parts.append(f"autocorrelation within {h} days (largest ρ_{k} = {self.acf[k - 1]:+.3f}; the first {h} "
                         f"sum to {self.acf[:h].sum():+.3f}, i.e. {kind}) but no significant variance-ratio "
                         f"departure: the effect on monthly dispersion is small; an AR term on daily returns "
                         f"would capture it, a random walk remains a fair first-order model for 1-month paths")
        text = "; ".join(parts)
        return text[:1].upper() + text[1:] + "."

    def summary(self) -> str:
        lines = [f"Random walk at 1–21 days: {self.verdict.upper()} (α = {self.alpha:g}, {self.correction}, "
                 f"n = {self.n}, {self.n_excluded} roll-day returns excluded)",
                 f"{'test':<16}{'h/q':>5}{'stat':>10}{'p':>10}{'adj. p':>10}  reject"]
        for t in self.tests:
            lines.append(f"{t.name:<16}{t.label:>5}{t.statistic:>10.3f}{t.pvalue:>10.4f}"
                         f"{t.adjusted_pvalue:>10.4f}  {'yes' if t.reject else 'no'}")
        lines += [self.plain, "Implication: " + self.implication]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "verdict": self.verdict, "alpha": self.alpha, "correction": self.correction, "n": self.n,
            "n_excluded_roll_returns": self.n_excluded, "horizons": list(HORIZONS),
            "tests": [t.to_dict() for t in self.tests],
            "acf": {"lags": list(range(1, len(self.acf) + 1)), "values": self.acf.tolist(),
                    "se_robust": self.acf_se_robust.tolist(), "se_iid": 1.0 / np.sqrt(self.n)},
            "ljung_box_classical": [
                {"lag": int(lag), "statistic": float(row.lb_stat), "pvalue": float(row.lb_pvalue)}
                for lag, row in self.ljung_box_classical.iterrows()],
            "detectable_rho": self.detectable_rho, "plain": self.plain, "implication": self.implication,
        }


def robust_portmanteau(x: np.ndarray, *, lags: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heteroskedasticity-robust portmanteau statistics for lags 1..``lags``.

    Returns
    -------
    q : numpy.ndarray
        ``Q*_h`` for h = 1..lags (cumulative sums of ``t_k²``).
    acf : numpy.ndarray
        The sample autocorrelations ρ̂_k.
    se : numpy.ndarray
        Their heteroskedasticity-robust standard errors.
    """
    x = np.asarray(x, dtype=float)
    x = x - x.mean()
    denom = float(x @ x)
    t2, acf, se = np.empty(lags), np.empty(lags), np.empty(lags)
    for k in range(1, lags + 1):
        prod = x[k:] * x[:-k]
        num, var = prod.sum(), float(prod @ prod)
        t2[k - 1] = num * num / var if var > 0 else 0.0
        acf[k - 1] = num / denom
        se[k - 1] = np.sqrt(var) / denom
    return np.cumsum(t2), acf, se


def _adjust(pvalues: np.ndarray, alpha: float, correction: str) -> np.ndarray:
    from statsmodels.stats.multitest import multipletests

    if correction not in ("holm", "bonferroni"):
        raise ValueError("correction must be 'holm' or 'bonferroni'")
    return multipletests(pvalues, alpha=alpha, method=correction)[1]


def random_walk_tests(returns: ContractReturns | pd.Series | np.ndarray, *, horizons=HORIZONS,
                      alpha: float = 0.05, correction: str = "holm") -> RandomWalkResult:
    """Run the random-walk battery (module docstring) on daily log returns.

    Parameters
    ----------
    returns : ContractReturns, Series or array
        Daily log returns; NaN entries (roll days) are excluded and counted.
    horizons : sequence of int
        Horizons in trading days.
    alpha : float
        Family-wise level of the verdict.
    correction : {"holm", "bonferroni"}

    Returns
    -------
    RandomWalkResult
    """
    from arch.unitroot import ADF, VarianceRatio
    from arch.utility.exceptions import InfeasibleTestException
    from statsmodels.stats.diagnostic import acorr_ljungbox

    raw = returns.returns if isinstance(returns, ContractReturns) else returns
    values = np.asarray(raw, dtype=float)
    # The first value of a daily series has no previous price: NaN there is not an exclusion.
    n_excluded = returns.n_excluded if isinstance(returns, ContractReturns) else int(np.isnan(values[1:]).sum())
    x = values[~np.isnan(values)]
    horizons = tuple(int(h) for h in horizons)
    if len(x) < 4 * max(horizons) + 10:
        raise ValueError(f"{len(x)} returns are too few for horizons up to {max(horizons)} days")
    max_lag = max(horizons)
    q, acf, se = robust_portmanteau(x, lags=max_lag)
    rows: list[tuple[str, int, float, float, dict]] = []
    for h in horizons:
        rows.append(("portmanteau", h, float(q[h - 1]), float(stats.chi2.sf(q[h - 1], h)), {"df": h}))
    log_price = np.concatenate([[0.0], np.cumsum(x)])
    try:
        for h in horizons:
            q = max(2, h)  # VR(1) is 1 by construction; q = 2 is the one-day autocorrelation's ratio
            vr = VarianceRatio(log_price, lags=q, trend="c", debiased=True, robust=True, overlap=True)
            z = float(vr.stat)
            se_vr = float((vr.vr - 1.0) / z) if z else float("nan")
            rows.append(("variance_ratio", q, z, float(vr.pvalue), {"q": q, "vr": float(vr.vr), "se": se_vr}))
        adf = ADF(log_price, trend="c", method="aic", max_lags=max_lag)
        rows.append(("adf", 0, float(adf.stat), float(adf.pvalue),
                     {"lags": int(adf.lags), "critical_5pct": float(adf.critical_values["5%"])}))
    except (InfeasibleTestException, np.linalg.LinAlgError) as error:
        # arch's own exceptions are RuntimeErrors: a caller that handles bad data (ValueError) never saw them.
        raise ValueError(f"the random-walk tests cannot run on these {len(x)} returns (too little variation): "
                         f"{str(error).splitlines()[0]}") from None
    pvalues = np.array([r[3] for r in rows])
    adjusted = _adjust(pvalues, alpha, correction)
    tests = [RandomWalkTest(name=nm, horizon=h, statistic=st, pvalue=p, adjusted_pvalue=float(a),
                            reject=bool(a < alpha), detail=d)
             for (nm, h, st, p, d), a in zip(rows, adjusted)]
    classical = acorr_ljungbox(x, lags=list(horizons))
    m = len(tests)
    # The smallest lag-1 autocorrelation found with 80% power by the first Holm step (level alpha/m).
    detectable = float((stats.norm.isf(alpha / (2 * m)) + stats.norm.isf(0.2)) / np.sqrt(len(x)))
    verdict = "rejected" if any(t.reject for t in tests) else "consistent"
    return RandomWalkResult(verdict=verdict, alpha=alpha, correction=correction, n=len(x), n_excluded=n_excluded,
                            tests=tests, acf=acf, acf_se_robust=se, ljung_box_classical=classical,
                            detectable_rho=detectable)

"""Do monthly supply/demand factors explain next month's futures return?

Alignment: a factor row for month m is assumed known by that month's last
trading day, and is matched with the log return of month m+1 — the sum of the
within-contract daily log returns of the close in m+1 (a roll day contributes
nothing). A month with fewer than ``min_days`` valid daily returns (the
partial first and last months of a file, typically) is not used and is listed.

Two models on the same data:

* **OLS** of the return on the factors with Newey–West (HAC) standard errors,
  lags ``floor(4 (n/100)^(2/9))`` unless given, and a joint HAC Wald test
  that every slope is zero;
* **logistic regression** of the sign (return > 0) on the factors.

Both are re-checked **out of sample** with an expanding window: for each month
from ``min_train`` on, fit on all earlier months and predict the next.
Reported: the out-of-sample R² against the training-mean forecast
(Campbell–Thompson; > 0 means the factors beat the historical mean) and the
logistic model's sign hit rate against always predicting the training
majority sign.

Verdict: ``supported`` when the joint Wald test rejects at ``alpha`` *and*
the out-of-sample R² is positive; ``in-sample only`` when only the first
holds; ``not supported`` otherwise; ``too few months`` below ``min_train`` + 6.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from opl.data.rolls import ContractReturns

__all__ = ["FactorResult", "factor_tests", "monthly_returns"]


def monthly_returns(returns: ContractReturns, *, min_days: int = 10) -> tuple[pd.Series, list[str]]:
    """Monthly log returns within contracts, and the months left out for having < ``min_days`` returns."""
    r = returns.returns
    months = r.index.to_period("M")
    total = r.groupby(months).sum(min_count=1)
    count = r.groupby(months).count()
    keep = count >= min_days
    return total[keep], [str(m) for m in count.index[~keep]]


@dataclass
class FactorResult:
    """OLS (HAC) and logistic fits of next-month returns on factors, with the out-of-sample check."""

    verdict: str
    alpha: float
    n_months: int
    factors: list[str]
    months_excluded: list[str]
    ols: dict = field(default_factory=dict)
    logit: dict = field(default_factory=dict)
    oos: dict = field(default_factory=dict)
    series: pd.DataFrame | None = None

    @property
    def plain(self) -> str:
        if self.verdict == "too few months":
            return f"Only {self.n_months} usable months: too few to test the factors."
        wald = self.ols["wald_pvalue"]
        r2 = self.oos.get("r2")
        r2_text = "n/a" if r2 is None else f"{r2:+.3f}"
        strongest = min(self.factors, key=lambda f: self.ols["coef"][f]["pvalue"])
        c = self.ols["coef"][strongest]
        base = (f"Over {self.n_months} months the factors jointly {'do' if wald < self.alpha else 'do not'} "
                f"explain next-month returns in sample (HAC Wald p = {wald:.3g}, R² = {self.ols['r2']:.3f}); "
                f"strongest: {strongest} ({c['estimate']:+.4f} per unit, p = {c['pvalue']:.3g}). "
                f"Out of sample R² = {r2_text}")
        hit = self.oos.get("hit_rate")
        if hit is not None:
            base += f", sign hit rate {hit:.1%} vs {self.oos['base_hit_rate']:.1%} for the majority sign"
        return base + "."

    @property
    def implication(self) -> str:
        if self.verdict == "supported":
            return ("Let the simulated monthly drift depend on the factors (or on a regime read from them), "
                    "with the fitted slopes; keep the random walk within the month.")
        if self.verdict == "in-sample only":
            return ("The in-sample fit does not survive out of sample: do not put the factors into the drift; "
                    "at most use them as a scenario (regime) switch in stress tests.")
        return "Keep a zero (regime-free) drift in the simulation; the factors do not forecast next-month returns."

    def summary(self) -> str:
        if self.verdict == "too few months":
            return "Supply/demand factors: " + self.plain
        lines = [f"Supply/demand factors → next-month return: {self.verdict.upper()} (α = {self.alpha:g})",
                 f"{'term':<16}{'coef':>10}{'HAC se':>10}{'p':>9}"]
        for name, c in self.ols["coef"].items():
            lines.append(f"{name:<16}{c['estimate']:>10.4f}{c['se']:>10.4f}{c['pvalue']:>9.4f}")
        lines += [self.plain, "Implication: " + self.implication]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "alpha": self.alpha, "n_months": self.n_months, "factors": self.factors,
                "months_excluded": self.months_excluded, "ols": self.ols, "logit": self.logit, "oos": self.oos,
                "plain": self.plain, "implication": self.implication}


def _design(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    return np.column_stack([np.ones(len(frame)), frame[names].to_numpy(dtype=float)])


def _fit_logit(y: np.ndarray, x: np.ndarray):
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import PerfectSeparationError

    with warnings.catch_warnings():
        # Separation and non-convergence are reported through the return value instead.
        warnings.simplefilter("ignore")
        try:
            fit = sm.Logit(y, x).fit(disp=0, maxiter=200)
        except (PerfectSeparationError, np.linalg.LinAlgError, ValueError) as error:
            return None, str(error)
    if not fit.mle_retvals.get("converged", False):
        return None, "did not converge (perfect or quasi-perfect separation?)"
    return fit, ""


def factor_tests(*, factors: pd.DataFrame, returns: ContractReturns, alpha: float = 0.05, min_train: int = 24,
                 min_days: int = 10, hac_lags: int | None = None) -> FactorResult:
    """Test whether ``factors`` (month m) explain the return of month m+1 (module docstring).

    Parameters
    ----------
    factors : pandas.DataFrame
        Validated factors (:func:`opl.data.loaders.load_factors`): a monthly
        ``month`` Period column and numeric factor columns.
    returns : ContractReturns
        Within-contract daily returns of the futures close.
    alpha : float
    min_train : int
        Months in the first training window of the out-of-sample check.
    min_days : int
        Fewest valid daily returns for a month to count.
    hac_lags : int, optional
        Newey–West lags; the rule of thumb when omitted.
    """
    import statsmodels.api as sm

    names = [c for c in factors.columns if c != "month"]
    monthly, excluded = monthly_returns(returns, min_days=min_days)
    table = factors.set_index("month")[names].copy()
    table.index = pd.PeriodIndex(table.index, freq="M")
    target = monthly.copy()
    target.index = target.index - 1  # return of m+1 sits on the row of month m
    data = table.join(target.rename("next_return"), how="inner").dropna()
    n = len(data)
    if n < min_train + 6:
        return FactorResult(verdict="too few months", alpha=alpha, n_months=n, factors=names,
                            months_excluded=excluded)
    y = data["next_return"].to_numpy()
    x = _design(data, names)
    lags = hac_lags if hac_lags is not None else int(np.floor(4 * (n / 100) ** (2 / 9)))
    ols = sm.OLS(y, x).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
    restriction = np.eye(len(names) + 1)[1:]
    wald = ols.wald_test(restriction, use_f=True, scalar=True)
    terms = ["const", *names]
    ols_out = {
        "coef": {t: {"estimate": float(ols.params[i]), "se": float(ols.bse[i]), "t": float(ols.tvalues[i]),
                     "pvalue": float(ols.pvalues[i])} for i, t in enumerate(terms)},
        "r2": float(ols.rsquared), "r2_adj": float(ols.rsquared_adj), "hac_lags": lags,
        "wald_pvalue": float(wald.pvalue), "wald_statistic": float(wald.statistic),
    }
    ups = (y > 0).astype(float)
    fit, problem = _fit_logit(ups, x)
    logit_out = {"converged": fit is not None, "problem": problem}
    if fit is not None:
        logit_out.update({
            "coef": {t: {"estimate": float(fit.params[i]), "se": float(fit.bse[i]), "pvalue": float(fit.pvalues[i])}
                     for i, t in enumerate(terms)},
            "pseudo_r2": float(fit.prsquared),
            "accuracy": float(((fit.predict(x) > 0.5) == (ups > 0.5)).mean()),
        })
    oos, series = _out_of_sample(data, names, min_train=min_train)
    r2_oos = oos["r2"]
    if ols_out["wald_pvalue"] < alpha:
        verdict = "supported" if r2_oos is not None and r2_oos > 0 else "in-sample only"
    else:
        verdict = "not supported"
    return FactorResult(verdict=verdict, alpha=alpha, n_months=n, factors=names, months_excluded=excluded,
                        ols=ols_out, logit=logit_out, oos=oos, series=series)


def _out_of_sample(data: pd.DataFrame, names: list[str], *, min_train: int) -> tuple[dict, pd.DataFrame]:
    y = data["next_return"].to_numpy()
    x = _design(data, names)
    rows = []
    failures = 0
    for i in range(min_train, len(data)):
        beta, *_ = np.linalg.lstsq(x[:i], y[:i], rcond=None)
        ups = (y[:i] > 0).astype(float)
        majority = float(ups.mean() >= 0.5)
        fit, _ = _fit_logit(ups, x[:i])
        if fit is None:
            failures += 1
            sign = majority
        else:
            sign = float(fit.predict(x[i:i + 1])[0] > 0.5)
        rows.append({"month": str(data.index[i]), "realised": y[i], "forecast": float(x[i] @ beta),
                     "benchmark": float(y[:i].mean()), "sign_forecast": sign, "sign_benchmark": majority})
    series = pd.DataFrame(rows)
    err = ((series["realised"] - series["forecast"]) ** 2).sum()
    base = ((series["realised"] - series["benchmark"]) ** 2).sum()
    up = (series["realised"] > 0).astype(float)
    return {
        "start": series["month"].iloc[0], "n": len(series), "min_train": min_train,
        "r2": float(1.0 - err / base) if base > 0 else None,
        "hit_rate": float((series["sign_forecast"] == up).mean()),
        "base_hit_rate": float((series["sign_benchmark"] == up).mean()),
        "logit_failures": failures,
    }, series

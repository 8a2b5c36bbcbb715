"""GARCH(1,1) and GJR-GARCH(1,1) with Student-t shocks, fitted with ``arch``, with diagnostics.

Both models are fitted by maximum likelihood (``arch.arch_model``, constant mean,
Student-t innovations) to daily log returns within contracts, in percent for the
optimiser's sake. Roll days are dropped from the series before the fit — the
recursion runs on across the gap, one day short, rather than see a spread between two
contracts as a shock.

**Choice.** The model with the lower information criterion (BIC by default, AIC on
request) is chosen, among the fits that converged and that the simulator can run: a
GJR fit with γ < 0 (volatility that rises more after up-moves, which commodities can
show) has no counterpart in ``opl.runtime.engine.processes`` (γ ∈ [0, 1]) and is reported
but not chosen.

**Integrated fits.** ``arch`` bounds the persistence at 1, and daily commodity returns
over several years often put the fit there (jujube 2019-2026: α + β = 1.0000, an
IGARCH). Such a fit is flagged ``integrated`` (persistence ≥ 0.999, a half-life of
more than about 700 trading days); its unconditional volatility is infinite, so the
sample variance stands in for the long-run level when the fit is mapped onto the
simulator (:mod:`opl.calibration.block`, which also lowers β to a stationary
persistence and says so).

**Diagnostics** of each fit: persistence α + β + γ/2; the half-life of a volatility
shock, ln ½ / ln(persistence) trading days; the unconditional volatility
√(ω / (1 − persistence)), annualised; Ljung–Box p-values (``statsmodels``) of the
standardised residuals and of their squares at lags 5, 10 and 21 — small p-values on
the squares mean volatility clustering the model has not captured.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["GarchFit", "GarchSelection", "fit_garch", "fit_models", "LB_LAGS"]

LB_LAGS = (5, 10, 21)
Kind = Literal["garch", "gjr"]


@dataclass
class GarchFit:
    """One fitted model and its diagnostics (parameters of daily returns as fractions)."""

    kind: Kind
    mu: float
    omega: float
    alpha: float
    gamma: float
    beta: float
    nu: float
    loglik: float
    aic: float
    bic: float
    n: int
    converged: bool
    stderr: dict
    ljung_box: dict
    periods_per_year: float
    conditional_vol: pd.Series = field(repr=False)
    std_resid: pd.Series = field(repr=False)

    @property
    def persistence(self) -> float:
        return self.alpha + self.beta + 0.5 * self.gamma

    @property
    def half_life(self) -> float:
        """Trading days for a variance shock to halve (inf at persistence ≥ 1)."""
        p = self.persistence
        return math.log(0.5) / math.log(p) if 0 < p < 1 else float("inf")

    @property
    def unconditional_daily_var(self) -> float:
        p = self.persistence
        return self.omega / (1.0 - p) if p < 1 else float("inf")

    @property
    def unconditional_vol(self) -> float:
        """Annualised unconditional volatility."""
        return math.sqrt(self.unconditional_daily_var * self.periods_per_year)

    @property
    def integrated(self) -> bool:
        """Persistence at (or within 0.001 of) the stationarity bound: an IGARCH in effect."""
        return self.persistence >= 0.999

    @property
    def simulable(self) -> bool:
        """Whether ``opl.runtime.engine.processes`` can run these parameters (converged, γ ≥ 0, ν > 2.05);
        an integrated fit needs the adjustment of :mod:`opl.calibration.block`."""
        return self.converged and self.gamma >= 0 and self.nu > 2.05

    def to_dict(self) -> dict:
        return {"kind": self.kind, "mu": self.mu, "omega": self.omega, "alpha": self.alpha, "gamma": self.gamma,
                "beta": self.beta, "nu": self.nu, "persistence": self.persistence, "integrated": self.integrated,
                "half_life_days": self.half_life,
                "unconditional_vol": self.unconditional_vol, "loglik": self.loglik, "aic": self.aic,
                "bic": self.bic, "n": self.n, "converged": self.converged, "simulable": self.simulable,
                "stderr": self.stderr, "ljung_box": self.ljung_box}

    def summary(self) -> str:
        name = "GJR-GARCH(1,1)-t" if self.kind == "gjr" else "GARCH(1,1)-t"
        gamma = f", γ {self.gamma:.4f}" if self.kind == "gjr" else ""
        lb = self.ljung_box
        level = ("integrated: no finite unconditional vol" if self.integrated else
                 f"half-life {self.half_life:.0f} days, unconditional vol {self.unconditional_vol:.1%}")
        return (f"{name}: α {self.alpha:.4f}{gamma}, β {self.beta:.4f}, ν {self.nu:.2f}; persistence "
                f"{self.persistence:.4f} ({level}); BIC {self.bic:.1f}; Ljung-Box p (lag 10) residuals "
                f"{lb['resid']['10']:.3f}, squares {lb['squared']['10']:.3f}")


@dataclass
class GarchSelection:
    """Both fits and the chosen one."""

    fits: dict[str, GarchFit]
    chosen: str
    criterion: str
    reason: str

    @property
    def best(self) -> GarchFit:
        return self.fits[self.chosen]

    def to_dict(self) -> dict:
        return {"chosen": self.chosen, "criterion": self.criterion, "reason": self.reason,
                "fits": {k: v.to_dict() for k, v in self.fits.items()}}

    def summary(self) -> str:
        lines = [f"GARCH fits ({self.criterion.upper()} picks {self.chosen}: {self.reason})"]
        lines += [f"  {'*' if k == self.chosen else ' '} {f.summary()}" for k, f in self.fits.items()]
        return "\n".join(lines)


def _ljung_box(values: np.ndarray) -> dict:
    from statsmodels.stats.diagnostic import acorr_ljungbox

    z = values[np.isfinite(values)]
    out = {}
    for name, series in (("resid", z), ("squared", z * z)):
        table = acorr_ljungbox(series, lags=list(LB_LAGS))
        out[name] = {str(lag): float(table.loc[lag, "lb_pvalue"]) for lag in LB_LAGS}
    return out


def fit_garch(returns: pd.Series, *, kind: Kind = "garch", periods_per_year: float = 252.0) -> GarchFit:
    """Fit one model to daily log returns (NaN — roll days — dropped).

    Parameters
    ----------
    returns : pandas.Series
        Daily log returns as fractions, indexed by date.
    kind : {"garch", "gjr"}
    periods_per_year : float
        For the annualised unconditional volatility.

    Raises
    ------
    ValueError
        Fewer than 250 returns: too few for a GARCH fit worth reporting.
    """
    from arch import arch_model

    r = returns.dropna()
    if len(r) < 250:
        raise ValueError(f"a GARCH fit needs at least 250 daily returns within contracts, found {len(r)}")
    model = arch_model(r * 100.0, mean="Constant", vol="GARCH", p=1, o=1 if kind == "gjr" else 0, q=1,
                       dist="t", rescale=False)
    with warnings.catch_warnings():
        # arch warns on convergence; the flag is recorded and a non-converged fit is never chosen.
        warnings.simplefilter("ignore")
        res = model.fit(disp="off", show_warning=False)
    p, se = res.params, res.std_err
    names = {"mu": "mu", "omega": "omega", "alpha": "alpha[1]", "gamma": "gamma[1]", "beta": "beta[1]", "nu": "nu"}
    scale = {"mu": 1e-2, "omega": 1e-4}
    stderr = {k: float(se[v]) * scale.get(k, 1.0) for k, v in names.items() if v in se}
    std_resid = pd.Series(np.asarray(res.std_resid, dtype=float), index=r.index, name="std_resid")
    cond = pd.Series(np.asarray(res.conditional_volatility, dtype=float) / 100.0 * math.sqrt(periods_per_year),
                     index=r.index, name="conditional_vol")
    return GarchFit(kind=kind, mu=float(p["mu"]) / 100.0, omega=float(p["omega"]) / 1e4,
                    alpha=float(p["alpha[1]"]), gamma=float(p.get("gamma[1]", 0.0)), beta=float(p["beta[1]"]),
                    nu=float(p["nu"]), loglik=float(res.loglikelihood), aic=float(res.aic), bic=float(res.bic),
                    n=len(r), converged=res.convergence_flag == 0, stderr=stderr,
                    ljung_box=_ljung_box(std_resid.to_numpy()), periods_per_year=periods_per_year,
                    conditional_vol=cond, std_resid=std_resid)


def fit_models(returns: pd.Series, *, criterion: Literal["bic", "aic"] = "bic",
               periods_per_year: float = 252.0) -> GarchSelection:
    """Fit GARCH and GJR (both Student-t) and choose by ``criterion`` (module docstring)."""
    fits = {kind: fit_garch(returns, kind=kind, periods_per_year=periods_per_year) for kind in ("garch", "gjr")}
    eligible = {k: f for k, f in fits.items() if f.simulable}
    if not eligible:
        # Nothing runnable: report the better fit and say why neither can be simulated as fitted.
        chosen = min(fits, key=lambda k: getattr(fits[k], criterion))
        return GarchSelection(fits, chosen, criterion, "neither fit is simulable as fitted (not converged, "
                              "γ < 0 or ν ≤ 2.05); the better one is reported")
    chosen = min(eligible, key=lambda k: getattr(eligible[k], criterion))
    other = "gjr" if chosen == "garch" else "garch"
    if other not in eligible:
        f = fits[other]
        why = ("γ < 0 has no counterpart in the simulator" if f.gamma < 0 else
               "it did not converge" if not f.converged else "it is not simulable")
        reason = f"{other} not eligible: {why}"
    else:
        diff = getattr(fits[other], criterion) - getattr(fits[chosen], criterion)
        reason = f"{criterion.upper()} lower by {diff:.1f}"
    return GarchSelection(fits, chosen, criterion, reason)

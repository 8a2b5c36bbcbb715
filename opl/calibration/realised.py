"""Realised volatility of a futures series: close-to-close, Parkinson and Garman–Klass.

All three are annual volatilities, ``sqrt(periods_per_year × daily variance)`` with 252
trading days a year unless told otherwise (the simulator's own year is mapped in
:mod:`opl.calibration.block`).

``close_to_close``
    The sample standard deviation (ddof 1, demeaned) of daily log returns of the close
    **within contracts** (:func:`opl.data.rolls.within_contract_returns`): a roll-day
    return measures the spread between two delivery months, not a price move, and is
    never used.
``parkinson`` (Parkinson 1980)
    ``σ² = mean(ln(H/L)²) / (4 ln 2)``, from each day's own high and low.
``garman_klass`` (Garman & Klass 1980)
    ``σ² = mean(½ ln(H/L)² − (2 ln 2 − 1) ln(C/O)²)``, from each day's open, high, low
    and close.

The two range estimators use one day's bar at a time, so a roll cannot enter them;
they see the trading session only and miss the overnight move (close to next open), so
on markets with night sessions and gaps they read lower than close-to-close — the
report shows all three side by side rather than picking one. Days whose high equals
their low (a limit-locked session) count as zero range, as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from opl.data.rolls import ContractReturns

__all__ = ["TRADING_DAYS", "RealisedVol", "close_to_close", "parkinson", "garman_klass", "realised_vol",
           "rolling_vol"]

TRADING_DAYS = 252
_PARKINSON = 1.0 / (4.0 * math.log(2.0))
_GK_CO = 2.0 * math.log(2.0) - 1.0


def close_to_close(returns, *, periods_per_year: float = TRADING_DAYS) -> float:
    """Annualised standard deviation of daily log returns (NaN entries — roll days — are skipped).

    >>> round(close_to_close([0.01, -0.01, 0.01, -0.01], periods_per_year=1), 6)
    0.011547
    """
    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r)]
    if r.size < 2:
        return float("nan")
    return float(np.std(r, ddof=1) * math.sqrt(periods_per_year))


def _parkinson_terms(high, low) -> np.ndarray:
    return _PARKINSON * np.log(np.asarray(high, dtype=float) / np.asarray(low, dtype=float)) ** 2


def _gk_terms(open_, high, low, close) -> np.ndarray:
    hl = np.log(np.asarray(high, dtype=float) / np.asarray(low, dtype=float))
    co = np.log(np.asarray(close, dtype=float) / np.asarray(open_, dtype=float))
    return 0.5 * hl * hl - _GK_CO * co * co


def parkinson(high, low, *, periods_per_year: float = TRADING_DAYS) -> float:
    """Parkinson's high–low estimator, annualised."""
    terms = _parkinson_terms(high, low)
    return float(math.sqrt(np.mean(terms) * periods_per_year)) if terms.size else float("nan")


def garman_klass(open_, high, low, close, *, periods_per_year: float = TRADING_DAYS) -> float:
    """Garman–Klass open–high–low–close estimator, annualised."""
    terms = _gk_terms(open_, high, low, close)
    if not terms.size:
        return float("nan")
    return float(math.sqrt(max(np.mean(terms), 0.0) * periods_per_year))


def rolling_vol(frame: pd.DataFrame, returns: ContractReturns, *, window: int = 21,
                periods_per_year: float = TRADING_DAYS) -> pd.DataFrame:
    """The three estimators over a trailing window of ``window`` trading days, one row a day.

    A close-to-close window needs at least ``window − 5`` valid returns (a roll or two
    inside it are tolerated, never used); earlier rows are NaN.
    """
    index = pd.DatetimeIndex(frame["trading_date"])
    r = pd.Series(returns.returns.to_numpy(), index=index)
    cc = r.rolling(window, min_periods=max(2, window - 5)).std(ddof=1) * math.sqrt(periods_per_year)
    pk = pd.Series(_parkinson_terms(frame["high"], frame["low"]), index=index).rolling(window).mean()
    gk = pd.Series(_gk_terms(frame["open"], frame["high"], frame["low"], frame["close"]),
                   index=index).rolling(window).mean()
    return pd.DataFrame({"close_to_close": cc, "parkinson": np.sqrt(pk * periods_per_year),
                         "garman_klass": np.sqrt(gk.clip(lower=0.0) * periods_per_year)})


@dataclass
class RealisedVol:
    """Realised volatility over the whole sample and recent windows.

    Attributes
    ----------
    close_to_close, parkinson, garman_klass : float
        Annualised, whole sample.
    recent : dict
        ``{"21d": {...}, "63d": {...}, "252d": {...}}``: the three estimators over the last
        21, 63 and 252 trading days (windows longer than the data are left out).
    n_returns, n_excluded : int
        Daily returns used, and roll-day returns excluded.
    rolling : pandas.DataFrame
        The 21-day rolling estimators (for the report's plot).
    """

    close_to_close: float
    parkinson: float
    garman_klass: float
    recent: dict
    n_returns: int
    n_excluded: int
    n_days: int
    periods_per_year: float
    rolling: pd.DataFrame

    def to_dict(self) -> dict:
        return {"close_to_close": self.close_to_close, "parkinson": self.parkinson,
                "garman_klass": self.garman_klass, "recent": self.recent, "n_returns": self.n_returns,
                "n_excluded_roll_returns": self.n_excluded, "n_days": self.n_days,
                "periods_per_year": self.periods_per_year}

    def summary(self) -> str:
        line = (f"Realised volatility (annual, {self.periods_per_year:g} days): close-to-close "
                f"{self.close_to_close:.1%} on {self.n_returns} returns within contracts "
                f"({self.n_excluded} roll-day returns excluded), Parkinson {self.parkinson:.1%}, "
                f"Garman-Klass {self.garman_klass:.1%}")
        recent = "; ".join(f"last {k}: {v['close_to_close']:.1%}" for k, v in self.recent.items())
        return line + (f"\n  {recent}" if recent else "")


def realised_vol(frame: pd.DataFrame, returns: ContractReturns, *,
                 periods_per_year: float = TRADING_DAYS) -> RealisedVol:
    """All three estimators on validated futures bars and their within-contract returns.

    Parameters
    ----------
    frame : pandas.DataFrame
        Validated futures bars (:func:`opl.data.load_futures`), in date order.
    returns : ContractReturns
        Their within-contract close returns (:func:`opl.data.within_contract_returns`).
    periods_per_year : float
        Trading days a year for annualising.
    """
    o, h, lo, c = (frame[k].to_numpy(dtype=float) for k in ("open", "high", "low", "close"))
    r = returns.returns.to_numpy()
    recent = {}
    for days in (21, 63, 252):
        if len(frame) > days:
            tail = slice(len(frame) - days, None)
            recent[f"{days}d"] = {"close_to_close": close_to_close(r[tail], periods_per_year=periods_per_year),
                                  "parkinson": parkinson(h[tail], lo[tail], periods_per_year=periods_per_year),
                                  "garman_klass": garman_klass(o[tail], h[tail], lo[tail], c[tail],
                                                               periods_per_year=periods_per_year)}
    return RealisedVol(
        close_to_close=close_to_close(r, periods_per_year=periods_per_year),
        parkinson=parkinson(h, lo, periods_per_year=periods_per_year),
        garman_klass=garman_klass(o, h, lo, c, periods_per_year=periods_per_year),
        recent=recent, n_returns=int(np.isfinite(r).sum()), n_excluded=returns.n_excluded, n_days=len(frame),
        periods_per_year=periods_per_year,
        rolling=rolling_vol(frame, returns, periods_per_year=periods_per_year))

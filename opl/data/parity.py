"""Do the option chains and the underlying agree? Put–call parity per date and expiry.

For European options, ``C − P = D·(F − K)`` at every strike, with ``D`` the discount
factor and ``F`` the forward of the underlying for the expiry. So across the strikes of
one date and expiry, call minus put is a straight line in the strike with slope ``−D``
(about −1) that crosses zero at the forward. This module fits that line to the strikes
nearest the money (at most :data:`NEAREST` of them, where the American early-exercise
premium of both sides is smallest and cancels) and reads two numbers from it:

* the **implied forward** ``F* = −a/b`` (where the fitted ``C − P`` is zero), independent of
  the unit the option prices are quoted in; with one strike only, ``F* = K + (C − P)/D``
  with ``D = exp(−r·T)``;
* the **slope** ``b``, which must be near ``−D``: a slope of −5 means the option prices
  are in another unit than the strikes (per lot instead of per tonne, say).

``F*`` is compared with the underlying's price that day (settlement, else close):

futures options (``spot=False``)
    ``F*`` must equal the futures price within ``tolerance`` (log gap). When both files
    name contracts (the options' ``underlying_symbol``, the futures' ``symbol``), every
    date and expiry whose underlying is the futures series' contract that day is
    checked; a continuous series without symbols cannot say which contract it holds, so
    each day only the expiry whose ``F*`` is nearest to it is checked (the others may be
    other delivery months with their own prices).
options on spot (an ETF; ``spot=True``)
    ``F* = S·exp((r − q)·T)``: every date and expiry is checked, allowing a dividend
    yield ``q`` from 0 to ``max_dividend_yield`` beside ``tolerance``.

The same fit is the one put–call parity forward of the project: :func:`row_forwards` gives
each option row its (date, expiry)'s ``F*`` for the implied-volatility surface of ``opl
calibrate`` and the cost of carry of ``opl backtest`` on ETF options (one implementation,
so the check and the numbers it guards agree).

A group outside its band is a located :class:`~opl.data.loaders.Problem` (the options
file's first line of the group) saying the implied forward, the underlying's price and
the size of the gap, with a reading of it: a power of ten is a wrong unit; a gap that
shrinks towards the end of the history is an adjusted (复权) underlying; anything else is
another product's chain or another contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from opl.data.loaders import Problem

__all__ = ["ParityReport", "check_parity", "implied_forwards", "row_forwards", "NEAREST", "TOLERANCE"]

NEAREST = 5
TOLERANCE = 0.02
MAX_DIVIDEND_YIELD = 0.06
SLOPE_BAND = (0.75, 1.15)
_SHOWN = 20


@dataclass
class ParityReport:
    """Every date and expiry compared: ``groups`` (one row each), the located ``problems``."""

    groups: pd.DataFrame
    problems: list[Problem] = field(default_factory=list)
    mode: str = ""
    tolerance: float = TOLERANCE

    def summary(self) -> str:
        g = self.groups
        checked = g[g["checked"]] if len(g) else g
        if not len(checked):
            return f"put–call parity: no date and expiry could be compared ({self.mode})"
        gap = np.abs(checked["gap"].to_numpy())
        return (f"put–call parity ({self.mode}): {len(checked)} date/expiry groups compared, "
                f"{int((~checked['ok']).sum())} outside ±{self.tolerance:.1%}; median |gap| {np.median(gap):.2%}, "
                f"largest {gap.max():.2%}")


def _fit(strike: np.ndarray, diff: np.ndarray, t: float, rate: float) -> tuple[float, float, int]:
    """Implied forward and slope from the strikes nearest the money."""
    order = np.argsort(np.abs(diff), kind="stable")[:NEAREST]
    k, d = strike[order], diff[order]
    discount = np.exp(-rate * t)
    if len(np.unique(k)) < 2:
        return float(np.median(k + d / discount)), float("nan"), len(k)
    slope, intercept = np.polyfit(k, d, 1)
    if slope >= 0:  # no usable line; fall back to the per-strike forwards
        return float(np.median(k + d / discount)), float(slope), len(k)
    return float(-intercept / slope), float(slope), len(k)


def implied_forwards(options: pd.DataFrame, rate: float, price: str = "settlement") -> pd.DataFrame:
    """The parity line of every (date, expiry) with a call and a put at one strike (module docstring).

    Returns
    -------
    pandas.DataFrame
        ``trading_date``, ``expiry``, ``t`` (ACT/365), ``forward`` (F*), ``slope`` (b, about −1),
        ``strikes`` (how many entered the fit), ``pos`` (the group's first row in ``options``) and
        ``underlying_symbol`` (when the chain names one).
    """
    opt = options.reset_index(drop=True)
    return _groups(opt.assign(_pos=np.arange(len(opt))), price, rate)


def row_forwards(options: pd.DataFrame, rate: float, price: str = "settlement") -> np.ndarray:
    """Each option row's put–call parity forward: its (date, expiry)'s F* (NaN where there is none)."""
    opt = options.reset_index(drop=True)
    groups = implied_forwards(opt, rate, price)
    merged = opt[["trading_date", "expiry"]].merge(groups[["trading_date", "expiry", "forward"]], how="left",
                                                   on=["trading_date", "expiry"])
    return merged["forward"].to_numpy(dtype=float)


def _groups(options: pd.DataFrame, price: str, rate: float) -> pd.DataFrame:
    calls = options[options["option_type"] == "C"]
    puts = options[options["option_type"] == "P"]
    keys = ["trading_date", "expiry", "strike_price"]
    extra = ["underlying_symbol"] if "underlying_symbol" in options.columns else []
    pairs = calls[keys + extra + [price, "_pos"]].merge(puts[keys + [price, "_pos"]], on=keys,
                                                        suffixes=("_c", "_p"))
    pairs = pairs[(pairs[f"{price}_c"] > 0) & (pairs[f"{price}_p"] > 0)]
    rows = []
    for (day, expiry), g in pairs.groupby(["trading_date", "expiry"], sort=True):
        t = max((pd.Timestamp(expiry) - pd.Timestamp(day)).days, 0) / 365.0
        diff = (g[f"{price}_c"] - g[f"{price}_p"]).to_numpy(dtype=float)
        forward, slope, n = _fit(g["strike_price"].to_numpy(dtype=float), diff, t, rate)
        rows.append({"trading_date": day, "expiry": expiry, "t": t, "forward": forward, "slope": slope,
                     "strikes": n, "pos": int(min(g["_pos_c"].min(), g["_pos_p"].min())),
                     "underlying_symbol": g["underlying_symbol"].iat[0] if extra else None})
    return pd.DataFrame(rows, columns=["trading_date", "expiry", "t", "forward", "slope", "strikes", "pos",
                                       "underlying_symbol"])


def check_parity(options: pd.DataFrame, futures: pd.DataFrame, *, spot: bool = False, rate: float = 0.02,
                 tolerance: float = TOLERANCE, max_dividend_yield: float = MAX_DIVIDEND_YIELD,
                 file: str = "options.csv", lines=None, futures_file: str = "futures.csv") -> ParityReport:
    """Compare each date and expiry of ``options`` with the underlying in ``futures`` (module docstring).

    Parameters
    ----------
    options, futures : pandas.DataFrame
        Validated frames (:func:`opl.data.loaders.load`): options with ``trading_date``,
        ``expiry``, ``strike_price``, ``option_type`` and ``settlement``; bars with
        ``trading_date`` and ``settlement`` or ``close``.
    spot : bool
        The underlying is spot (an ETF), not the futures the options deliver.
    lines : array-like, optional
        Source line of each options row, for the problems (default: row number + 2).
    """
    opt = options.reset_index(drop=True).copy()
    opt["_pos"] = np.arange(len(opt))
    lines = np.arange(2, len(opt) + 2) if lines is None else np.asarray(lines)
    price = "settlement" if "settlement" in opt.columns else "close"
    groups = _groups(opt, price, rate)
    under_col = "settlement" if "settlement" in futures.columns and (futures["settlement"] > 0).all() else "close"
    bars = futures.set_index("trading_date")
    linked = (not spot and "symbol" in futures.columns and groups["underlying_symbol"].notna().any())
    mode = ("spot underlying, every expiry" if spot else
            "same contract (underlying_symbol = the futures' symbol)" if linked else
            "continuous futures without contract codes: each day's nearest expiry")
    if not len(groups):
        return ParityReport(groups=groups.assign(checked=False, ok=True, gap=np.nan, underlying=np.nan),
                            mode=mode, tolerance=tolerance)
    underlying = bars[under_col].reindex(pd.DatetimeIndex(groups["trading_date"])).to_numpy(dtype=float)
    groups["underlying"] = underlying
    groups["gap"] = np.log(groups["forward"] / underlying)
    has = np.isfinite(underlying) & (groups["forward"] > 0)
    if spot:
        checked = has
        low = rate * groups["t"] - max_dividend_yield * groups["t"] - tolerance
        high = rate * groups["t"] + tolerance
    else:
        low, high = -tolerance, tolerance
        if linked:
            symbols = bars["symbol"].astype(str).reindex(pd.DatetimeIndex(groups["trading_date"])).to_numpy()
            checked = has & (groups["underlying_symbol"].astype(str).to_numpy() == symbols)
        else:
            nearest = groups.assign(a=np.abs(groups["gap"]).where(has)).groupby("trading_date")["a"].transform("min")
            checked = has & (np.abs(groups["gap"]) == nearest).to_numpy()
    groups["checked"] = np.asarray(checked, dtype=bool)
    gap = groups["gap"].to_numpy()
    groups["ok"] = ~groups["checked"] | ((gap >= np.asarray(low)) & (gap <= np.asarray(high)))
    slope_bad = groups["checked"] & groups["slope"].notna() & ~groups["slope"].abs().between(*SLOPE_BAND)
    problems = _problems(groups, slope_bad.to_numpy(), lines, file, futures_file, under_col, tolerance, spot)
    return ParityReport(groups=groups, problems=problems, mode=mode, tolerance=tolerance)


def _reading(bad: pd.DataFrame) -> str:
    ratio = np.exp(bad["gap"].to_numpy())
    power = np.log10(ratio)
    if np.all(np.abs(power - np.round(power)) < 0.05) and np.all(np.round(power) != 0):
        return f"a factor of {10 ** np.round(np.median(power)):g}: the strikes or the underlying in another unit"
    gaps = np.abs(bad["gap"].to_numpy())
    if len(bad) >= 4 and np.all(np.sign(bad["gap"]) == np.sign(bad["gap"].iat[0])):
        half = len(gaps) // 2
        if np.median(gaps[:half]) > 1.5 * np.median(gaps[half:]):
            return ("the gap shrinks towards the end of the history: an adjusted (复权) underlying series, "
                    "not the price the options were written on")
    return "another product's chain, options on another contract, or an adjusted underlying"


def _problems(groups: pd.DataFrame, slope_bad: np.ndarray, lines, file: str, futures_file: str, under_col: str,
              tolerance: float, spot: bool) -> list[Problem]:
    problems = []
    bad = groups[~groups["ok"]]
    if len(bad):
        checked = int(groups["checked"].sum())
        gaps = np.abs(bad["gap"].to_numpy())
        first = bad.iloc[0]
        problems.append(Problem(file, int(lines[int(first["pos"])]), "settlement",
                                f"put–call parity: {len(bad)} of {checked} date/expiry groups disagree with the "
                                f"underlying in {futures_file} by more than ±{tolerance:.1%} "
                                f"(median {np.median(gaps):.1%}, largest {gaps.max():.1%}): {_reading(bad)}"))
        for row in bad.head(_SHOWN).itertuples():
            what = f"the underlying's {under_col}"
            problems.append(Problem(file, int(lines[int(row.pos)]), "settlement",
                                    f"{pd.Timestamp(row.trading_date).date()} expiry {pd.Timestamp(row.expiry).date()}: "
                                    f"implied forward {row.forward:,.6g} ({row.strikes} strikes) vs {what} "
                                    f"{row.underlying:,.6g}: {abs(row.gap):.1%} apart"))
        if len(bad) > _SHOWN:
            problems.append(Problem(file, None, "settlement", f"… and {len(bad) - _SHOWN} more groups"))
    sloped = groups[slope_bad]
    if len(sloped):
        first = sloped.iloc[0]
        problems.append(Problem(file, int(lines[int(first["pos"])]), "settlement",
                                f"put–call parity: in {len(sloped)} date/expiry groups call − put changes by "
                                f"{-np.median(sloped['slope']):.3g} per unit of strike (median; parity: about 1): "
                                "option prices in another unit than the strikes (per lot?)"))
    for row in sloped.head(_SHOWN).itertuples():
        problems.append(Problem(file, int(lines[int(row.pos)]), "settlement",
                                f"{pd.Timestamp(row.trading_date).date()} expiry {pd.Timestamp(row.expiry).date()}: "
                                f"call − put changes by {-row.slope:.3g} per unit of strike (parity: about 1): "
                                "option prices in another unit than the strikes (per lot?)"))
    return problems

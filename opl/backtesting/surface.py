"""Implied volatility where the chain has no settlement: the surfaces a backtest marks at.

A backtest marks an option at the chain's settlement whenever the chain has one
(`opl.runtime.engine.historical`); these surfaces answer for the rest — strikes that did not
settle, days without a chain, and data without any chain at all. They are tried in
order, the first that knows the day answering:

``calibrated``  `opl.calibration.surface.fit_surface`: a quadratic smile per (day, expiry)
                fitted to the chain's out-of-the-money settlements (BAW inversion for
                American options), the latest earlier slice when the day has none
                (options on futures only: the calibration inverts with carry 0);
``chain ATM``   the day's at-the-money implied volatility of the cycle's expiry: the call
                and put settlements at the listed strike nearest the underlying, inverted
                (`opl.runtime.pricing.implied`) and averaged, flat across strikes; the latest
                earlier day's when the day has none (used when the calibration cannot fit
                a smile, e.g. chains of fewer than five strikes);
``realised``    no chain: the simulator's implied-volatility rule
                (`opl.runtime.engine.marking.SmileRule`: spread, floor, skew, curvature) on the
                trailing 21-session realised volatility of the underlying's settlements,
                within one contract (a roll day's return is never used), annualised with
                √252; before ten returns are known, the file's ``iv`` / (1 + spread), else 25%.

Every surface sees only what was known at the day's close (no look-ahead): slices and
realised volatilities of later days are never used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from opl.runtime.pricing.implied import implied_vol
from opl.runtime.engine.marking import SmileRule

__all__ = ["RealisedSurface", "ChainAtmSurface", "SurfaceStack", "build_surfaces", "REALISED_WINDOW"]

REALISED_WINDOW = 21
_MIN_RETURNS = 10
_TRADING_DAYS = 252.0


@dataclass
class RealisedSurface:
    """The ``realised`` surface of the module docstring."""

    vol: pd.Series  # annualised trailing realised volatility by trading date (NaN before enough returns)
    smile: SmileRule
    default: float
    name: str = "realised"

    @classmethod
    def from_futures(cls, futures: pd.DataFrame, *, smile: SmileRule, default: float) -> "RealisedSurface":
        settle = futures["settlement"].to_numpy(dtype=float)
        same = futures["contract"].to_numpy()
        r = np.full(len(settle), np.nan)
        r[1:] = np.where(same[1:] == same[:-1], np.diff(np.log(settle)), np.nan)
        series = pd.Series(r, index=pd.DatetimeIndex(futures["trading_date"]))
        vol = series.rolling(REALISED_WINDOW, min_periods=_MIN_RETURNS).std(ddof=1) * math.sqrt(_TRADING_DAYS)
        return cls(vol=vol, smile=smile, default=default)

    def iv(self, *, date, expiry, strike, forward) -> np.ndarray:
        sigma = self.vol.get(pd.Timestamp(date), np.nan)
        sigma = self.default if not np.isfinite(sigma) else float(sigma)
        return np.asarray(self.smile.iv(vol=np.asarray(sigma), forward=forward, strike=strike), dtype=float)


@dataclass
class ChainAtmSurface:
    """The ``chain ATM`` surface of the module docstring."""

    atm: pd.DataFrame  # trading_date, expiry, iv (one row per day and expiry that inverted)
    name: str = "chain ATM"

    @classmethod
    def from_chain(cls, options: pd.DataFrame, forwards: np.ndarray, *, rate: float, carry: float | np.ndarray,
                   american: bool) -> "ChainAtmSurface":
        """``forwards`` is each chain row's underlying settlement (NaN where unknown); ``carry`` the
        cost of carry, one for all or one per row (an ETF's from put–call parity)."""
        frame = options[["trading_date", "expiry", "strike_price", "option_type", "settlement"]].copy()
        frame["forward"] = forwards
        frame["carry"] = np.broadcast_to(np.asarray(carry, dtype=float), len(frame))
        frame = frame[np.isfinite(frame["forward"].to_numpy(dtype=float))]
        frame["gap"] = (frame["strike_price"] - frame["forward"]).abs()
        nearest = frame.groupby(["trading_date", "expiry"])["gap"].transform("min")
        atm = frame[frame["gap"] == nearest]
        t = (pd.DatetimeIndex(atm["expiry"]) - pd.DatetimeIndex(atm["trading_date"])).days.to_numpy() / 365.0
        vol = implied_vol(price=atm["settlement"].to_numpy(dtype=float), is_call=(atm["option_type"] == "C").to_numpy(),
                          underlying=atm["forward"].to_numpy(dtype=float), strike=atm["strike_price"].to_numpy(float),
                          t=t, rate=rate, carry=atm["carry"].to_numpy(dtype=float),
                          style="american" if american else "european").vol
        atm = atm.assign(iv=vol)
        table = atm.groupby(["trading_date", "expiry"], as_index=False)["iv"].mean()
        return cls(atm=table[np.isfinite(table["iv"].to_numpy())].sort_values(["trading_date", "expiry"])
                   .reset_index(drop=True))

    def iv(self, *, date, expiry, strike, forward) -> np.ndarray:
        date, expiry = pd.Timestamp(date), pd.Timestamp(expiry)
        known = self.atm[self.atm["trading_date"] <= date]
        same = known[known["expiry"] == expiry]
        if len(same):
            level = float(same["iv"].iloc[-1])
        elif len(known):
            last = known[known["trading_date"] == known["trading_date"].iloc[-1]]
            wanted = (expiry - date).days
            days = (pd.DatetimeIndex(last["expiry"]) - date).days.to_numpy()
            level = float(last["iv"].iloc[int(np.argmin(np.abs(days - wanted)))])
        else:
            raise KeyError(f"no at-the-money implied volatility on or before {date.date()}")
        return np.full(np.shape(strike), level, dtype=float)


@dataclass
class SurfaceStack:
    """Surfaces tried in order (module docstring)."""

    surfaces: list

    def iv(self, *, date, expiry, strike, forward) -> np.ndarray:
        for surface in self.surfaces:
            try:
                out = np.asarray(surface.iv(date=date, expiry=expiry, strike=strike, forward=forward), dtype=float)
            except KeyError:
                continue
            if np.all(np.isfinite(out)) and np.all(out > 0):
                return out
        raise KeyError(f"no surface knows {pd.Timestamp(date).date()}")  # the realised surface always does

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.surfaces]


def _calibrated(options: pd.DataFrame, futures: pd.DataFrame, *, rate: float, american: bool, notes: list[str]):
    try:
        from opl.calibration.surface import fit_surface
    except ImportError:  # the calibration package is optional for a backtest
        return None
    try:
        result = fit_surface(options, futures, rate=rate, style="american" if american else "european")
    except ValueError as error:
        notes.append(f"no calibrated smile ({error}); the chain's at-the-money volatility stands in")
        return None
    surface = result.surface
    surface.name = "calibrated"
    return surface


def build_surfaces(*, futures: pd.DataFrame, options: pd.DataFrame | None, forwards: np.ndarray | None,
                   smile: SmileRule, default_vol: float, rate: float, carry: float, american: bool,
                   notes: list[str], carries: dict | None = None) -> SurfaceStack:
    """The stack of the module docstring for this data.

    ``carries`` maps (date, expiry) to the chain's put–call parity cost of carry (options on
    spot, :meth:`opl.backtesting.cycles.ChainIndex.parity_carries`); the chain-ATM surface inverts
    each row with it (else with ``carry``).
    """
    surfaces = []
    if options is not None and len(options):
        # The calibration inverts on futures (carry 0); an ETF's chain gets the chain-ATM surface.
        calibrated = _calibrated(options, futures, rate=rate, american=american, notes=notes) if carry == 0 else None
        if calibrated is not None:
            surfaces.append(calibrated)
        row_carry = carry if not carries else np.array(
            [carries.get((pd.Timestamp(d), pd.Timestamp(e)), carry)
             for d, e in zip(options["trading_date"], options["expiry"])], dtype=float)
        surfaces.append(ChainAtmSurface.from_chain(options, forwards, rate=rate, carry=row_carry, american=american))
    surfaces.append(RealisedSurface.from_futures(futures, smile=smile, default=default_vol))
    return SurfaceStack(surfaces)

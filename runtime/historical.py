"""Given months for the replay: the option cycles of a history, marked at the chain's
settlements where it has them and at a volatility surface where it does not.

`opl.runtime.replay` replays *months*; a simulation draws them (`opl.runtime.processes`),
a backtest gives them. A `HistoricalMonth` is one option cycle over a given path — the
settlements of one futures contract (or of an ETF) from the cycle's opening day to the
options' expiry, never across a roll — with everything the replay reads already marked:

* ``t`` from the calendar: (expiry − trading day) / 365 (ACT/365F, as the pricers), so
  ``days_left`` is calendar days to expiry and a step lasts the days between sessions;
* each leg's value on day j: the chain's settlement of that strike, type and expiry
  where there is one (``quotes``), else the model value at the surface's implied
  volatility (``surface``); delta and the holder's exercise flag from the model at the
  settlement's own implied volatility (`opl.runtime.implied`, American legs by BAW, with
  the style's ``carry``) when it inverts, else at the surface's;
* ``expires`` False when the cycle ends before the options expire (the futures contract
  rolled, or the data end): the replay then closes everything at market on its last day.

`GivenMonths` hands a list of them to the replay (``RunSpec.source``); replayed with the
simulator's own month marks, it reproduces the simulation (``tests/backtest``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from opl.runtime import pricing
from opl.runtime.american import baw_value_delta_gamma, critical_price
from opl.runtime.implied import implied_vol
from opl.runtime.legspec import OptionLeg
from opl.runtime.replay import DAYS_PER_YEAR, MarkedMonth

__all__ = ["HistoricalMonth", "GivenMonths", "mark_cycle"]


class HistoricalMonth(MarkedMonth):
    """One given option cycle, marked (attributes of `opl.runtime.replay.MarkedMonth`), arrays over paths."""

    def __init__(self, *, price: np.ndarray, t: np.ndarray, strikes: list, value: list, delta: list,
                 exercise: list, atm: np.ndarray, support: np.ndarray, resistance: np.ndarray, signal: np.ndarray,
                 expires: bool = True, band: tuple[np.ndarray, np.ndarray] | None = None):
        price = np.atleast_2d(np.asarray(price, dtype=float))
        t = np.asarray(t, dtype=float)
        n = price.shape[1] - 1
        if n < 1:
            raise ValueError("a cycle needs at least two sessions (an open and one step)")
        if t.shape != (n + 1,) or np.any(np.diff(t) > 0) or t[-1] < 0:
            raise ValueError("t must have one non-increasing, non-negative time to expiry per session")
        self.price, self.n, self.t = price, n, t
        self.days_left = t * DAYS_PER_YEAR
        self.span = np.concatenate([[0.0], -np.diff(t) * DAYS_PER_YEAR])
        self.step_days = float((t[0] - t[-1]) * DAYS_PER_YEAR / n)
        self.strikes = [np.atleast_1d(np.asarray(k, dtype=float)) for k in strikes]
        self.value = [np.atleast_2d(v) for v in value]
        self.delta = [np.atleast_2d(d) for d in delta]
        self.exercise = [np.atleast_2d(e) for e in exercise]
        self.atm = np.atleast_2d(atm)
        self.support, self.resistance = np.atleast_1d(support), np.atleast_1d(resistance)
        self.signal = np.atleast_1d(signal)
        self.expires = expires
        self.band = band

    def with_band(self, band: tuple[np.ndarray, np.ndarray] | None) -> "HistoricalMonth":
        """The same cycle with another delta band (centre, width per session)."""
        out = object.__new__(HistoricalMonth)
        out.__dict__.update(self.__dict__)
        out.band = band
        return out


class GivenMonths:
    """The ``next_month()`` source the replay reads, over a fixed list of months."""

    def __init__(self, months: Sequence[MarkedMonth]):
        self._months = list(months)
        self._next = 0

    def next_month(self) -> MarkedMonth:
        if self._next >= len(self._months):
            raise IndexError("the replay asked for more months than the history has")
        month = self._months[self._next]
        self._next += 1
        return month

    @classmethod
    def factory(cls, months: Sequence[MarkedMonth]):
        """A ``RunSpec.source``: every chunk replays the same months (a history is one path)."""
        months = list(months)
        return lambda chunk, paths: cls(months)


def _marks(leg: OptionLeg, price: np.ndarray, k: float, t: np.ndarray, iv: np.ndarray, rate: float,
           carry: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model value, delta and the holder's exercise flag per session: Black (European) or BAW
    (American, exercised beyond BAW's critical price, where it is worth its intrinsic value);
    at expiry the intrinsic value. The same rules as `opl.runtime.marking.AmericanMarker`, element
    by element (a history's sessions all have different times to expiry, so no tables)."""
    phi = leg.phi
    intrinsic = np.maximum(phi * (price - k), 0.0)
    value, delta = intrinsic.copy(), np.where(intrinsic > 0, phi, 0.0)
    exercise = intrinsic > 0
    live = t > 0
    if not np.any(live):
        return value, delta, exercise
    args = dict(is_call=leg.is_call, underlying=price[live], strike=k, t=t[live], vol=iv[live], rate=rate,
                carry=carry)
    exercise = exercise & ~live
    if not leg.american:
        v, d, _ = pricing.value_delta_gamma(**args, with_gamma=False)
        value[live], delta[live] = v, d
        return value, delta, exercise
    v, d, _ = baw_value_delta_gamma(**args)
    never = (carry >= rate and rate >= 0) if leg.is_call else (carry <= rate and rate <= 0)
    if never:
        early = np.zeros(int(live.sum()), dtype=bool)
    else:
        critical = np.asarray(critical_price(is_call=leg.is_call, strike=k, t=t[live], vol=iv[live], rate=rate,
                                             carry=carry)[0])
        early = (phi * (price[live] - critical) >= 0) & (intrinsic[live] > 0)
    value[live] = np.where(early, intrinsic[live], np.maximum(v, intrinsic[live]))
    delta[live] = np.where(early, phi, d)
    exercise[live] = early
    return value, delta, exercise


def mark_cycle(*, legs: Sequence[OptionLeg], price: np.ndarray, t: np.ndarray, strikes: Sequence[float],
               quotes: Sequence[np.ndarray], surface: Sequence[np.ndarray], atm: np.ndarray, support: float,
               resistance: float, signal: float, rate: float, carry: float = 0.0, expires: bool = True,
               band: tuple[np.ndarray, np.ndarray] | None = None) -> HistoricalMonth:
    """Mark one cycle of one path (module docstring).

    Parameters
    ----------
    legs
        The strategy's option legs (type and exercise style).
    price, t
        The underlying's settlements and the years to expiry, one per session (n + 1,).
    strikes
        Each leg's strike.
    quotes
        Each leg's settlement per session, NaN where the chain has none.
    surface
        Each leg's implied volatility per session from the surface (used where a quote
        is missing or does not invert).
    atm
        At-the-money implied volatility per session (what ``vega_crush`` and ``iv`` read).
    support, resistance, signal
        The spot team's levels and direction (+1, −1, 0) for the cycle.
    rate, carry
        Risk-free rate and cost of carry (0 for options on futures, the rate for an ETF
        without dividends).
    """
    price = np.asarray(price, dtype=float)
    t = np.asarray(t, dtype=float)
    values, deltas, flags = [], [], []
    for leg, k, quote, iv_surface in zip(legs, strikes, quotes, surface):
        quote = np.asarray(quote, dtype=float)
        iv = np.asarray(iv_surface, dtype=float).copy()
        have = np.isfinite(quote) & (t > 0)
        if np.any(have):
            inverted = implied_vol(price=quote[have], is_call=leg.is_call, underlying=price[have], strike=k,
                                   t=t[have], rate=rate, carry=carry,
                                   style="american" if leg.american else "european").vol
            iv[have] = np.where(np.isfinite(inverted), inverted, iv[have])
        model, delta, exercise = _marks(leg, price, float(k), t, iv, rate, carry)
        # At expiry the option is worth its intrinsic value whatever the last settlement says.
        values.append(np.where(have, quote, model)[None, :])
        deltas.append(delta[None, :])
        flags.append(exercise[None, :])
    return HistoricalMonth(price=price[None, :], t=t, strikes=[np.array([k]) for k in strikes], value=values,
                           delta=deltas, exercise=flags, atm=np.asarray(atm, dtype=float)[None, :],
                           support=np.array([support]), resistance=np.array([resistance]),
                           signal=np.array([signal]), expires=expires, band=band)

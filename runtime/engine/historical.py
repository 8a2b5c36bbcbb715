"""Given months for the replay: the option cycles of a history, marked at the chain's
settlements where it has them and at a volatility surface where it does not.

`opl.runtime.engine.replay` replays *months*; a simulation draws them (`opl.runtime.engine.processes`),
a backtest gives them. A `HistoricalMonth` is one option cycle over a given path — the
settlements of one futures contract (or of an ETF) from the cycle's opening day to the
options' expiry, never across a roll — with everything the replay reads already marked:

* ``t`` from the calendar: (expiry − trading day) / 365 (ACT/365F, as the pricers), so
  ``days_left`` is calendar days to expiry and a step lasts the days between sessions;
* each leg's value on day j: the chain's settlement of that strike, type and expiry
  where there is one (``quotes``), else the model value at the surface's implied
  volatility (``surface``); delta, gamma and the holder's exercise flag from the model
  (American legs: the finite-difference prices of `opl.runtime.pricing.american_fd`, as the
  simulator's marks) at the settlement's own implied volatility (`opl.runtime.pricing.implied`,
  American legs inverted by BAW, with the style's ``carry``) when it inverts, else at the surface's;
* ``expires`` False when the cycle ends before the options expire (the futures contract
  rolled, or the data end): the replay then closes everything at market on its last day.

**Other series.** The adjustment module opens series the file did not (a roll to a new
strike, a gamma hedge). With a `Quotes` source a month quotes any strike on any session
by the same rule — the settlement when the chain lists it (at the cycle's expiry), else
the surface — and resolves and snaps strikes as a simulated month does (`strike_for`,
`snap`, `snap_up`; the rule pack's grid).

`GivenMonths` hands a list of months to the replay (``RunSpec.source``); replayed with
the simulator's own month marks, it reproduces the simulation (``tests/backtest``).
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from opl.runtime.pricing import black as pricing
from opl.runtime.pricing.american_fd import fd_marks
from opl.runtime.pricing.implied import implied_vol
from opl.runtime.engine.legspec import Levels, OptionLeg
from opl.runtime.engine.months import MarkedMonth
from opl.runtime.engine.runspec import DAYS_PER_YEAR

__all__ = ["HistoricalMonth", "GivenMonths", "Quotes", "mark_cycle", "option_marks"]


class Quotes(Protocol):
    """What a cycle knows of other series on session ``j`` (arrays of strikes)."""

    def settlement(self, j: int, is_call: bool, strikes: np.ndarray, extra_days: float) -> np.ndarray:
        """The chain's settlements (NaN where it has none)."""

    def iv(self, j: int, strikes: np.ndarray, extra_days: float) -> np.ndarray:
        """The surface's implied volatility."""


def option_marks(*, is_call: bool, american: bool, price, strike, t, iv, rate: float, carry: float,
                 gamma: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """Model value, delta, gamma (when asked) and the holder's exercise flag, element by element.

    Black (European) or finite differences (American, `opl.runtime.pricing.american_fd.fd_marks`:
    exercised beyond the exercise boundary, where it is worth its intrinsic value, delta ±1 and
    gamma 0); at expiry the intrinsic value. The
    rules of `opl.runtime.engine.marking.AmericanMarker`, without its tables (a history's
    sessions all have different times to expiry).
    """
    price, strike, t, iv = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (price, strike, t, iv)))
    phi = 1.0 if is_call else -1.0
    intrinsic = np.maximum(phi * (price - strike), 0.0)
    value, delta = intrinsic.copy(), np.where(intrinsic > 0, phi, 0.0)
    gam = np.zeros(price.shape) if gamma else None
    exercise = intrinsic > 0
    live = t > 0
    if not np.any(live):
        return value, delta, gam, exercise
    args = dict(is_call=is_call, underlying=price[live], strike=strike[live], t=t[live], vol=iv[live], rate=rate,
                carry=carry)
    exercise = exercise & ~live
    if not american:
        v, d, g = pricing.value_delta_gamma(**args, with_gamma=gamma)
        value[live], delta[live] = v, d
        if gamma:
            gam[live] = g
        return value, delta, gam, exercise
    v, d, g, critical = fd_marks(**args)
    early = (phi * (price[live] - critical) >= 0) & (intrinsic[live] > 0)
    value[live] = np.where(early, intrinsic[live], np.maximum(v, intrinsic[live]))
    delta[live] = np.where(early, phi, d)
    if gamma:
        gam[live] = np.where(early, 0.0, g)
    exercise[live] = early
    return value, delta, gam, exercise


def _implied(quote, *, is_call: bool, american: bool, price, strike, t, iv, rate: float, carry: float):
    """``iv`` replaced by each settlement's own implied volatility where it has one that inverts."""
    iv = np.array(iv, dtype=float, copy=True)
    have = np.isfinite(quote) & (t > 0)
    if np.any(have):
        inverted = implied_vol(price=quote[have], is_call=is_call, underlying=price[have], strike=strike[have],
                               t=t[have], rate=rate, carry=carry, style="american" if american else "european").vol
        iv[have] = np.where(np.isfinite(inverted), inverted, iv[have])
    return iv, have


class HistoricalMonth(MarkedMonth):
    """One given option cycle, marked (attributes of `opl.runtime.engine.months.MarkedMonth`), arrays over paths.

    With ``quotes`` (and the ``pack``, ``levels``, ``rate`` and ``carry`` they are read with)
    the month also quotes other series for the adjustment module (module docstring).
    """

    def __init__(self, *, price: np.ndarray, t: np.ndarray, strikes: list, value: list, delta: list,
                 exercise: list, atm: np.ndarray, support: np.ndarray, resistance: np.ndarray, signal: np.ndarray,
                 expires: bool = True, band: tuple[np.ndarray, np.ndarray] | None = None,
                 gamma: list | None = None, quotes: Quotes | None = None, pack=None, levels: Levels | None = None,
                 rate: float = 0.0, carry: float = 0.0):
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
        self.gamma = None if gamma is None else [np.atleast_2d(g) for g in gamma]
        self.atm = np.atleast_2d(atm)
        self.support, self.resistance = np.atleast_1d(support), np.atleast_1d(resistance)
        self.signal = np.atleast_1d(signal)
        self.expires = expires
        self.band = band
        self.quotes, self.pack, self.levels, self.rate, self.carry = quotes, pack, levels, rate, carry

    def with_band(self, band: tuple[np.ndarray, np.ndarray] | None) -> "HistoricalMonth":
        """The same cycle with another delta band (centre, width per session)."""
        out = object.__new__(HistoricalMonth)
        out.__dict__.update(self.__dict__)
        out.band = band
        return out

    def __getattr__(self, name: str):
        # Only a month with quotes can serve the adjustment module, which asks `hasattr(month, "quote")`.
        if name == "quote" and self.__dict__.get("quotes") is not None:
            return self._quote
        raise AttributeError(name)

    # -- the adjustment module's questions (a month with quotes) ------------------------------
    def snap(self, raw: np.ndarray) -> np.ndarray:
        """Strikes on the pack's grid, never below its lowest listed strike."""
        lowest = self.pack.option.strike_grid[0].step
        return np.maximum(np.asarray(self.pack.snap_strike(np.maximum(raw, lowest)), dtype=float), lowest)

    def snap_up(self, price: np.ndarray) -> np.ndarray:
        """The listed strike nearest at or above ``price``."""
        lowest = self.pack.option.strike_grid[0].step
        return np.maximum(np.asarray(self.pack.snap_strike(np.maximum(price, lowest), mode="up"), dtype=float),
                          lowest)

    def strike_for(self, leg: OptionLeg, j: int, *, recentre: bool, extra_days: float) -> np.ndarray:
        """A leg's strike rule resolved on session ``j``: against the cycle's levels, or (``recentre``)
        levels of the same widths around the session's price."""
        f = self.price[:, j]
        support, resistance = self.levels.of(f) if recentre else (self.support, self.resistance)
        iv = self.quotes.iv(j, f, extra_days)
        t = max(self.t[j] + extra_days / DAYS_PER_YEAR, 1e-9)
        return self.snap(leg.strike.resolve(is_call=leg.is_call, price=f, support=support, resistance=resistance,
                                            iv=iv, t=t, rate=self.rate))

    def vega(self, slot, j: int) -> np.ndarray:
        """Black vega per unit and per 1.00 of volatility of a slot's series on session ``j``."""
        f = self.price[:, j]
        strike = np.broadcast_to(slot.strike, np.broadcast_shapes(np.shape(slot.strike), f.shape))
        iv = self.quotes.iv(j, strike, slot.extra_days)
        t = max(self.t[j] + slot.extra_days / DAYS_PER_YEAR, 0.0)
        return pricing.greeks(is_call=slot.is_call, underlying=f, strike=strike, t=t, vol=iv, rate=self.rate,
                              carry=self.carry).vega

    def _quote(self, *, is_call: bool, american: bool, strike: np.ndarray, extra_days: float, j: int,
               where: np.ndarray):
        """Marks on session ``j`` of options of ``strike`` (variants, paths) where ``where``; elsewhere 0."""
        shape = where.shape
        value, delta, gamma = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        exercise = np.zeros(shape, dtype=bool)
        vi, pi = np.nonzero(where)
        if vi.size:
            f, k = self.price[pi, j], np.broadcast_to(strike, shape)[vi, pi]
            t = np.full(k.shape, self.t[j] + extra_days / DAYS_PER_YEAR)
            quote = self.quotes.settlement(j, is_call, k, extra_days)
            iv, have = _implied(quote, is_call=is_call, american=american, price=f, strike=k, t=t,
                                iv=self.quotes.iv(j, k, extra_days), rate=self.rate, carry=self.carry)
            v, d, g, e = option_marks(is_call=is_call, american=american, price=f, strike=k, t=t, iv=iv,
                                      rate=self.rate, carry=self.carry, gamma=True)
            value[vi, pi] = np.where(have, quote, v)
            delta[vi, pi], gamma[vi, pi], exercise[vi, pi] = d, g, e
        return value, delta, gamma, exercise


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


def mark_cycle(*, legs: Sequence[OptionLeg], price: np.ndarray, t: np.ndarray, strikes: Sequence[float],
               quotes: Sequence[np.ndarray], surface: Sequence[np.ndarray], atm: np.ndarray, support: float,
               resistance: float, signal: float, rate: float, carry: float = 0.0, expires: bool = True,
               band: tuple[np.ndarray, np.ndarray] | None = None, gamma: bool = False,
               other: Quotes | None = None, pack=None, levels: Levels | None = None) -> HistoricalMonth:
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
    gamma
        Mark gamma too (the adjustment module, ``structure_destabilised`` and scores read it).
    other, pack, levels
        Quotes of other series and what strikes are resolved with, for the adjustment module.
    """
    price = np.asarray(price, dtype=float)
    t = np.asarray(t, dtype=float)
    values, deltas, gammas, flags = [], [], [], []
    for leg, k, quote, iv_surface in zip(legs, strikes, quotes, surface):
        quote = np.asarray(quote, dtype=float)
        strike = np.full(t.shape, float(k))
        iv, have = _implied(quote, is_call=leg.is_call, american=leg.american, price=price, strike=strike, t=t,
                            iv=iv_surface, rate=rate, carry=carry)
        model, delta, gam, exercise = option_marks(is_call=leg.is_call, american=leg.american, price=price,
                                                   strike=strike, t=t, iv=iv, rate=rate, carry=carry, gamma=gamma)
        # At expiry the option is worth its intrinsic value whatever the last settlement says.
        values.append(np.where(have, quote, model)[None, :])
        deltas.append(delta[None, :])
        flags.append(exercise[None, :])
        if gamma:
            gammas.append(gam[None, :])
    return HistoricalMonth(price=price[None, :], t=t, strikes=[np.array([k]) for k in strikes], value=values,
                           delta=deltas, exercise=flags, atm=np.asarray(atm, dtype=float)[None, :],
                           support=np.array([support]), resistance=np.array([resistance]),
                           signal=np.array([signal]), expires=expires, band=band,
                           gamma=gammas if gamma else None, quotes=other, pack=pack, levels=levels, rate=rate,
                           carry=carry)

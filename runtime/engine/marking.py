"""Marking options along simulated paths: the implied-volatility rule and fast American values.

**Implied volatility.** With σ_t the model's annual volatility forecast at a step
(`opl.runtime.engine.processes.MonthPaths.vol`) and x = ln(K/F) the log-moneyness of a strike::

    iv_ATM(t)  = max(floor, σ_t · (1 + spread))
    iv(K, t)   = max(floor, iv_ATM(t) · (1 + skew·x + curvature·x²))

``spread`` is the variance risk premium sellers earn (jujube: listed options at about 27%
against 25% realised, so 0.08 by default); ``skew`` < 0 makes puts dearer than calls, and
``curvature`` lifts both wings. Defaults: floor 10%, skew −0.2, curvature 2 (a 5% OTM put
1.5% above ATM, a 5% OTM call 0.5% below).
Because σ_t follows the GARCH variance, implied volatility — and the value of a short
option — moves with the market: vega P&L is part of every replay.

**American values.** Barone-Adesi–Whaley is homogeneous of degree one in (F, K), so at a
given time to expiry T the early-exercise premium EEP = BAW − Black is K·e(x, σ) with
x = ln(F/K). The replay's steps share a handful of T values, so `AmericanMarker` tabulates
e on a grid of x ∈ [−1, 1] (401 nodes) and ln σ ∈ [ln 2%, ln 300%] (41 nodes) once per
(T, rate, carry) — exact BAW (`opl.runtime.pricing.american.baw_price`) at every node — and marks
each option as the exact Black value and delta (`opl.runtime.pricing.black.value_delta_gamma`) plus the
bilinearly interpolated premium and its x-derivative. The holder's exercise boundary is
BAW's critical price S*(T, σ)/K, tabulated in σ from the same solver; an option beyond it
is worth its intrinsic value and is exercised (`opl.runtime.engine.exercise`). Against direct
BAW the tables are within 1e-4·K in value (``tests/simulate/test_marking.py``); ``exact=True``
prices every element with BAW itself (50× slower, for validation).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from opl.runtime.pricing import black as pricing
from opl.runtime.pricing.american import baw_price, baw_value_delta_gamma, critical_price

__all__ = ["SmileRule", "Marks", "AmericanMarker"]

_X = np.linspace(-1.0, 1.0, 401)
_LOGV = np.linspace(np.log(0.02), np.log(3.0), 41)


@dataclass(frozen=True, kw_only=True)
class SmileRule:
    """The implied-volatility rule of the module docstring."""

    spread: float = 0.08
    floor: float = 0.10
    skew: float = -0.2
    curvature: float = 2.0

    def atm(self, vol: np.ndarray) -> np.ndarray:
        """At-the-money implied volatility from the model's volatility forecast."""
        return np.maximum(self.floor, np.asarray(vol) * (1.0 + self.spread))

    def iv(self, *, vol: np.ndarray, forward: np.ndarray, strike: np.ndarray) -> np.ndarray:
        """Implied volatility of ``strike`` when the future is at ``forward``."""
        x = np.log(np.asarray(strike) / np.asarray(forward))
        return np.maximum(self.floor, self.atm(vol) * (1.0 + self.skew * x + self.curvature * x * x))


class Marks(NamedTuple):
    """Value, delta (and gamma when asked) of one long option per unit, and whether the holder exercises now."""

    value: np.ndarray
    delta: np.ndarray
    exercise: np.ndarray
    gamma: np.ndarray | None = None


@lru_cache(maxsize=512)
def _tables(is_call: bool, t: float, rate: float, carry: float):
    forward = np.exp(_X)[:, None]
    vol = np.exp(_LOGV)[None, :]
    args = dict(is_call=is_call, underlying=forward, strike=1.0, t=t, vol=vol, rate=rate, carry=carry)
    eep = np.asarray(baw_price(**args)) - np.asarray(pricing.price(**args))
    # d(EEP/K)/d(F/K) = (1/(F/K))·d e/dx: the premium's contribution to delta.
    d_eep = np.gradient(eep, _X, axis=0) / forward
    phi = 1.0 if is_call else -1.0
    v = np.exp(_LOGV)
    never = (carry >= rate and rate >= 0) if is_call else (carry <= rate and rate <= 0)
    if never:
        boundary = np.full(v.shape, np.inf if is_call else 0.0)
    else:
        boundary = np.asarray(critical_price(is_call=is_call, strike=1.0, t=t, vol=v, rate=rate, carry=carry)[0])
    eep.setflags(write=False)
    d_eep.setflags(write=False)
    boundary.setflags(write=False)
    return eep, d_eep, boundary


def _bilinear(tables: tuple[np.ndarray, ...], x: np.ndarray, logv: np.ndarray) -> list[np.ndarray]:
    """Interpolate several tables on the same grid at the same points (the weights are shared)."""
    fx = (np.clip(x, _X[0], _X[-1]) - _X[0]) / (_X[1] - _X[0])
    fv = (np.clip(logv, _LOGV[0], _LOGV[-1]) - _LOGV[0]) / (_LOGV[1] - _LOGV[0])
    i = np.minimum(fx.astype(np.intp), len(_X) - 2)
    j = np.minimum(fv.astype(np.intp), len(_LOGV) - 2)
    wx, wv = fx - i, fv - j
    flat = i * len(_LOGV) + j  # one gather per corner on the raveled tables
    corners = ((flat, (1 - wx) * (1 - wv)), (flat + 1, (1 - wx) * wv), (flat + len(_LOGV), wx * (1 - wv)),
               (flat + len(_LOGV) + 1, wx * wv))
    out = []
    for table in tables:
        t = table.ravel()
        out.append(sum(t[index] * weight for index, weight in corners))
    return out


def _black(is_call: bool, forward, strike, t: float, vol, rate: float, carry: float, gamma: bool):
    """Black value, delta and (when asked) gamma; the other Greeks are not needed here."""
    return pricing.value_delta_gamma(is_call=is_call, underlying=forward, strike=strike, t=t, vol=vol, rate=rate,
                                     carry=carry, with_gamma=gamma)


def _linear(values: np.ndarray, logv: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.interp(np.clip(logv, _LOGV[0], _LOGV[-1]), _LOGV, values)


@dataclass(frozen=True, kw_only=True)
class AmericanMarker:
    """Marks options of one style at a rate and carry (b = 0 for options on futures).

    Parameters
    ----------
    american
        American (BAW) or European (Black) exercise.
    rate, carry
        Risk-free rate and cost of carry.
    exact
        Price American options with BAW element by element instead of the tables.
    """

    american: bool
    rate: float
    carry: float = 0.0
    exact: bool = False

    def mark(self, *, is_call: bool, forward: np.ndarray, strike: np.ndarray, t: float,
             vol: np.ndarray, gamma: bool = False) -> Marks:
        """Mark options with time to expiry ``t`` (years, one value for the whole array).

        ``gamma=True`` adds gamma: Black-76's for both styles (the early-exercise
        premium's curvature is left out; it is 0 in the exercise region, where gamma is 0).
        """
        forward, strike, vol = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (forward, strike, vol)))
        phi = 1.0 if is_call else -1.0
        intrinsic = np.maximum(phi * (forward - strike), 0.0)
        if t <= 0:
            delta = np.where(intrinsic > 0, phi, 0.0)
            return Marks(intrinsic, delta, intrinsic > 0, np.zeros(forward.shape) if gamma else None)
        if np.any(forward < 0) or np.any(strike < 0) or np.any(vol < 0):
            raise ValueError("forward, strike and vol must be >= 0")
        if not self.american:
            value, delta, g = _black(is_call, forward, strike, t, vol, self.rate, self.carry, gamma)
            return Marks(value, delta, np.zeros(forward.shape, dtype=bool), g)
        logv = np.log(vol)
        eep, d_eep, boundary = _tables(is_call, float(t), float(self.rate), float(self.carry))
        critical = strike * _linear(boundary, logv)
        exercise = phi * (forward - critical) >= 0
        if self.exact:
            value, delta, g = baw_value_delta_gamma(is_call=is_call, underlying=forward, strike=strike, t=t, vol=vol,
                                                    rate=self.rate, carry=self.carry)
            g = g if gamma else None
        else:
            value, delta, g = _black(is_call, forward, strike, t, vol, self.rate, self.carry, gamma)
            premium, premium_delta = _bilinear((eep, d_eep), np.log(forward / strike), logv)
            value = value + strike * premium
            delta = delta + premium_delta
        value = np.where(exercise, intrinsic, np.maximum(value, intrinsic))
        delta = np.where(exercise, phi * (intrinsic > 0), delta)
        if g is not None:
            g = np.where(exercise, 0.0, g)
        return Marks(value, delta, exercise & (intrinsic > 0), g)

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

**American values.** At a given time to expiry T the early-exercise premium
EEP = American − Black is homogeneous of degree one in (F, K): EEP = K·e(x, σ) with
x = ln(F/K). The replay's steps share a handful of T values, so `prepare_tables` tabulates e
and its delta contribution on a grid of x ∈ [−1, 1] (401 nodes) and ln σ ∈ [ln 2%, ln 300%]
(41 nodes) per (T, rate, carry), with the holder's exercise boundary S*(T, σ)/K per σ node,
from the finite-difference solver of `opl.runtime.pricing.american_fd` (Crank–Nicolson with
the exercise constraint; one march per σ node and octave of days serves every expiry of a
month). `AmericanMarker` marks each option as the exact Black value and delta
(`opl.runtime.pricing.black.value_delta_gamma`) plus the bilinearly interpolated premium and
its delta; an option beyond the boundary (interpolated linearly in ln σ) is worth its
intrinsic value and is exercised (`opl.runtime.engine.exercise`).

Accuracy: the solver is within 3e-5·K and 1e-4 relative of QuantLib's
``QdFpAmericanEngine`` (Andersen–Lake–Offengelt, high precision) from one week to one year,
its boundary within 0.3% (``tests/runtime/test_american_fd.py``); the tables read between
their nodes are within 1e-4·K of QuantLib (the same file) and of the solver element by
element (``tests/simulate/test_marking.py``). Barone-Adesi–Whaley, which the tables held
before, is 0.5–0.6% off for one-year options; it stays available as
`opl.runtime.pricing.american.baw_price` (the compiler's Greeks use it). ``exact=True``
prices every element with the solver itself (one solve each, ~0.6 ms: for validation).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from opl.runtime.engine import tablestore
from opl.runtime.pricing import black as pricing
from opl.runtime.pricing.american_fd import fd_marks, premium_tables

__all__ = ["SmileRule", "Marks", "AmericanMarker", "prepare_tables"]

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


_CACHE_SIZE = 512  # tables of 401 × 41 nodes, 0.26 MB each: at most ~135 MB
_CACHE: OrderedDict[tuple[bool, float, float, float], tuple[np.ndarray, np.ndarray, np.ndarray]] = OrderedDict()


def prepare_tables(is_call: bool, times, rate: float, carry: float) -> None:
    """Build the tables of every expiry of ``times`` not built yet, sharing the finite-difference marches
    (one per volatility node and octave of days): a month's expiries cost a few marches, not one each.

    Each table depends only on its own (is_call, T, rate, carry), whatever it was built with, so a run's
    marks do not depend on what ran before it. The volatility nodes are solved side by side on threads where
    this process may use them (`_on_threads`). Stops at the run's deadline between volatility nodes. Tables
    solved once are kept on disk and read by the later processes asking for them (`tablestore`: the same bytes;
    ~5 ms against the marches' kernel loaded from numba's cache and the marches, ~0.45 s of CPU a month's two
    types of the jujube strangle)."""
    from opl.runtime.engine.deadline import check

    missing = sorted({float(t) for t in times if t > 0} - {key[1] for key in _CACHE
                                                           if key[0] == is_call and key[2:] == (rate, carry)})
    if not missing:
        return
    solved = tablestore.load(is_call, missing, rate, carry)
    if solved is None:
        solved = _solved(is_call, missing, rate, carry, check)
        tablestore.save(is_call, missing, rate, carry, solved)
    eep, d_eep, boundary = solved
    for m, t in enumerate(missing):
        tables = tuple(np.array(a[m]) for a in (eep, d_eep, boundary))
        for a in tables:
            a.setflags(write=False)
        _CACHE[(is_call, t, rate, carry)] = tables
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)


def _solved(is_call: bool, times: list[float], rate: float, carry: float, check) -> tuple[np.ndarray, ...]:
    """The tables of ``times`` solved: the premium, its delta contribution (times × 401 × 41) and the exercise
    boundary (times × 41), the volatility nodes side by side (`_on_threads`); ``check``: the deadline's."""
    vols = np.exp(_LOGV)
    eep, slope = np.empty((len(times), len(_X), len(vols))), np.empty((len(times), len(_X), len(vols)))
    boundary = np.empty((len(times), len(vols)))

    def solve(j: int) -> None:
        check()  # an hourly grid is hundreds of expiries: seconds of marches
        eep[:, :, j], slope[:, :, j], boundary[:, j] = premium_tables(is_call=is_call, times=times, rate=rate,
                                                                      carry=carry, x=_X, vol=vols[j])

    _on_threads(solve, range(len(vols)))
    # d(EEP/K)/d(F/K) = (1/(F/K))·d e/dx: the premium's contribution to delta.
    return eep, slope / np.exp(_X)[None, :, None], boundary


def _on_threads(task, items) -> None:
    """``task(item)`` for every item, on as many threads as this process has cores where it may use them (not in
    a forked worker, whose siblings use the other cores: `opl.runtime.engine.kernels.serial_only`), else here.

    The tables' solves run off the interpreter's lock (`opl.runtime.pricing.american_fd`), so a month's tables
    take about half the time on two cores; each writes its own volatility node, the same numbers as one after
    the other. The threads are joined before this returns (a fork after it copies none of them) and run in
    copies of the caller's context (its deadline)."""
    from contextvars import copy_context

    from opl.runtime.engine.kernels.base import threads_allowed

    items = list(items)
    threads = min(len(items), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    if threads < 2 or not threads_allowed():
        for item in items:
            task(item)
        return
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(copy_context().run, task, item) for item in items]
        try:
            for future in futures:
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _tables(is_call: bool, t: float, rate: float, carry: float):
    """The premium, its delta contribution (401 × 41) and the exercise boundary (41) of one expiry."""
    key = (bool(is_call), float(t), float(rate), float(carry))
    if key not in _CACHE:
        prepare_tables(*key[:1], (key[1],), *key[2:])
    _CACHE.move_to_end(key)
    return _CACHE[key]


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
        American (finite-difference tables) or European (Black) exercise.
    rate, carry
        Risk-free rate and cost of carry.
    exact
        Price American options with the finite-difference solver element by element instead of the
        tables (value, delta, gamma and the exercise boundary).
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
        if self.exact:
            value, delta, g, critical = fd_marks(is_call=is_call, underlying=forward, strike=strike, t=t, vol=vol,
                                                 rate=self.rate, carry=self.carry)
            exercise = phi * (forward - critical) >= 0
            g = g if gamma else None
        else:
            logv = np.log(vol)
            eep, d_eep, boundary = _tables(is_call, float(t), float(self.rate), float(self.carry))
            exercise = phi * (forward - strike * _linear(boundary, logv)) >= 0
            value, delta, g = _black(is_call, forward, strike, t, vol, self.rate, self.carry, gamma)
            premium, premium_delta = _bilinear((eep, d_eep), np.log(forward / strike), logv)
            value = value + strike * premium
            delta = delta + premium_delta
        value = np.where(exercise, intrinsic, np.maximum(value, intrinsic))
        delta = np.where(exercise, phi * (intrinsic > 0), delta)
        if g is not None:
            g = np.where(exercise, 0.0, g)
        return Marks(value, delta, exercise & (intrinsic > 0), g)

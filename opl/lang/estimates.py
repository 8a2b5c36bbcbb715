"""Scalar estimates from a file's own market inputs, for the checker.

The checker must not import numpy (DESIGN.md: the parser never imports numpy), yet
E301/E302 and the guards need a premium, a delta or a value at expiry. This module is
the plain-Python reference kernel: generalised Black–Scholes with cost of carry ``b``
(``b = 0``: Black-76 on futures; ``b = r``: stock without dividends), European
exercise, one option at a time. The vectorised pricer of `opl.runtime` is tested
against it.

`Market` resolves written strikes and tenors into numbers when the file gives enough
(``price``, ``iv``, ``rate``, ``time``, ``support``, ``resistance``).
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass

from opl.lang.document import Document
from opl.lang.legs import AbsoluteStrike, DateTenor, DaysTenor, DeltaStrike, Leg, RelativeStrike

DAYS_PER_YEAR = 365.0  # ACT/365F (DESIGN.md)
# Spec rc6 §1.2 (a MUST): one contract is 100 units of the underlying unless the local
# exchange's specification (the rule pack) or the file's `granularity` says otherwise.
# It applies to every leg, so `long Stock + short Option(Call, …)` stays a covered call.
DEFAULT_MULTIPLIER = 100.0


def _cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def black_price(*, is_call: bool, s: float, k: float, t: float, sigma: float, r: float, b: float) -> float:
    """Generalised Black–Scholes price; intrinsic value of the forward when t or σ is 0."""
    forward_df = math.exp((b - r) * t)
    if t <= 0 or sigma <= 0:
        forward = s * math.exp(b * t)
        intrinsic = max(forward - k, 0.0) if is_call else max(k - forward, 0.0)
        return math.exp(-r * t) * intrinsic
    root = sigma * math.sqrt(t)
    d1 = (math.log(s / k) + (b + 0.5 * sigma * sigma) * t) / root
    d2 = d1 - root
    if is_call:
        return s * forward_df * _cdf(d1) - k * math.exp(-r * t) * _cdf(d2)
    return k * math.exp(-r * t) * _cdf(-d2) - s * forward_df * _cdf(-d1)


def black_delta(*, is_call: bool, s: float, k: float, t: float, sigma: float, r: float, b: float) -> float:
    forward_df = math.exp((b - r) * t)
    if t <= 0 or sigma <= 0:
        forward = s * math.exp(b * t)
        itm = forward > k if is_call else forward < k
        return (forward_df if is_call else -forward_df) if itm else 0.0
    d1 = (math.log(s / k) + (b + 0.5 * sigma * sigma) * t) / (sigma * math.sqrt(t))
    return forward_df * (_cdf(d1) if is_call else _cdf(d1) - 1.0)


def black_vega(*, s: float, k: float, t: float, sigma: float, r: float, b: float) -> float:
    if t <= 0 or sigma <= 0:
        return 0.0
    d1 = (math.log(s / k) + (b + 0.5 * sigma * sigma) * t) / (sigma * math.sqrt(t))
    return s * math.exp((b - r) * t) * _pdf(d1) * math.sqrt(t)


def strike_for_delta(*, is_call: bool, delta: float, s: float, t: float, sigma: float, r: float,
                     b: float) -> float:
    """The strike whose option has absolute delta ``delta`` (bisection in log-strike)."""
    low, high = math.log(s) - 10 * sigma * math.sqrt(max(t, 1e-6)) - 1, math.log(s) + 10 * sigma * math.sqrt(
        max(t, 1e-6)) + 1
    for _ in range(200):
        mid = 0.5 * (low + high)
        d = abs(black_delta(is_call=is_call, s=s, k=math.exp(mid), t=t, sigma=sigma, r=r, b=b))
        # |delta| falls as the strike rises for calls and rises with the strike for puts
        if (d > delta) == is_call:
            low = mid
        else:
            high = mid
    return math.exp(0.5 * (low + high))


@dataclass(frozen=True)
class Market:
    """The market a file states, with what is missing left as None."""

    price: float | None
    iv: float | None
    rate: float
    time: _dt.date | None
    support: float | None
    resistance: float | None
    carry_on_futures: bool
    entry: float | None = None  # the underlying's price when the position was opened (W402)

    @classmethod
    def of(cls, document: Document) -> "Market":
        m = document.market
        underlying = document.underlying
        futures = underlying is not None and underlying.kind == "future"
        return cls(m.price, m.iv, m.rate or 0.0, m.time, m.support, m.resistance, futures, m.entry_price)

    @property
    def carry(self) -> float:
        return 0.0 if self.carry_on_futures else self.rate

    def years(self, leg: Leg) -> float | None:
        """Year fraction to the leg's expiry (ACT/365F), None when it cannot be known."""
        tenor = leg.tenor
        if isinstance(tenor, DaysTenor):
            return tenor.days / DAYS_PER_YEAR
        if isinstance(tenor, DateTenor) and self.time is not None:
            return (tenor.date - self.time).days / DAYS_PER_YEAR
        return None

    def strike(self, leg: Leg) -> float | None:
        """The leg's strike in price units, None when the file lacks what it needs."""
        spec = leg.strike
        if isinstance(spec, AbsoluteStrike):
            return spec.value
        if isinstance(spec, RelativeStrike):
            anchor = {"price": self.price, "support": self.support, "resistance": self.resistance}[spec.anchor]
            if anchor is None:
                return None
            return anchor * (1 + spec.offset / 100) if spec.percent else anchor + spec.offset
        if isinstance(spec, DeltaStrike):
            t = self.years(leg)
            if self.price is None or self.iv is None or t is None or t <= 0:
                return None
            return strike_for_delta(is_call=leg.option_type == "call", delta=spec.delta, s=self.price, t=t,
                                    sigma=self.iv, r=self.rate, b=self.carry)
        return None

    def premium(self, leg: Leg, s: float | None = None, t: float | None = None) -> float | None:
        """Value of one unit of an option leg (at ``s``, ``t`` when given)."""
        s = self.price if s is None else s
        k, years = self.strike(leg), self.years(leg) if t is None else t
        if s is None or self.iv is None or k is None or years is None or k <= 0:
            return None
        return black_price(is_call=leg.option_type == "call", s=s, k=k, t=max(years, 0.0), sigma=self.iv,
                           r=self.rate, b=self.carry)

    def delta(self, leg: Leg) -> float | None:
        """Delta of one long unit: ±1 for linear legs, Black delta for options."""
        if not leg.is_option:
            return leg.linear_delta
        k, years = self.strike(leg), self.years(leg)
        if self.price is None or self.iv is None or k is None or years is None or k <= 0:
            return None
        return black_delta(is_call=leg.option_type == "call", s=self.price, k=k, t=max(years, 0.0),
                           sigma=self.iv, r=self.rate, b=self.carry)

    def vega(self, leg: Leg) -> float | None:
        if not leg.is_option:
            return 0.0
        k, years = self.strike(leg), self.years(leg)
        if self.price is None or self.iv is None or k is None or years is None or k <= 0:
            return None
        return black_vega(s=self.price, k=k, t=max(years, 0.0), sigma=self.iv, r=self.rate, b=self.carry)

"""P&L profiles of a compiled strategy: at the first expiry, today, and in between.

The P&L of a leg at price S and date d is ``side × qty × multiplier × (V(S, d) −
entry price)``, with V the leg's pricer (European or BAW American, as compiled) at
the time left on date d and the compiled implied volatility; legs expiring after the
first expiry keep their time value. Breakevens are the zero crossings of the
expiry curve; maximum profit and loss are read on a grid that spans every strike
and are flagged unbounded when the position keeps gaining or losing as S rises.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - annotations only: CompiledStrategy.plot_payoff imports this module
    from opl.compiler.compiled import CompiledStrategy

GRID_POINTS = 801


@dataclass(frozen=True)
class PayoffCurves:
    prices: np.ndarray
    dates: tuple[_dt.date, ...]  # today, intermediate, first expiry
    pnl: np.ndarray  # shape (len(dates), len(prices))
    breakevens: tuple[float, ...]
    max_profit: float
    max_loss: float
    profit_unbounded: bool
    loss_unbounded: bool

    def summary(self) -> str:
        profit = "unbounded" if self.profit_unbounded else f"{self.max_profit:,.2f}"
        loss = "unbounded" if self.loss_unbounded else f"{self.max_loss:,.2f}"
        evens = ", ".join(f"{b:,.2f}" for b in self.breakevens) or "none"
        return f"at {self.dates[-1]}: max profit {profit}, max loss {loss}, breakevens {evens}"


def _values(strategy: CompiledStrategy, prices: np.ndarray, day: _dt.date) -> np.ndarray:
    from opl.runtime.pricing import american, black as pricing

    market = strategy.market
    total = np.zeros_like(prices)
    for leg in strategy.legs:
        scale = (1 if leg.side == "long" else -1) * leg.qty * leg.multiplier
        if leg.kind == "option":
            t = max((leg.expiry - day).days, 0) / 365.0
            args = dict(is_call=leg.type == "call", underlying=prices, strike=leg.strike, t=t, vol=market.iv,
                        rate=market.rate, carry=strategy.underlying.carry)
            value = american.baw_price(**args) if leg.exercise == "american" else pricing.price(**args)
            total += scale * (np.asarray(value) - leg.price)
        elif leg.kind != "cash":
            beta = leg.greeks.delta
            total += scale * beta * (prices - market.price)
    return total


def payoff_curves(strategy: CompiledStrategy, *, low: float | None = None, high: float | None = None) -> PayoffCurves:
    """P&L over a price grid today, half-way to the first expiry, and at it."""
    market = strategy.market
    strikes = [leg.strike for leg in strategy.legs if leg.strike is not None]
    low = low if low is not None else 0.7 * min(strikes + [market.price])
    high = high if high is not None else 1.3 * max(strikes + [market.price])
    prices = np.linspace(low, high, GRID_POINTS)
    expiries = [leg.expiry for leg in strategy.legs if leg.kind == "option"]
    first = min(expiries) if expiries else market.time + _dt.timedelta(days=30)
    middle = market.time + (first - market.time) / 2
    dates = (market.time, middle, first)
    pnl = np.vstack([_values(strategy, prices, day) for day in dates])
    at_expiry = pnl[-1]
    crossings = np.nonzero(np.diff(np.sign(at_expiry)) != 0)[0]
    evens = tuple(float(prices[i] - at_expiry[i] * (prices[i + 1] - prices[i]) / (at_expiry[i + 1] - at_expiry[i]))
                  for i in crossings if at_expiry[i + 1] != at_expiry[i])
    slope = _upward_slope(strategy)
    return PayoffCurves(prices, dates, pnl, evens, float(at_expiry.max()), float(-min(at_expiry.min(), 0.0)),
                        slope > 1e-12, slope < -1e-12)


def _upward_slope(strategy: CompiledStrategy) -> float:
    """d(P&L)/dS as S → ∞ at the first expiry: calls and linear legs only."""
    slope = 0.0
    for leg in strategy.legs:
        sign = (1 if leg.side == "long" else -1) * leg.qty * leg.multiplier
        if leg.kind == "option":
            slope += sign if leg.type == "call" else 0.0
        elif leg.kind != "cash":
            slope += sign * leg.greeks.delta
    return slope


def plot_payoff(strategy: CompiledStrategy, curves: PayoffCurves, path: str) -> None:
    """Draw the three curves, breakevens and the extremes to a PNG (`payoff_figure`)."""
    payoff_figure(strategy, curves).savefig(path)


def payoff_figure(strategy: CompiledStrategy, curves: PayoffCurves | None = None):
    """The three curves (today, in between, at expiry), breakevens and extremes as a matplotlib `Figure`
    (``opl payoff``'s PNG; ``curves`` default: `payoff_curves` over the default price range)."""
    from matplotlib.figure import Figure

    curves = curves if curves is not None else payoff_curves(strategy)
    fig = Figure(figsize=(9, 5.5), dpi=120)
    ax = fig.subplots()
    styles = (("today", ":", "tab:gray"), ("intermediate", "--", "tab:blue"), ("at expiry", "-", "black"))
    for (label, line, color), day, row in zip(styles, curves.dates, curves.pnl):
        ax.plot(curves.prices, row, line, color=color, lw=1.8 if label == "at expiry" else 1.3,
                label=f"{label} ({day.isoformat()})")
    ax.axhline(0, color="tab:red", lw=0.8)
    ax.axvline(strategy.market.price, color="tab:green", lw=0.8, ls="-.", label=f"price {strategy.market.price:g}")
    for b in curves.breakevens:
        ax.plot([b], [0], "o", color="tab:red", ms=6)
        ax.annotate(f"{b:,.0f}", (b, 0), textcoords="offset points", xytext=(5, -12), fontsize=8, color="tab:red")
    expiry = curves.pnl[-1]
    i_max, i_min = int(np.argmax(expiry)), int(np.argmin(expiry))
    ax.plot([curves.prices[i_max]], [expiry[i_max]], "^", color="tab:green", ms=7)
    ax.plot([curves.prices[i_min]], [expiry[i_min]], "v", color="tab:red", ms=7)
    profit = "unbounded" if curves.profit_unbounded else f"{curves.max_profit:,.0f}"
    loss = "unbounded" if curves.loss_unbounded else f"{curves.max_loss:,.0f}"
    evens = ", ".join(f"{b:,.0f}" for b in curves.breakevens) or "none"
    ax.text(0.02, 0.97, f"at expiry: max profit {profit} (▲)\nmax loss {loss} (▼)\nbreakevens {evens}",
            transform=ax.transAxes, fontsize=9, va="top",
            bbox=dict(boxstyle="round", facecolor="white", alpha=0.85, edgecolor="0.7"))
    ax.set_xlabel(f"underlying price ({strategy.underlying.symbol or strategy.underlying.kind})")
    ax.set_ylabel("P&L (currency)")
    ax.set_title(f"{strategy.source} — {len(strategy.legs)} legs, iv {strategy.market.iv:.0%}", fontsize=10)
    ax.margins(y=0.12)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig

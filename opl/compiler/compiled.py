"""`CompiledStrategy`: the resolved, priced leg set — the contract `opl compile` prints.

Units (DESIGN.md): Greeks are raw derivatives — delta ∂V/∂F, gamma ∂²V/∂F², vega
∂V/∂σ per 1.00 of volatility, theta ∂V/∂t and charm ∂Δ/∂t per year of calendar time
passing, rho ∂V/∂r. ``greeks`` are for one long unit of the underlying (premium
quoted per unit); ``position_greeks`` multiply by quantity, polarity and the
contract multiplier; ``totals`` sum the position Greeks (spec §2, local additivity).
The JSON schema is published with ``opl compile --schema``.
"""

from __future__ import annotations

import datetime as _dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

GREEK_NAMES = ("delta", "gamma", "vega", "theta", "rho", "charm")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GreekSet(_Model):
    delta: float = 0.0
    gamma: float = 0.0
    vega: float = 0.0
    theta: float = 0.0
    rho: float = 0.0
    charm: float = 0.0

    def scaled(self, factor: float) -> "GreekSet":
        return GreekSet(**{name: getattr(self, name) * factor for name in GREEK_NAMES})

    def __add__(self, other: "GreekSet") -> "GreekSet":
        return GreekSet(**{name: getattr(self, name) + getattr(other, name) for name in GREEK_NAMES})


class SourceRef(_Model):
    line: int
    column: int


class CompiledLeg(_Model):
    """One resolved leg."""

    index: int = Field(description="1-based position in normalised order (what `scale_qty(leg=...)` names)")
    side: Literal["long", "short"]
    qty: int = Field(gt=0)
    kind: Literal["option", "stock", "etf", "future", "cash", "leveraged_etf"]
    type: Literal["call", "put"] | None = None
    strike: float | None = None
    strike_spec: str | None = Field(None, description="the strike as written: `support-100`, `delta(0.25)`, ...")
    expiry: _dt.date | None = None
    tenor_days: float | None = Field(None, description="calendar days from `time` to expiry (ACT/365F × 365)")
    multiplier: float
    exercise: Literal["american", "european"] | None = None
    price: float = Field(description="value of one long unit, in price units")
    greeks: GreekSet
    position_greeks: GreekSet
    origin: str | None = Field(None, description="the template the leg came from")
    source: SourceRef | None = None


class MarketState(_Model):
    price: float
    iv: float
    rate: float
    time: _dt.date
    support: float | None = None
    resistance: float | None = None


class UnderlyingInfo(_Model):
    kind: Literal["stock", "etf", "future", "leveraged_etf"]
    symbol: str | None = None
    exchange: str | None = None
    expiry: _dt.date | None = None
    carry: float = Field(description="cost of carry b: 0 for futures, r for a stock without dividends")
    rule_pack: str | None = None


class Totals(GreekSet):
    premium: float = Field(0.0, description="net premium paid (+) or received (−), in currency")
    margin: float | None = Field(None, description="exchange margin of the position at the rule pack's rates, "
                                 "its combinations applied (a short strangle margined as one position)")
    margin_per_leg: float | None = Field(None, description="the same with every short leg margined alone")


class CompiledStrategy(_Model):
    """A strategy ready for pricing, payoff plots and simulation."""

    source: str
    opl_version: str | None = None
    underlying: UnderlyingInfo
    market: MarketState
    legs: tuple[CompiledLeg, ...]
    totals: Totals
    warnings: tuple[str, ...] = Field((), description="the checker's warnings, `CODE line:col message`")
    notes: tuple[str, ...] = Field((), description="what the compiler chose that the file does not say: the "
                                   "evaluation date when the file has no `time`, legs built from the intent, a "
                                   "tenor in days priced to the listed expiry nearest it")

    def leg_table(self) -> list[dict]:
        """Rows for people: vega per 1% of volatility and theta/charm per calendar day, labelled."""
        rows = []
        for leg in self.legs:
            g = leg.position_greeks
            rows.append({"#": leg.index, "side": leg.side, "qty": leg.qty,
                         "instrument": leg.type or leg.kind, "strike": leg.strike, "expiry": leg.expiry,
                         "days": leg.tenor_days, "mult": leg.multiplier, "price": leg.price,
                         "delta": g.delta, "gamma": g.gamma, "vega/1%": g.vega / 100,
                         "theta/day": g.theta / 365, "rho/1%": g.rho / 100, "charm/day": g.charm / 365})
        return rows

    def to_dict(self) -> dict:
        """The ``opl compile --format json`` document as a dict."""
        return self.model_dump(mode="json")

    def to_frame(self):
        """Per-leg Greeks as a pandas DataFrame (`leg_table`'s rows, indexed by leg number)."""
        import pandas as pd

        return pd.DataFrame(self.leg_table()).set_index("#")

    def plot_payoff(self, *, low: float | None = None, high: float | None = None):
        """The P&L profile today, in between and at expiry (a matplotlib Figure; ``opl payoff``'s PNG)."""
        from opl.compiler.payoff import payoff_curves, payoff_figure

        return payoff_figure(self, payoff_curves(self, low=low, high=high))

    def _repr_html_(self) -> str:
        import html

        table = self.to_frame().to_html(float_format=lambda v: f"{v:.4g}", na_rep="—")
        return f"<p>{html.escape(self.source)}: {html.escape(self.summary())}</p>\n{table}"

    def summary(self) -> str:
        """A one-paragraph plain-text summary."""
        t = self.totals
        kind = "debit" if t.premium > 0 else "credit"
        return (f"{len(self.legs)} legs on {self.underlying.symbol or self.underlying.kind} at {self.market.price:g} "
                f"(iv {self.market.iv:.0%}): net {kind} {abs(t.premium):,.2f}; delta {t.delta:+.4g}, "
                f"gamma {t.gamma:+.4g}, vega {t.vega / 100:+.4g} per 1%, theta {t.theta / 365:+.4g} per day")

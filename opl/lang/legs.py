"""Legs and leg expressions: what a strategy ``S = ...`` means, before any pricing.

A leg expression (``LegExpr``) is the tree the file wrote — sums, quantities,
polarities, template calls. ``opl.lang.normalise`` flattens it into ``Leg`` values (spec
§8.2); ``opl.lang.templates`` expands template calls on the way.

Strikes and tenors keep the form they were written in (``StrikeSpec``, ``TenorSpec``):
absolute, relative to the market (``ATM+5%``, rc6 ``+5%``), anchored on the spot
team's levels (``support-100``) or by delta (``delta(0.25)``). Resolving them needs
market data and belongs to the compiler.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field, replace
from typing import Literal, Union

from opl.lang.source import UNKNOWN_SPAN, Span

Kind = Literal["option", "stock", "etf", "future", "cash", "leveraged_etf"]
OptionType = Literal["call", "put"]
Anchor = Literal["price", "support", "resistance"]

LINEAR_KINDS: tuple[Kind, ...] = ("stock", "etf", "future", "cash", "leveraged_etf")


def _pos():
    return field(default=UNKNOWN_SPAN, compare=False, repr=False)


# --------------------------------------------------------------------------- strikes


@dataclass(frozen=True, slots=True)
class AbsoluteStrike:
    value: float

    def __str__(self) -> str:
        return number_text(self.value)


@dataclass(frozen=True, slots=True)
class RelativeStrike:
    """``ATM+5%`` / rc6 ``+5%`` (anchor price), ``support-100``, ``resistance+2%``."""

    anchor: Anchor
    offset: float  # in price units, or in percent when ``percent``
    percent: bool

    def __str__(self) -> str:
        head = {"price": "ATM", "support": "support", "resistance": "resistance"}[self.anchor]
        if self.offset == 0:
            return head
        sign = "+" if self.offset > 0 else "-"
        body = number_text(abs(self.offset)) + ("%" if self.percent else "")
        return f"{head}{sign}{body}"


@dataclass(frozen=True, slots=True)
class DeltaStrike:
    """``delta(0.25)``: the strike whose option has this absolute delta."""

    delta: float

    def __str__(self) -> str:
        return f"delta({number_text(self.delta)})"


StrikeSpec = Union[AbsoluteStrike, RelativeStrike, DeltaStrike]


# --------------------------------------------------------------------------- tenors


@dataclass(frozen=True, slots=True)
class DaysTenor:
    """``30d`` (calendar days from the file's ``time``); ``relative`` for rc6 ``+30d``."""

    days: float
    relative: bool = False

    def __str__(self) -> str:
        return ("+" if self.relative else "") + number_text(self.days) + "d"


@dataclass(frozen=True, slots=True)
class DateTenor:
    """An explicit expiry date."""

    date: _dt.date

    def __str__(self) -> str:
        return self.date.isoformat()


TenorSpec = Union[DaysTenor, DateTenor]


# --------------------------------------------------------------------------- legs


@dataclass(frozen=True, slots=True)
class Leg:
    """One normalised leg. ``qty`` is a count of lots (contracts); ``side`` its polarity.

    ``origin`` names the template call that produced the leg (None when written out);
    ``span`` points at the primitive or at the template call.
    """

    kind: Kind
    side: Literal[1, -1]
    qty: int
    option_type: OptionType | None = None
    strike: StrikeSpec | None = None
    tenor: TenorSpec | None = None
    expiry: _dt.date | None = None  # futures legs: Future(2026-05-15)
    beta: float | None = None  # leveraged ETF legs
    origin: str | None = field(default=None, compare=False)
    span: Span = _pos()

    @property
    def signed_qty(self) -> int:
        return self.side * self.qty

    @property
    def is_option(self) -> bool:
        return self.kind == "option"

    @property
    def linear_delta(self) -> float:
        """Delta of one long unit of a linear leg: 0 for cash, β for a leveraged ETF, else 1."""
        if self.kind == "cash":
            return 0.0
        return (self.beta or 1.0) if self.kind == "leveraged_etf" else 1.0

    def identity(self) -> tuple:
        """What makes two legs "the same leg" for merging (everything but side/qty)."""
        return (self.kind, self.option_type, self.strike, self.tenor, self.expiry, self.beta)

    def with_(self, **changes) -> "Leg":
        return replace(self, **changes)

    def __str__(self) -> str:
        side = "long" if self.side > 0 else "short"
        qty = f"{self.qty}×" if self.qty != 1 else ""
        return f"{qty}{side} {primitive_text(self)}"


def primitive_text(leg: Leg) -> str:
    """The primitive of a leg in OPL-Lang syntax."""
    if leg.kind == "option":
        return f"Option({leg.option_type.capitalize()}, {leg.strike}, {leg.tenor})"
    if leg.kind == "future":
        return f"Future({leg.expiry.isoformat()})" if leg.expiry else "Future"
    if leg.kind == "leveraged_etf":
        return f"LeveragedETF{{{number_text(leg.beta or 1)}}}"
    return {"stock": "Stock", "etf": "ETF", "cash": "Cash"}[leg.kind]


# --------------------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True)
class LegTerm:
    """A written primitive: a `Leg` template with side +1 and qty 1 before scaling."""

    leg: Leg
    span: Span = _pos()


@dataclass(frozen=True, slots=True)
class TemplateCall:
    """A call of the template library, e.g. ``Condor(Call, K1=480, K2=520, T=30d)``, its arguments read.

    ``signature`` indexes the template's signatures (`opl.lang.templates.TEMPLATES`); ``arguments``
    are the typed values (strike and tenor specs, option types, counts) by parameter name.
    """

    name: str
    signature: int
    arguments: tuple[tuple[str, object], ...]
    span: Span = _pos()


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to another named leg expression of the file."""

    name: str
    span: Span = _pos()


@dataclass(frozen=True, slots=True)
class Scaled:
    """``n × expr``; ``side`` −1 for ``short expr`` and for subtracted terms."""

    qty: int
    side: Literal[1, -1]
    expr: "LegExpr"
    span: Span = _pos()


@dataclass(frozen=True, slots=True)
class LegSum:
    terms: tuple["LegExpr", ...]
    span: Span = _pos()


LegExpr = Union[LegTerm, TemplateCall, Ref, Scaled, LegSum]


def number_text(value: float) -> str:
    """Shortest faithful text of a number: 480 not 480.0, 0.25 not 0.250."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))

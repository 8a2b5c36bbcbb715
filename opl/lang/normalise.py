"""Normalisation (spec §8.2): leg expression → flat, merged, sorted legs.

    legs = flatten_parentheses(S)        # refs, templates, quantities and polarities
    legs = merge_same_legs(legs)         # same instrument: signed quantities add up
    legs = filter(qty ≠ 0)               # reported as I305, never dropped silently
    legs = sort_by((underlying, strike, expiry, type, polarity))

The result does not depend on the order the legs were written in, and normalising an
already normalised leg set returns it unchanged (both are property-tested). Only the
spans and ``origin`` of merged legs (those of the first occurrence) depend on order;
they are excluded from leg equality.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from opl.lang import limits
from opl.lang.diagnostics import DiagnosticSink
from opl.lang.legs import (
    AbsoluteStrike,
    DateTenor,
    DaysTenor,
    DeltaStrike,
    Leg,
    LegExpr,
    LegSum,
    LegTerm,
    Ref,
    RelativeStrike,
    Scaled,
    TemplateCall,
)
from opl.lang.source import UNKNOWN_SPAN, Span
from opl.lang.templates import build_legs



@dataclass(frozen=True)
class Normalised:
    """The normalised legs, and the legs that cancelled out (reported as I305)."""

    legs: tuple[Leg, ...]
    cancelled: tuple[Leg, ...] = ()


class _TooMany(Exception):
    """Flattening stopped: the leg count or nesting passed a limit (already reported)."""


class _Flattener:
    def __init__(self, definitions: dict[str, LegExpr], sink: DiagnosticSink, linear_kind: str) -> None:
        self.definitions = definitions
        self.sink = sink
        self.linear_kind = linear_kind
        self.out: list[Leg] = []
        self.failed = False

    def run(self, expr: LegExpr) -> list[Leg]:
        try:
            self.visit(expr, 1, 1, (), 0)
        except _TooMany:
            self.failed = True
        return self.out

    def visit(self, expr: LegExpr, qty: int, side: int, active: tuple[str, ...], depth: int) -> None:
        if depth > limits.MAX_DEPTH:
            self.sink.emit("E009", "leg expression nested too deeply (through named strategies)",
                           getattr(expr, "span", UNKNOWN_SPAN), "too deep")
            raise _TooMany
        if isinstance(expr, LegTerm):
            self.add(expr.leg, qty, side)
        elif isinstance(expr, Scaled):
            self.visit(expr.expr, self.scale(qty, expr.qty, expr.span), side * expr.side, active, depth + 1)
        elif isinstance(expr, LegSum):
            for term in expr.terms:
                self.visit(term, qty, side, active, depth + 1)
        elif isinstance(expr, Ref):
            self.ref(expr, qty, side, active, depth)
        elif isinstance(expr, TemplateCall):
            self.template(expr, qty, side)
        else:  # pragma: no cover - the lowering stage builds only the types above
            raise TypeError(f"not a leg expression: {expr!r}")

    def ref(self, expr: Ref, qty: int, side: int, active: tuple[str, ...], depth: int) -> None:
        if expr.name in active:
            cycle = " → ".join(active[active.index(expr.name):] + (expr.name,))
            self.sink.emit("E208", f"strategy `{expr.name}` refers to itself: {cycle}", expr.span,
                           "circular reference", help="define each name from primitives or earlier names")
            self.failed = True
            return
        if expr.name not in self.definitions:  # lowering reported it (E101)
            self.failed = True
            return
        self.visit(self.definitions[expr.name], qty, side, active + (expr.name,), depth + 1)

    def template(self, expr: TemplateCall, qty: int, side: int) -> None:
        for leg in build_legs(expr, self.linear_kind):
            self.add(leg, qty, side)

    def scale(self, qty: int, factor: int, span: Span) -> int:
        product = qty * factor
        if product > limits.MAX_QTY:
            self.sink.emit("E012", f"quantity {product} (after multiplying nested quantities) is above the "
                           f"limit of {limits.MAX_QTY}", span, "too large")
            raise _TooMany
        return product

    def add(self, leg: Leg, qty: int, side: int) -> None:
        if len(self.out) >= limits.MAX_LEGS:
            self.sink.emit("E010", f"the strategy expands to more than {limits.MAX_LEGS} legs", leg.span,
                           "too many legs", help="use quantities (`3×short Option(...)`) instead of repeated legs")
            raise _TooMany
        self.out.append(leg.with_(qty=self.scale(qty, leg.qty, leg.span), side=side * leg.side))


def normalise(expr: LegExpr, definitions: dict[str, LegExpr] | None = None, sink: DiagnosticSink | None = None,
              *, linear_kind: str = "stock") -> Normalised:
    """Normalise a leg expression (spec §8.2).

    Parameters
    ----------
    expr
        The strategy's leg expression.
    definitions
        The file's named leg expressions, for `Ref` nodes.
    sink
        Receives E009/E010/E012/E208 and the I305 note (template arguments were read,
        and reported, when the file was lowered).
    linear_kind
        The kind of the underlying leg of Collar, CoveredCall and ProtectivePut.

    Returns
    -------
    Normalised
        Empty legs when flattening failed (the reason is in the sink).
    """
    sink = DiagnosticSink() if sink is None else sink
    flattener = _Flattener(definitions or {}, sink, linear_kind)
    flat = flattener.run(expr)
    if flattener.failed:
        return Normalised(())
    legs, cancelled = merge(flat)
    too_large = [leg for leg in legs if leg.qty > limits.MAX_QTY]
    for leg in too_large:
        sink.emit("E012", f"merged quantity {leg.qty} of `{leg}` is above the limit of {limits.MAX_QTY}",
                  leg.span, "too large")
    if too_large:
        return Normalised(())
    for leg in cancelled:
        sink.emit("I305", f"{_identity_text(leg)} cancel out",
                  leg.span, "cancelled", notes=("the leg is dropped from the normalised strategy",))
    return Normalised(tuple(sorted(legs, key=sort_key)), tuple(cancelled))


def normalise_legs(legs: Iterable[Leg]) -> Normalised:
    """Merge and sort legs that are already flat (the second half of §8.2)."""
    merged, cancelled = merge(list(legs))
    return Normalised(tuple(sorted(merged, key=sort_key)), tuple(cancelled))


def merge(legs: list[Leg]) -> tuple[list[Leg], list[Leg]]:
    """Add up the signed quantities of identical legs; return (kept, cancelled).

    A cancelled leg is returned once per instrument, with the span of its first
    occurrence and the gross quantity that cancelled.
    """
    groups: dict[tuple, list[Leg]] = {}
    for leg in legs:
        groups.setdefault(leg.identity(), []).append(leg)
    kept, cancelled = [], []
    for group in groups.values():
        net = sum(leg.signed_qty for leg in group)
        first = group[0]
        origins = {leg.origin for leg in group}
        origin = first.origin if len(origins) == 1 else None
        if net == 0:
            gross = sum(leg.qty for leg in group if leg.side > 0)
            cancelled.append(first.with_(qty=gross, side=1, origin=origin))
        else:
            kept.append(first.with_(qty=abs(net), side=1 if net > 0 else -1, origin=origin))
    return kept, cancelled


def _identity_text(leg: Leg) -> str:
    from opl.lang.legs import primitive_text

    qty = f"{leg.qty}×" if leg.qty != 1 else ""
    return f"`{qty}long {primitive_text(leg)}` and `{qty}short {primitive_text(leg)}`"


# --------------------------------------------------------------------------- ordering

_KIND_RANK = {"cash": 0, "stock": 1, "etf": 2, "leveraged_etf": 3, "future": 4, "option": 5}


def _strike_key(strike) -> tuple:
    if strike is None:
        return (0,)
    if isinstance(strike, AbsoluteStrike):
        return (1, "", strike.value, False)
    if isinstance(strike, RelativeStrike):
        return (2, strike.anchor, strike.offset, strike.percent)
    if isinstance(strike, DeltaStrike):
        return (3, "", strike.delta, False)
    raise TypeError(strike)  # pragma: no cover


def _expiry_key(leg: Leg) -> tuple:
    tenor = leg.tenor
    if isinstance(tenor, DaysTenor):
        return (1, tenor.relative, tenor.days)
    if isinstance(tenor, DateTenor):
        return (2, False, tenor.date.toordinal())
    if leg.expiry is not None:
        return (2, False, leg.expiry.toordinal())
    return (0, False, 0)


def sort_key(leg: Leg) -> tuple:
    """The §8.2 order: underlying, strike, expiry, type, polarity (then the rest, for totality)."""
    return (_KIND_RANK[leg.kind], leg.beta or 0.0, _strike_key(leg.strike), _expiry_key(leg),
            leg.option_type or "", leg.side, leg.qty)



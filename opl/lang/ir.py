"""The typed meaning of a file's rules: conditions, triggers, actions, stop rules, hypotheses.

`opl.lang.lower` builds these from the syntax tree once, after validating them against
`opl.lang.vocabulary`; every later stage (checks, the simulator's rule builders, the loop, the
runtime's condition forms) reads them and never the syntax tree (`opl.lang.ast`). Each value is
frozen and keeps the span of the text it came from, so later stages still point at the file.

Literals carry their unit: ``2d`` is ``Quantity(2, "days")``, ``10%`` is
``Quantity(10, "percent")`` (percent units, as grammar/README.md writes conditions), ``x3`` is
``Quantity(3, "factor")``. A call's arguments are bound to the parameter names of its
signature (`opl.lang.vocabulary`), whichever way they were written (``roll(1, 60d)`` and
``roll(to=60d, leg=1)`` lower to the same `Call`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator, Literal, Union

from opl.lang.source import UNKNOWN_SPAN, Span

if TYPE_CHECKING:  # pragma: no cover
    from opl.lang.deltaband import DeltaBandSpec
    from opl.lang.legs import LegExpr

CompareOp = Literal["<", ">", "<=", ">=", "==", "!="]
Unit = Literal["number", "percent", "days", "factor"]


def _pos():
    return field(default=UNKNOWN_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Quantity:
    """A literal: ``value`` in ``unit`` (percent units for percentages, calendar days for tenors)."""

    value: float
    unit: Unit = "number"
    span: Span = _pos()

    @property
    def percent(self) -> bool:
        return self.unit == "percent"


@dataclass(frozen=True, slots=True)
class Word:
    """A bare name as an argument: ``delta``, ``auto``, ``sharpe``."""

    name: str
    span: Span = _pos()


@dataclass(frozen=True, slots=True)
class UnitMark:
    """The bare ``%`` of ``additional_margin(%)``: "measured in percent"."""

    span: Span = _pos()


@dataclass(frozen=True, slots=True)
class Bound:
    """The open comparison of a measuring trigger: ``pnl_percent(<-25%)`` → ``Bound("<", -25 %)``."""

    op: CompareOp
    value: Quantity
    span: Span = _pos()


@dataclass(frozen=True, slots=True)
class LegArgument:
    """The leg an action opens (``add_leg(long Option(Put, 9500, 30d))``), lowered like ``S = ...``."""

    expr: "LegExpr"
    span: Span = _pos()


Argument = Union[Quantity, Word, UnitMark, Bound, LegArgument]


@dataclass(frozen=True, slots=True)
class Call:
    """A trigger, action, stop rule or hypothesis, its arguments bound to parameter names in order."""

    name: str
    arguments: tuple[tuple[str, Argument], ...] = ()
    span: Span = _pos()
    name_span: Span = _pos()

    def get(self, name: str) -> Argument | None:
        """The argument bound to parameter ``name`` (None when not written)."""
        return next((value for key, value in self.arguments if key == name), None)

    def quantity(self, name: str) -> Quantity | None:
        """The argument ``name`` when it is a literal (None when absent or of another kind)."""
        value = self.get(name)
        return value if isinstance(value, Quantity) else None


@dataclass(frozen=True, slots=True)
class DeltaBand:
    """The ``delta_band(...)`` exit trigger with its arguments read (`opl.lang.deltaband`)."""

    spec: "DeltaBandSpec"
    span: Span = _pos()
    name: str = field(default="delta_band", init=False)


@dataclass(frozen=True, slots=True)
class Variable:
    """A variable in a comparison: ``days_left``, ``strike_offset``, a target metric."""

    name: str
    span: Span = _pos()


Operand = Union[Quantity, Variable, Call]


@dataclass(frozen=True, slots=True)
class Compare:
    """``left op right``: ``days_left < 2d``, ``additional_margin(%) > 15``."""

    op: CompareOp
    left: Operand
    right: Operand
    span: Span = _pos()


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: Literal["and", "or"]
    left: "Condition"
    right: "Condition"
    span: Span = _pos()


@dataclass(frozen=True, slots=True)
class Not:
    operand: "Condition"
    span: Span = _pos()


Condition = Union[BoolOp, Not, Compare, Call, DeltaBand]


def walk(node) -> Iterator[object]:
    """``node`` and every condition, operand and argument below it, depth first."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current is None:
            continue
        yield current
        if isinstance(current, BoolOp):
            stack.extend((current.right, current.left))
        elif isinstance(current, Not):
            stack.append(current.operand)
        elif isinstance(current, Compare):
            stack.extend((current.right, current.left))
        elif isinstance(current, Call):
            stack.extend(value for _, value in reversed(current.arguments))
        elif isinstance(current, Bound):
            stack.append(current.value)


def calls(node, name: str) -> list[Call | DeltaBand]:
    """Every trigger call named ``name`` in a condition."""
    return [n for n in walk(node) if isinstance(n, (Call, DeltaBand)) and n.name == name]


def clauses(condition: Condition, op: Literal["and", "or"] = "and") -> list[Condition]:
    """The ``op``-joined clauses of a condition, left to right (``a and b and c`` → [a, b, c])."""
    if isinstance(condition, BoolOp) and condition.op == op:
        return clauses(condition.left, op) + clauses(condition.right, op)
    return [condition]

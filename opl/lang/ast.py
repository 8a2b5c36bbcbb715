"""The syntax tree of an OPL-Lang file: small frozen dataclasses, each with its span.

This is the tree the grammar produces (opl/lang/parser.py), before any meaning is given to
field names. Equality ignores spans and source spellings (``Number.text``), so
``parse(fmt(x)) == x`` compares structure and values only.

Values
    Number, Percent, Duration, Date, String, Name, Factor, VolDir, UnitPlaceholder,
    Call (with Kwarg), Braced, ListValue, Paren, Unary, Polarity, Binary, BoolOp, Not,
    Compare, Seq.
Statements
    Header, Binding (``name = v``), Append (``name += v``), Field (``name v``),
    Block (``name { ... }``).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Literal, Union

from opl.lang.source import UNKNOWN_SPAN, Span



def _pos():
    """A span field: not part of equality, so re-parsing formatted text compares equal."""
    return field(default=UNKNOWN_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Number:
    value: float
    text: str = field(default="", compare=False, repr=False)
    span: Span = _pos()


@dataclass(frozen=True, slots=True)
class Percent:
    """``40%``: ``value`` is in percent units (40.0)."""

    value: float
    text: str = field(default="", compare=False, repr=False)
    span: Span = _pos()


@dataclass(frozen=True, slots=True)
class Duration:
    """``30d``, ``2w``, ``1y``, ``5bd`` (business days)."""

    amount: float
    unit: Literal["d", "w", "y", "bd"]
    span: Span = _pos()

    @property
    def days(self) -> float:
        return self.amount * {"d": 1, "w": 7, "y": 365, "bd": 1}[self.unit]


@dataclass(frozen=True, slots=True)
class Date:
    value: _dt.date
    span: Span = _pos()


@dataclass(frozen=True, slots=True)
class String:
    value: str
    span: Span = _pos()


@dataclass(frozen=True, slots=True)
class Name:
    id: str
    span: Span = _pos()


@dataclass(frozen=True, slots=True)
class Factor:
    """``x3`` or ``×3``: a multiplicative factor (``slippage(x3)``)."""

    value: float
    span: Span = _pos()


@dataclass(frozen=True, slots=True)
class VolDir:
    """``↑IV``, ``↓IV`` or ``=IV`` (spec §3.2 ``vol_intent``)."""

    direction: Literal["up", "down", "flat"]
    span: Span = _pos()


@dataclass(frozen=True, slots=True)
class UnitPlaceholder:
    """A bare ``%`` as in ``additional_margin(%)``: "measured in percent"."""

    span: Span = _pos()


@dataclass(frozen=True, slots=True)
class Kwarg:
    name: str
    value: "Value"
    span: Span = _pos()
    name_span: Span = _pos()


@dataclass(frozen=True, slots=True)
class Call:
    func: str
    args: tuple["Value | Kwarg", ...]
    span: Span = _pos()
    func_span: Span = _pos()

    @property
    def positional(self) -> tuple["Value", ...]:
        return tuple(a for a in self.args if not isinstance(a, Kwarg))

    @property
    def keywords(self) -> dict[str, "Kwarg"]:
        return {a.name: a for a in self.args if isinstance(a, Kwarg)}


@dataclass(frozen=True, slots=True)
class Braced:
    """``LeveragedETF{3}``."""

    name: str
    value: "Value"
    span: Span = _pos()
    name_span: Span = _pos()


@dataclass(frozen=True, slots=True)
class ListValue:
    items: tuple["Value", ...]
    span: Span = _pos()


@dataclass(frozen=True, slots=True)
class Paren:
    value: "Value"
    span: Span = _pos()


@dataclass(frozen=True, slots=True)
class Unary:
    """An explicit sign: ``-3%``, ``+5%`` (rc6 relative strike), ``+30d``."""

    op: Literal["+", "-"]
    operand: "Value"
    span: Span = _pos()


@dataclass(frozen=True, slots=True)
class Polarity:
    """``long X`` / ``short X``."""

    side: Literal["long", "short"]
    operand: "Value"
    span: Span = _pos()
    side_span: Span = _pos()


@dataclass(frozen=True, slots=True)
class Binary:
    """Arithmetic: ``+``, ``-``, ``×`` (also written ``x`` and ``*``) and ``/``."""

    op: Literal["+", "-", "×", "/"]
    left: "Value"
    right: "Value"
    span: Span = _pos()
    op_span: Span = _pos()


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: Literal["and", "or"]
    left: "Value"
    right: "Value"
    span: Span = _pos()


@dataclass(frozen=True, slots=True)
class Not:
    operand: "Value"
    span: Span = _pos()


@dataclass(frozen=True, slots=True)
class Compare:
    """``a < b``; ``left`` is None in the open form ``(<2d)`` of trigger arguments."""

    op: Literal["<", ">", "<=", ">=", "==", "!="]
    left: "Value | None"
    right: "Value"
    span: Span = _pos()


@dataclass(frozen=True, slots=True)
class Seq:
    """Juxtaposed values: ``delta with Future every 1d`` or ``1500 USD``."""

    items: tuple["Value", ...]
    span: Span = _pos()


Value = Union[
    Number, Percent, Duration, Date, String, Name, Factor, VolDir, UnitPlaceholder,
    Call, Braced, ListValue, Paren, Unary, Polarity, Binary, BoolOp, Not, Compare, Seq,
]


@dataclass(frozen=True, slots=True)
class Header:
    version: str | None
    span: Span = _pos()


@dataclass(frozen=True, slots=True)
class Binding:
    """``name = value``: a strategy definition or an rc6-style field."""

    name: str
    value: Value
    span: Span = _pos()
    name_span: Span = _pos()


@dataclass(frozen=True, slots=True)
class Append:
    """``name += value`` (``exit_triggers += days_left < 2d``)."""

    name: str
    value: Value
    span: Span = _pos()
    name_span: Span = _pos()


@dataclass(frozen=True, slots=True)
class Field:
    """``name value`` — the value is None when the line holds the name alone."""

    name: str
    value: Value | None
    span: Span = _pos()
    name_span: Span = _pos()


@dataclass(frozen=True, slots=True)
class Block:
    """``name { statements }`` (the ``experiment`` block)."""

    name: str
    body: tuple["Statement", ...]
    span: Span = _pos()
    name_span: Span = _pos()


Statement = Union[Header, Binding, Append, Field, Block]


@dataclass(frozen=True, slots=True)
class Comment:
    text: str
    line: int
    trailing: bool  # after code on the same line


@dataclass(frozen=True)
class Module:
    """A parsed file: its statements in order, and its comments for the formatter."""

    statements: tuple[Statement, ...]
    comments: tuple[Comment, ...] = field(default=(), compare=False)


def walk(node: object):
    """Yield ``node`` and every value/statement below it, depth first."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current is None:
            continue
        yield current
        if isinstance(current, Module):
            stack.extend(reversed(current.statements))
        elif isinstance(current, Block):
            stack.extend(reversed(current.body))
        elif isinstance(current, (Binding, Append, Kwarg, Braced, Paren)):
            stack.append(current.value)
        elif isinstance(current, Field):
            stack.append(current.value)
        elif isinstance(current, Call):
            stack.extend(reversed(current.args))
        elif isinstance(current, (ListValue, Seq)):
            stack.extend(reversed(current.items))
        elif isinstance(current, (Unary, Polarity, Not)):
            stack.append(current.operand)
        elif isinstance(current, (Binary, BoolOp)):
            stack.extend((current.right, current.left))
        elif isinstance(current, Compare):
            stack.extend((current.right, current.left))

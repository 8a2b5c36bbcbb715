"""What each argument kind of the vocabularies accepts, checked where the argument is written.

`opl.lang.vocabulary` declares a kind for every parameter of a trigger, action or stop
condition; the lowerer checks each argument against this table, so `scale_qty(1,
2030-01-01)` or `pnl_percent(<"abc")` is a located E104 at `opl check` — the stage an
LLM repairs its file against — rather than a failure inside `opl simulate`.
Numpy-free, like the rest of the checker.
"""

from __future__ import annotations

from typing import Callable

from opl.lang import ast
from opl.lang.literals import quantity
from opl.lang.vocabulary import ArgKind


def _inner(value: ast.Value) -> ast.Value:
    while isinstance(value, ast.Paren):
        value = value.value
    return value


def _is_number(value: ast.Value) -> bool:
    inner = _inner(value)
    while isinstance(inner, ast.Unary):
        inner = _inner(inner.operand)
    return isinstance(inner, ast.Number)


def _is_percent_or_number(value: ast.Value) -> bool:
    inner = _inner(value)
    while isinstance(inner, ast.Unary):
        inner = _inner(inner.operand)
    return isinstance(inner, (ast.Number, ast.Percent))


def _is_tenor(value: ast.Value) -> bool:
    inner = _inner(value)
    while isinstance(inner, ast.Unary):
        inner = _inner(inner.operand)
    return isinstance(inner, (ast.Number, ast.Duration))


def _is_open_comparison(value: ast.Value) -> bool:
    inner = _inner(value)
    return isinstance(inner, ast.Compare) and inner.left is None and quantity(inner.right) is not None


def _is_name(value: ast.Value) -> bool:
    return isinstance(_inner(value), ast.Name)


def _is_unit(value: ast.Value) -> bool:
    return isinstance(_inner(value), (ast.UnitPlaceholder, ast.Name))


# kind → (accepts, what it expects, an example for the help line)
KINDS: dict[ArgKind, tuple[Callable[[ast.Value], bool], str, str]] = {
    "number": (_is_number, "a number", "2"),
    "percent": (_is_percent_or_number, "a percentage or a number", "10%"),
    "tenor": (_is_tenor, "a number of days", "30d"),
    "compare": (_is_open_comparison, "an open comparison with a number, percentage or days", "<-25%"),
    "name": (_is_name, "a name", "delta"),
    "unit": (_is_unit, "a unit", "%"),
    "any": (lambda value: True, "anything", ""),
}


def mismatch(kind: ArgKind, value: ast.Value) -> tuple[str, str] | None:
    """(what was expected, an example) when ``value`` is not of ``kind``; None when it is."""
    accepts, expected, example = KINDS[kind]
    return None if accepts(value) else (expected, example)

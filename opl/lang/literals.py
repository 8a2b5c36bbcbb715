"""Reading literal syntax values: parentheses removed, signed numbers and percentages, what a value is.

Shared by the lowering stage (`opl.lang.lower`, `opl.lang.fields`, `opl.lang.templates`); a module of its
own so those import it rather than each other.
"""

from __future__ import annotations

from opl.lang import ast


def unwrap(value: ast.Value) -> ast.Value:
    """The value inside any number of parentheses."""
    while isinstance(value, ast.Paren):
        value = value.value
    return value


def signed_number(value: ast.Value) -> float | None:
    """A plain number, with an optional sign; None when it is anything else."""
    value = unwrap(value)
    if isinstance(value, ast.Number):
        return value.value
    if isinstance(value, ast.Unary):
        inner = signed_number(value.operand)
        if inner is not None:
            return -inner if value.op == "-" else inner
    return None


def signed_percent(value: ast.Value) -> float | None:
    """A percentage in percent units (``-3%`` → −3.0); None when it is not one."""
    value = unwrap(value)
    if isinstance(value, ast.Percent):
        return value.value
    if isinstance(value, ast.Unary):
        inner = signed_percent(value.operand)
        if inner is not None:
            return -inner if value.op == "-" else inner
    return None


def kind_of(value: ast.Value) -> str:
    """What a value is, for messages: "a number", "a tenor", "a call" ..."""
    value = unwrap(value)
    if isinstance(value, ast.Unary):
        return kind_of(value.operand)
    return {
        ast.Number: "a number", ast.Percent: "a percentage", ast.Duration: "a tenor", ast.Date: "a date",
        ast.String: "a string", ast.Name: "a name", ast.Call: "a call", ast.ListValue: "a list",
        ast.Compare: "a comparison", ast.BoolOp: "a condition", ast.Polarity: "a leg",
        ast.Seq: "several values", ast.Factor: "a factor", ast.VolDir: "a volatility direction",
    }.get(type(value), "an expression")


def quantity(value: ast.Value) -> float | None:
    """A literal operand in the units of the condition variables: days, percent or a plain number."""
    found = literal(value)
    return None if found is None or found[1] == "factor" else found[0]


def literal(value: ast.Value) -> tuple[float, str] | None:
    """(value, unit) of a literal — ``2d`` → (2, "days"), ``-10%`` → (−10, "percent"), ``x3`` →
    (3, "factor"), ``7`` → (7, "number"); None when the value is not a literal."""
    value = unwrap(value)
    if isinstance(value, ast.Unary):
        inner = literal(value.operand)
        return None if inner is None else ((-inner[0] if value.op == "-" else inner[0]), inner[1])
    if isinstance(value, ast.Number):
        return value.value, "number"
    if isinstance(value, ast.Percent):
        return value.value, "percent"
    if isinstance(value, ast.Duration):
        return value.days, "days"
    if isinstance(value, ast.Factor):
        return value.value, "factor"
    return None

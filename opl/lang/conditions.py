"""Evaluating a condition (guards, triggers) against known scalar values.

Units follow grammar/README.md: days for ``days_left`` (``2d`` → 2), percent for
percentages (``10%`` → 10, ``+25%`` → 25). A condition that mentions a variable the
environment does not hold evaluates to None ("cannot tell"), never to False: the
checker only reports what it can establish.
"""

from __future__ import annotations

import operator

from opl.lang import ast

_OPS = {"<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge, "==": operator.eq,
        "!=": operator.ne}


def quantity(value: ast.Value) -> float | None:
    """A literal operand in the units of the variables: days, percent or a plain number."""
    while isinstance(value, ast.Paren):
        value = value.value
    if isinstance(value, ast.Unary):
        inner = quantity(value.operand)
        return None if inner is None else (-inner if value.op == "-" else inner)
    if isinstance(value, ast.Number):
        return value.value
    if isinstance(value, ast.Percent):
        return value.value
    if isinstance(value, ast.Duration):
        return value.days
    return None


def _operand(value: ast.Value, env: dict[str, float]) -> float | None:
    while isinstance(value, ast.Paren):
        value = value.value
    if isinstance(value, ast.Name):
        return env.get(value.id)
    return quantity(value)


def evaluate(value: ast.Value, env: dict[str, float]) -> bool | None:
    """Three-valued evaluation: True, False, or None when a variable is unknown."""
    while isinstance(value, ast.Paren):
        value = value.value
    if isinstance(value, ast.BoolOp):
        left, right = evaluate(value.left, env), evaluate(value.right, env)
        if value.op == "and":
            if left is False or right is False:
                return False
            return None if left is None or right is None else True
        if left is True or right is True:
            return True
        return None if left is None or right is None else False
    if isinstance(value, ast.Not):
        inner = evaluate(value.operand, env)
        return None if inner is None else not inner
    if isinstance(value, ast.Compare) and value.left is not None:
        left, right = _operand(value.left, env), _operand(value.right, env)
        if left is None or right is None:
            return None
        return _OPS[value.op](left, right)
    return None


def variables(value: ast.Value) -> set[str]:
    """The variable names a condition reads."""
    return {node.id for node in ast.walk(value) if isinstance(node, ast.Name)}

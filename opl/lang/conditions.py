"""Evaluating a lowered condition (`opl.lang.ir`: guards, targets) against known scalar values.

Units follow grammar/README.md: days for ``days_left`` (``2d`` → 2), percent for
percentages (``10%`` → 10, ``+25%`` → 25). A condition that mentions a variable the
environment does not hold evaluates to None ("cannot tell"), never to False: the
checker only reports what it can establish.
"""

from __future__ import annotations

import operator

from opl.lang import ir

_OPS = {"<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge, "==": operator.eq,
        "!=": operator.ne}


def _operand(value: ir.Operand, env: dict[str, float]) -> float | None:
    if isinstance(value, ir.Variable):
        return env.get(value.name)
    if isinstance(value, ir.Quantity) and value.unit != "factor":
        return value.value
    return None  # a trigger's measure: not known from the file


def evaluate(condition: ir.Condition, env: dict[str, float]) -> bool | None:
    """Three-valued evaluation: True, False, or None when a variable is unknown."""
    if isinstance(condition, ir.BoolOp):
        left, right = evaluate(condition.left, env), evaluate(condition.right, env)
        if condition.op == "and":
            if left is False or right is False:
                return False
            return None if left is None or right is None else True
        if left is True or right is True:
            return True
        return None if left is None or right is None else False
    if isinstance(condition, ir.Not):
        inner = evaluate(condition.operand, env)
        return None if inner is None else not inner
    if isinstance(condition, ir.Compare):
        left, right = _operand(condition.left, env), _operand(condition.right, env)
        if left is None or right is None:
            return None
        return _OPS[condition.op](left, right)
    return None


def variables(condition: ir.Condition) -> set[str]:
    """The variable names a condition reads."""
    return {node.name for node in ir.walk(condition) if isinstance(node, ir.Variable)}

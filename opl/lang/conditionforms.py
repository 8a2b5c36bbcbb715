"""A file's conditions lowered to the runtime's typed rule objects (`opl.runtime.engine.conditionspec`).

The checker reads conditions as syntax (`opl.lang.ast`); the replay compiles typed objects and
never imports the syntax tree. This module sits between: it keeps what the simulator
supports (grammar/README.md §7; the list is `opl.runtime.engine.triggers.SUPPORTED_TRIGGERS`) and
raises `opl.runtime.engine.triggers.UnsupportedCondition`, with the node's span, for the rest.
"""

from __future__ import annotations

from opl.lang import ast
from opl.lang.conditions import quantity
from opl.runtime.engine import conditionspec as spec
from opl.runtime.engine.triggers import (
    STRUCTURE_MEASURES,
    SUPPORTED_TRIGGERS,
    SUPPORTED_VARIABLES,
    UnsupportedCondition,
    VARIABLE_NAMES,
)

__all__ = ["lower_condition"]

_COMPARED = ("pnl_percent", "days_left", "price_retrace", "vega_crush", "iv_change", "drawdown", "margin_utilisation",
             "additional_margin")
_OPERAND_MEASURES = ("additional_margin", "margin_utilisation", "drawdown", "pnl_percent")


def _strip(value: ast.Value) -> ast.Value:
    while isinstance(value, ast.Paren):
        value = value.value
    return value


def _number(value: ast.Value, what: str) -> float:
    q = quantity(_strip(value))
    if q is None:
        raise UnsupportedCondition(f"{what} needs a number", getattr(value, "span", None))
    return q


def _is_percent(value: ast.Value) -> bool:
    return isinstance(value, ast.Percent) or (isinstance(value, ast.Unary)
                                              and isinstance(_strip(value.operand), ast.Percent))


def _level_broken(call: ast.Call, level: str) -> spec.LevelBroken:
    args, kwargs = call.positional, call.keywords
    arg = args[0] if args else (kwargs["by"].value if "by" in kwargs else None)
    if arg is None:
        return spec.LevelBroken(level=level)
    inner = _strip(arg)
    return spec.LevelBroken(level=level, by=_number(inner, "the distance"), percent=_is_percent(inner))


def _structure(call: ast.Call) -> spec.StructureDestabilised:
    args, kwargs = call.positional, call.keywords
    arg = args[0] if args else (kwargs["measure"].value if "measure" in kwargs else None)
    measure = _strip(arg) if arg is not None else None
    if measure is not None and (not isinstance(measure, ast.Name) or measure.id not in STRUCTURE_MEASURES):
        raise UnsupportedCondition("`structure_destabilised` measures one of "
                                   f"{', '.join(STRUCTURE_MEASURES)} (or none: delta or gamma)", call.span)
    return spec.StructureDestabilised(measure.id if measure is not None else None)


def _compared(call: ast.Call) -> spec.Trigger:
    name = call.func
    compare = _strip(call.positional[0]) if call.positional else None
    if not isinstance(compare, ast.Compare) or compare.left is not None:
        raise UnsupportedCondition(f"`{name}` takes an open comparison such as `{name}(<-25%)`", call.span)
    return spec.Trigger(measure=name, op=compare.op, bound=_number(compare.right, f"`{name}`"))


def _target(call: ast.Call) -> spec.PriceTargetHit:
    args = call.positional
    return spec.PriceTargetHit(_number(args[0] if args else call.keywords["price"].value, "`price_target_hit`"))


def _outside(call: ast.Call) -> spec.PriceOutside:
    args, kwargs = call.positional, call.keywords
    return spec.PriceOutside(low=_number(args[0] if args else kwargs["low"].value, "`price_outside`"),
                             high=_number(args[1] if len(args) > 1 else kwargs["high"].value, "`price_outside`"))


_TRIGGERS = {
    "expiry_passed": lambda call: spec.ExpiryPassed(),
    "structure_destabilised": _structure,
    # Only usable compared (``additional_margin(%) > 15``); alone it would mean "> 0".
    "additional_margin": lambda call: spec.MarginRises(),
    "price_target_hit": _target,
    "price_outside": _outside,
    "support_broken": lambda call: _level_broken(call, "support"),
    "resistance_broken": lambda call: _level_broken(call, "resistance"),
    **{name: _compared for name in _COMPARED if name != "additional_margin"},
}


def _call(call: ast.Call, history: bool) -> spec.Condition:
    name = call.func
    if name == "delta_band":
        if not history:
            raise UnsupportedCondition("`delta_band` is not supported by the simulator yet: it needs an in-sample "
                                       "history of the position's delta, which simulated paths do not have; run "
                                       "it with `opl backtest FILE --data DIR`", call.span)
        return spec.DeltaBand()
    if name not in SUPPORTED_TRIGGERS:
        raise UnsupportedCondition(f"`{name}` is not supported by the simulator yet "
                                   f"(supported: {', '.join(SUPPORTED_TRIGGERS)})", call.span)
    return _TRIGGERS[name](call)


def _operand(value: ast.Value) -> spec.Operand:
    value = _strip(value)
    if isinstance(value, ast.Name):
        if value.id == "open_interest":
            raise UnsupportedCondition("`open_interest` is not simulated (the simulator has no order book); "
                                       "use it in `opl check` guards with the file's `open_interest`", value.span)
        if value.id not in VARIABLE_NAMES:
            raise UnsupportedCondition(f"the variable `{value.id}` is not supported by the simulator yet "
                                       f"(supported: {', '.join(SUPPORTED_VARIABLES)})", value.span)
        return spec.Variable(value.id)
    if isinstance(value, ast.Call):
        if value.func not in _OPERAND_MEASURES:
            raise UnsupportedCondition(f"`{value.func}` cannot be compared", value.span)
        return spec.Measure(value.func)
    return spec.Number(_number(value, "a comparison"))


def lower_condition(value: ast.Value, *, history: bool = False) -> spec.Condition:
    """A condition (``exit_triggers`` item, ``adjust_when``, ``abort_if``, a guard rule) in runtime form.

    ``history`` says the replay runs over a history with a fitted delta band (`opl backtest`),
    which ``delta_band`` needs.

    Raises
    ------
    UnsupportedCondition
        For a trigger or variable the simulator does not evaluate (with its span).
    """
    value = _strip(value)
    if isinstance(value, ast.BoolOp):
        left, right = lower_condition(value.left, history=history), lower_condition(value.right, history=history)
        return spec.And(left, right) if value.op == "and" else spec.Or(left, right)
    if isinstance(value, ast.Not):
        return spec.Not(lower_condition(value.operand, history=history))
    if isinstance(value, ast.Call):
        return _call(value, history)
    if isinstance(value, ast.Name):
        return _call(ast.Call(value.id, (), value.span, value.span), history)
    if isinstance(value, ast.Compare) and value.left is not None:
        return spec.Compare(_operand(value.left), value.op, _operand(value.right))
    raise UnsupportedCondition("not a condition the simulator can evaluate", getattr(value, "span", None))

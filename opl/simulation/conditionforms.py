"""A file's conditions lowered to the runtime's typed rule objects (`opl.runtime.engine.conditionspec`).

The lowering stage types a file's conditions (`opl.lang.ir`); the replay compiles its own rule
objects and never imports the language. This module sits between: it keeps what the simulator
supports (grammar/README.md §7; the list is `opl.runtime.engine.triggers.SUPPORTED_TRIGGERS`) and
raises `opl.runtime.engine.triggers.UnsupportedCondition`, with the node's span, for the rest.
"""

from __future__ import annotations

from opl.lang import ir
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


def _number(value: ir.Argument | None, what: str, span) -> ir.Quantity:
    if not isinstance(value, ir.Quantity) or value.unit == "factor":
        raise UnsupportedCondition(f"{what} needs a number", getattr(value, "span", span))
    return value


def _level_broken(call: ir.Call, level: str) -> spec.LevelBroken:
    arg = call.get("by")
    if arg is None:
        return spec.LevelBroken(level=level)
    by = _number(arg, "the distance", call.span)
    return spec.LevelBroken(level=level, by=by.value, percent=by.percent)


def _structure(call: ir.Call) -> spec.StructureDestabilised:
    measure = call.get("measure")
    if measure is not None and (not isinstance(measure, ir.Word) or measure.name not in STRUCTURE_MEASURES):
        raise UnsupportedCondition("`structure_destabilised` measures one of "
                                   f"{', '.join(STRUCTURE_MEASURES)} (or none: delta or gamma)", call.span)
    return spec.StructureDestabilised(measure.name if measure is not None else None)


def _compared(call: ir.Call) -> spec.Trigger:
    bound = call.get("condition")
    if not isinstance(bound, ir.Bound):
        raise UnsupportedCondition(f"`{call.name}` takes an open comparison such as `{call.name}(<-25%)`", call.span)
    return spec.Trigger(measure=call.name, op=bound.op, bound=bound.value.value)


def _target(call: ir.Call) -> spec.PriceTargetHit:
    return spec.PriceTargetHit(_number(call.get("price"), "`price_target_hit`", call.span).value)


def _outside(call: ir.Call) -> spec.PriceOutside:
    return spec.PriceOutside(low=_number(call.get("low"), "`price_outside`", call.span).value,
                             high=_number(call.get("high"), "`price_outside`", call.span).value)


# trigger → its runtime form; `opl.runtime.engine.triggers.SUPPORTED_TRIGGERS` lists the same names
# (tests/simulate/test_vocabulary_tables.py keeps the two in step).
TRIGGER_FORMS = {
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


def _call(call: ir.Call | ir.DeltaBand, history: bool) -> spec.Condition:
    if isinstance(call, ir.DeltaBand):
        if not history:
            raise UnsupportedCondition("`delta_band` is not supported by the simulator yet: it needs an in-sample "
                                       "history of the position's delta, which simulated paths do not have; run "
                                       "it with `opl backtest FILE --data DIR`", call.span)
        return spec.DeltaBand()
    if call.name not in SUPPORTED_TRIGGERS:
        raise UnsupportedCondition(f"`{call.name}` is not supported by the simulator yet "
                                   f"(supported: {', '.join(SUPPORTED_TRIGGERS)})", call.span)
    return TRIGGER_FORMS[call.name](call)


def _operand(value: ir.Operand) -> spec.Operand:
    if isinstance(value, ir.Variable):
        if value.name == "open_interest":
            raise UnsupportedCondition("`open_interest` is not simulated (the simulator has no order book); "
                                       "use it in `opl check` guards with the file's `open_interest`", value.span)
        if value.name not in VARIABLE_NAMES:
            raise UnsupportedCondition(f"the variable `{value.name}` is not supported by the simulator yet "
                                       f"(supported: {', '.join(SUPPORTED_VARIABLES)})", value.span)
        return spec.Variable(value.name)
    if isinstance(value, (ir.Call, ir.DeltaBand)):
        if value.name not in _OPERAND_MEASURES:
            raise UnsupportedCondition(f"`{value.name}` cannot be compared", value.span)
        return spec.Measure(value.name)
    return spec.Number(_number(value, "a comparison", None).value)


def lower_condition(condition: ir.Condition, *, history: bool = False) -> spec.Condition:
    """A lowered condition (``exit_triggers`` item, ``adjust_when``, ``abort_if``, a guard rule) in runtime form.

    ``history`` says the replay runs over a history with a fitted delta band (`opl backtest`),
    which ``delta_band`` needs.

    Raises
    ------
    UnsupportedCondition
        For a trigger or variable the simulator does not evaluate (with its span).
    """
    if isinstance(condition, ir.BoolOp):
        left = lower_condition(condition.left, history=history)
        right = lower_condition(condition.right, history=history)
        return spec.And(left, right) if condition.op == "and" else spec.Or(left, right)
    if isinstance(condition, ir.Not):
        return spec.Not(lower_condition(condition.operand, history=history))
    if isinstance(condition, (ir.Call, ir.DeltaBand)):
        return _call(condition, history)
    if isinstance(condition, ir.Compare):
        return spec.Compare(_operand(condition.left), condition.op, _operand(condition.right))
    raise UnsupportedCondition("not a condition the simulator can evaluate", getattr(condition, "span", None))

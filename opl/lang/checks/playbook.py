"""Checks of the adjustment module (spec §5) that need nothing but the file.

The simulator refuses the same things (`opl.simulation.rules.adjust_spec`); here they are found at
`opl check`, located, so a file `opl check` accepts never stops the simulator for a reason
visible in the file: a negative gamma target, an expiry moved in, a hedge of a Greek no
instrument hedges. An adjust condition without a playbook (or the reverse) is valid OPL
(golden sample 6 writes a playbook alone) and warns W412; the simulator runs no adjustment.
"""

from __future__ import annotations

from typing import Callable

from opl.lang import ir
from opl.lang.checks.context import CheckContext
from opl.lang.source import UNKNOWN_SPAN


def _at_least_zero(value: ir.Argument) -> str | None:
    return None if not isinstance(value, ir.Quantity) or value.value >= 0 else "must not be negative"


def _above_zero(value: ir.Argument) -> str | None:
    return (None if not isinstance(value, ir.Quantity) or value.value > 0
            else "must be above 0 (the simulator moves expiries out, not in)")


def _hedged_greek(value: ir.Argument) -> str | None:
    return None if isinstance(value, ir.Word) and value.name in ("delta", "gamma") else "must be `delta` or `gamma`"


# (action, argument) → (position, rule): the rule returns what is wrong, or None
ARGUMENT_RULES: dict[tuple[str, str], Callable[[ir.Argument], str | None]] = {
    ("hedge_gamma", "target"): _at_least_zero,
    ("roll_tenor", "by"): _above_zero,
    ("roll", "to"): _above_zero,
    ("hedge", "greek"): _hedged_greek,
}


def module_complete(ctx: CheckContext) -> None:
    """`adjust_when` and `adjust_playbook` come together: one without the other does nothing."""
    adjust, spans = ctx.document.adjust, ctx.document.spans
    # a field written but rejected when lowered has its own error; judge by what was written
    if adjust.playbook and "adjust_when" not in spans:
        ctx.sink.emit("W412", "`adjust_playbook` without `adjust_when`: nothing says when to adjust",
                      spans.get("adjust_playbook", UNKNOWN_SPAN), "never runs",
                      help="add e.g. `adjust_when price_retrace(<-3%)`")
    if adjust.when is not None and "adjust_playbook" not in spans:
        ctx.sink.emit("W412", "`adjust_when` without `adjust_playbook`: nothing to do when it holds",
                      spans.get("adjust_when", UNKNOWN_SPAN), "does nothing",
                      help="add e.g. `adjust_playbook [ roll_nearest_term() ]`")


def argument_values(ctx: CheckContext) -> None:
    """Each action argument with a rule of `ARGUMENT_RULES` satisfies it, located on the argument."""
    for call in ctx.document.adjust.playbook:
        for (func, name), rule in ARGUMENT_RULES.items():
            if call.name != func:
                continue
            value = call.get(name)
            problem = rule(value) if value is not None else None
            if problem:
                ctx.sink.emit("E105", f"`{func}` argument `{name}` {problem}", value.span, "out of range")


PASSES = (module_complete, argument_values)

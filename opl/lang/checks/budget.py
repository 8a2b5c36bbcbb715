"""E207: an experiment whose estimated simulation cost exceeds `opl.lang.limits.MAX_PATH_STEPS` (`opl.lang.experiment.cost`).

A file — perhaps a model's — can ask for `steps_per_day 96` on many paths, many scenarios and sizes; each
is within its own range, their product is hours of simulation. The bound is on the product.
"""

from __future__ import annotations

from opl.lang import limits
from opl.lang.checks.context import CheckContext
from opl.lang.experiment.cost import experiment_cost
from opl.lang.source import UNKNOWN_SPAN


def simulation_cost(ctx: CheckContext) -> None:
    exp = ctx.document.experiment
    if exp is None:
        return
    cost = experiment_cost(exp)
    if cost.path_steps <= limits.MAX_PATH_STEPS:
        return
    ctx.sink.emit("E207", f"the experiment would simulate {cost.describe()}, above the bound of "
                  f"{limits.MAX_PATH_STEPS:,}", exp.span or UNKNOWN_SPAN, "too costly to simulate",
                  help="lower `paths` or `steps_per_day`, shorten `horizon`, or sweep fewer `sizes` or scenarios")


PASSES = (simulation_cost,)

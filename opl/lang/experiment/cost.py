"""The estimated cost of a simulation: path-steps = paths × months × trading days × steps a day × variants.

``variants`` counts the replays a file asks for — the base run and each stress or sensitivity scenario —
times the sizes swept. The estimate reads only the experiment block (numpy-free, for the checker):
`opl check` refuses a file whose estimate exceeds `opl.lang.limits.MAX_PATH_STEPS` (E207), and `opl loop`
refuses a candidate whose estimate exceeds its run's budget (`opl.closedloop.run`).

>>> from opl.lang.document import Experiment
>>> cost = experiment_cost(Experiment(paths=50, steps_per_day=96))
>>> cost.path_steps, cost.describe()
(1209600, '50 paths × 12 months × 21 days × 96 steps a day × 1 variant = 1,209,600 path-steps')
"""

from __future__ import annotations

from dataclasses import dataclass

from opl.lang.experiment.settings import DEFAULT_PATHS, SimSettings

__all__ = ["RunCost", "experiment_cost"]


@dataclass(frozen=True)
class RunCost:
    """The factors of a run's estimated cost."""

    paths: int
    months: int
    days_per_month: int
    steps_per_day: int
    variants: int

    @property
    def path_steps(self) -> int:
        return self.paths * self.months * self.days_per_month * self.steps_per_day * self.variants

    def describe(self) -> str:
        return (f"{self.paths:,} paths × {self.months} months × {self.days_per_month} days × {self.steps_per_day} "
                f"steps a day × {self.variants} variant{'s' if self.variants != 1 else ''} = "
                f"{self.path_steps:,} path-steps")


def experiment_cost(exp, *, paths: int | None = None) -> RunCost:
    """The cost of simulating an `opl.lang.document.Experiment` (None: the defaults); ``paths`` overrides its own."""
    scenarios = len(exp.stress) + len(exp.sensitivity) if exp is not None else 0
    sizes = max(1, len(exp.sizes)) if exp is not None else 1
    return RunCost(paths=paths or (exp.paths if exp is not None and exp.paths else DEFAULT_PATHS),
                   months=(exp.horizon_months if exp is not None and exp.horizon_months else
                           SimSettings.horizon_months),
                   days_per_month=SimSettings.days_per_month,
                   steps_per_day=(exp.steps_per_day if exp is not None and exp.steps_per_day else 1),
                   variants=(1 + scenarios) * sizes)

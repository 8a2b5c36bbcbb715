"""The loop's target and its objective: one scalar, the distance to the target, that the loop drives to 0.

The target is a conjunction of clauses ``metric op threshold`` over the simulator's target metrics
(percent units, grammar/README.md §10.2), e.g. the seed's
``median_monthly_return >= 1% and loss_probability <= 25% and max_drawdown_p95 <= 10%``.

**Shortfall of a clause** — how far a metric value is from satisfying it, relative to the threshold::

    >=, >   max(0, threshold - value) / scale
    <=, <   max(0, value - threshold) / scale
    ==      |value - threshold| / scale
    !=      1 when value == threshold, else 0
    scale = max(|threshold|, 1)   (percent units: a shortfall of 0.5 on ``>= 1%`` is half a percent point)

A strict ``>``/``<`` clause met with equality counts a shortfall of 1e-9 so that "met" and "shortfall 0"
agree.

**Distance** of a set of metric values, 0 exactly when every clause holds::

    distance = k × (largest shortfall among the k clauses on size-scaled metrics)
               + (sum of the shortfalls of the other clauses)

Size-scaled metrics (`SIZE_SCALED`: returns, drawdowns, CVaR, peak margin) grow with the position size,
so a larger size trades a return shortfall for a drawdown excess; counting them by their largest
shortfall makes the distance smallest at the size that balances them, and every gain in return per unit
of drawdown lowers it. (A plain sum would be smallest at a corner — the smallest size whenever drawdown
grows faster than return — where improving the strategy barely moves it.) The other clauses (the loss
probability, margin-call and liquidation probabilities) are shares that size barely moves; they add up.
With at most one size-scaled clause the distance is the plain sum of shortfalls.

The objective of a candidate (`opl.closedloop.evaluate`) is the smallest distance over its swept sizes plus the
largest distance among the sensitivity scenarios at that size, so it is 0 only when the target holds and
still holds under every sensitivity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from opl.errors import OplError

__all__ = ["Clause", "Target", "TargetError", "DEFAULT_TARGET", "SIZE_SCALED", "parse_target"]

# Target metrics that grow with the position size; the others are shares of months or paths.
SIZE_SCALED = frozenset({"median_monthly_return", "mean_monthly_return", "max_drawdown_p95", "max_drawdown_p99",
                         "cvar_95", "cvar_99", "peak_margin_p95"})

DEFAULT_TARGET = "median_monthly_return >= 1% and loss_probability <= 25% and max_drawdown_p95 <= 10%"

Op = Literal["<", ">", "<=", ">=", "==", "!="]
_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "!=": "!="}


class TargetError(OplError, ValueError):
    """The target is not a conjunction of ``metric op number`` clauses over known metrics."""


@dataclass(frozen=True, kw_only=True)
class Clause:
    """``metric op threshold`` (percent units)."""

    metric: str
    op: Op
    threshold: float
    text: str

    @property
    def scale(self) -> float:
        return max(abs(self.threshold), 1.0)

    def shortfall(self, value: float | None) -> float:
        """Distance of ``value`` from meeting the clause (module docstring); a missing value counts 1."""
        if value is None or value != value:
            return 1.0
        t, op = self.threshold, self.op
        if op in (">=", ">"):
            gap = max(0.0, t - value) / self.scale
            return 1e-9 if op == ">" and gap == 0 and value == t else gap
        if op in ("<=", "<"):
            gap = max(0.0, value - t) / self.scale
            return 1e-9 if op == "<" and gap == 0 and value == t else gap
        if op == "==":
            return abs(value - t) / self.scale
        return 1.0 if value == t else 0.0

    def holds(self, value: float | None) -> bool:
        return self.shortfall(value) == 0.0

    def to_dict(self) -> dict:
        return {"metric": self.metric, "op": self.op, "threshold": self.threshold, "text": self.text}


@dataclass(frozen=True, kw_only=True)
class Target:
    """The loop's target: its text and clauses."""

    text: str
    clauses: tuple[Clause, ...]
    source: Literal["file", "default"] = "file"

    def distance(self, values: dict[str, float]) -> float:
        """The distance of metric ``values`` (RunMetrics.target_values()) from the target (module docstring)."""
        scaled = [c.shortfall(values.get(c.metric)) for c in self.clauses if c.metric in SIZE_SCALED]
        other = [c.shortfall(values.get(c.metric)) for c in self.clauses if c.metric not in SIZE_SCALED]
        return float(len(scaled) * max(scaled, default=0.0) + sum(other))

    def holds(self, values: dict[str, float]) -> bool:
        return all(c.holds(values.get(c.metric)) for c in self.clauses)

    def failures(self, values: dict[str, float]) -> list[dict]:
        """Each failing clause with its value, its shortfall in metric units and relative to the threshold."""
        out = []
        for c in self.clauses:
            v = values.get(c.metric)
            if c.holds(v):
                continue
            out.append({"metric": c.metric, "op": c.op, "threshold": c.threshold, "value": v,
                        "shortfall": None if v is None else abs(v - c.threshold),
                        "relative": c.shortfall(v), "clause": c.text})
        return out

    def to_dict(self) -> dict:
        return {"text": self.text, "source": self.source, "clauses": [c.to_dict() for c in self.clauses]}


def _clauses(value, text: str) -> list[Clause]:
    from opl.lang import ir
    from opl.lang.vocabulary import TARGET_METRICS

    clauses = []
    for clause in ir.clauses(value, "and"):
        if isinstance(clause, ir.Compare):
            left, right, op = clause.left, clause.right, clause.op
            if isinstance(right, ir.Variable) and not isinstance(left, ir.Variable):
                left, right, op = right, left, _FLIP[op]
            if isinstance(left, ir.Variable) and left.name in TARGET_METRICS and isinstance(right, ir.Quantity):
                clauses.append(Clause(metric=left.name, op=op, threshold=right.value,
                                      text=text[clause.span.start:clause.span.end]))
                continue
        raise TargetError(f"`{text[clause.span.start:clause.span.end]}`: the loop needs the target as clauses "
                          "`metric op number` joined by `and` (grammar/README.md §10.2)")
    return clauses


def parse_target(document, text: str) -> Target:
    """The target of a checked document (its ``experiment.target``), else the seed's default target.

    Raises
    ------
    TargetError
        The target uses ``or``, ``not`` or a form that is not ``metric op number``.
    """
    from opl.lang.frontend import check_text

    target = document.experiment.target if document is not None and document.experiment is not None else None
    if target is None:
        default = check_text(f"opl-lang 1.0\nexperiment {{\n  target {DEFAULT_TARGET}\n}}\n")
        source = default.report.source.text
        value = default.document.experiment.target
        return Target(text=DEFAULT_TARGET, clauses=tuple(_clauses(value, source)), source="default")
    return Target(text=text[target.span.start:target.span.end], clauses=tuple(_clauses(target, text)))

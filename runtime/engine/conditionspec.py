"""The file's conditions in runtime form: typed rule objects the replay compiles.

``exit_triggers``, ``adjust_when``, ``abort_if`` and the guard rules are written in the
language; `opl.simulation.conditionforms.lower_condition` checks them against what the simulator
supports (located errors) and lowers them to these objects, so the runtime never reads the
language's syntax tree. `opl.runtime.engine.triggers.compile_condition` turns them into vectorised
tests. Units are the language's: percent for percentages (``-25%`` → −25), days for
durations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Literal, Union

__all__ = ["Number", "Variable", "Measure", "Trigger", "ExpiryPassed", "MarginRises", "PriceTargetHit",
           "PriceOutside", "LevelBroken", "StructureDestabilised", "DeltaBand", "Compare", "And", "Or", "Not",
           "Condition", "Operand", "walk"]

Op = Literal["<", ">", "<=", ">=", "==", "!="]


@dataclass(frozen=True)
class Number:
    """A constant operand."""

    value: float


@dataclass(frozen=True)
class Variable:
    """A variable operand: ``days_left``, ``pnl``, ``delta``, ``iv`` or a leg-level one."""

    name: str


@dataclass(frozen=True)
class Measure:
    """A trigger's measure used as an operand (``additional_margin(%) > 15``)."""

    name: str


@dataclass(frozen=True)
class Trigger:
    """``name(op bound)``: the trigger's measure compared with a bound (``pnl_percent(<-25%)``)."""

    measure: str
    op: Op
    bound: float


@dataclass(frozen=True)
class ExpiryPassed:
    """``expiry_passed()``."""


@dataclass(frozen=True)
class MarginRises:
    """``additional_margin`` alone: the margin rose since the open."""


@dataclass(frozen=True)
class PriceTargetHit:
    """The future crossed ``target`` from the side it opened on."""

    target: float


@dataclass(frozen=True)
class PriceOutside:
    """The future is outside [low, high]."""

    low: float
    high: float


@dataclass(frozen=True)
class LevelBroken:
    """``support_broken(by)`` / ``resistance_broken(by)``: ``by`` a price distance, or a percent of the level."""

    level: Literal["support", "resistance"]
    by: float = 0.0
    percent: bool = False


@dataclass(frozen=True)
class StructureDestabilised:
    """``structure_destabilised(measure)``; None: delta or gamma."""

    measure: Literal["delta", "gamma", "vega"] | None = None


@dataclass(frozen=True)
class DeltaBand:
    """``delta_band(...)`` of a history (`opl backtest`): the band is fitted walk-forward, read from the state."""


@dataclass(frozen=True)
class Compare:
    """``left op right`` of two operands."""

    left: "Operand"
    op: Op
    right: "Operand"


@dataclass(frozen=True)
class And:
    left: "Condition"
    right: "Condition"


@dataclass(frozen=True)
class Or:
    left: "Condition"
    right: "Condition"


@dataclass(frozen=True)
class Not:
    operand: "Condition"


Operand = Union[Number, Variable, Measure]
Condition = Union[Trigger, ExpiryPassed, MarginRises, PriceTargetHit, PriceOutside, LevelBroken,
                  StructureDestabilised, DeltaBand, Compare, And, Or, Not]


def walk(node) -> Iterator[object]:
    """The node and everything under it."""
    yield node
    for child in {And: ("left", "right"), Or: ("left", "right"), Not: ("operand",),
                  Compare: ("left", "right")}.get(type(node), ()):
        yield from walk(getattr(node, child))

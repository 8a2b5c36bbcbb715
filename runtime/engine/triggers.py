"""Vectorised evaluation of exit conditions over paths (grammar/README.md §7).

The checker answers one scalar question of a condition; the replay asks the same question
of every path at every step, so a condition — in its runtime form (`opl.runtime.engine.conditionspec`:
typed rule objects, lowered from the file by `opl.simulation.conditionforms`; the runtime never reads
the language's syntax tree) — is compiled once into a function of a `TriggerState` (arrays over paths, or over variants × paths) that returns a
boolean array. Units are the language's: percent for percentages (``-25%`` → −25), days
for durations.

Supported triggers and what they read (each is documented in grammar/README.md §7.1):

==========================  ===================================================================
``pnl_percent(c)``          position P&L since the month's open (options, hedge, costs) as a
                            percentage of the premium received at the open (of the initial
                            margin when the net premium is zero)
``days_left(c)``            calendar days to the options' expiry
``expiry_passed()``         the options are at (or past) expiry
``price_retrace(c)``        move of the future since the month's open, percent
``vega_crush(c)``           fall of at-the-money implied volatility since the open, percent
``iv_change(c)``            change of at-the-money implied volatility since the open, percent
``drawdown(c)``             account drawdown from its running peak, percent (positive)
``margin_utilisation(c)``   exchange margin / capital, percent
``additional_margin(%)``    margin increase since the open, percent of the opening margin
``price_target_hit(p)``     the future crossed ``p`` from the side it opened on
``price_outside(lo, hi)``   the future is outside [lo, hi]
``support_broken(by)``      the future is below support − by (by: price, or % of support)
``resistance_broken(by)``   the future is above resistance + by
==========================  ===================================================================

``structure_destabilised(m)`` the Greek ``m`` left its band (``delta``: the net delta is more than
``bands[0]`` × N lots from the hedge's target keep·d·N; ``gamma``: |net gamma| in delta lots per 1%
move of the future exceeds ``bands[1]`` × N; ``vega``: |vega| per volatility point exceeds
``bands[2]`` percent of capital; no measure: delta or gamma). N is the short option lots held
(all option lots when none is short). Defaults 0.25, 0.10 and 0.5, ``--set structure.*``.

Bare comparisons may read the variables ``days_left``, ``pnl`` (month P&L, % of capital),
``delta`` (net delta in lots), ``iv`` (ATM implied volatility, percent) and the **leg-level**
variables ``strike_offset`` (|K/F − 1| of an out-of-the-money leg, percent, 0 in the money),
``moneyness`` (K/F − 1, percent), ``leg_pnl`` (the leg's P&L since it was opened as a percent
of its entry premium) and ``qty`` (its lots); with a leg in view ``days_left`` is the leg's
(the month's plus any days it was rolled out). A condition that reads a leg-level variable
holds where it holds for *any* leg held (``compile_condition``), or is evaluated leg by leg
(``per_leg=True``: the guard rules ``avoid_leg_if`` and ``warn_if``). ``open_interest`` is not
simulated and raises `UnsupportedCondition` with the node's span, never a silent False.

``delta_band(...)`` (grammar/README.md §7.3) needs an in-sample history of the position's
delta, so it is lowered only with ``history=True`` (`opl backtest`): it is true where
``|unit_delta − band_centre| > band_width``, the state's strategy delta per unit of size
against the band the walk-forward fitted for this step (never where no band is fitted
yet, ``band_width`` NaN). The simulator compiles without history and gets a located
`UnsupportedCondition` saying so.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np

from opl.runtime.engine import conditionspec as spec
from opl.errors import OplError

__all__ = ["TriggerState", "LegState", "UnsupportedCondition", "CompiledCondition", "compile_condition", "uses_leg_variables",
           "SUPPORTED_TRIGGERS", "COMPARISONS", "SUPPORTED_VARIABLES", "VARIABLE_NAMES", "LEG_VARIABLES", "STRUCTURE_MEASURES"]

COMPARISONS = _OPS = {"<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge, "==": operator.eq,
        "!=": operator.ne}

SUPPORTED_TRIGGERS = ("pnl_percent", "days_left", "expiry_passed", "price_retrace", "vega_crush", "iv_change",
                      "drawdown", "margin_utilisation", "additional_margin", "price_target_hit", "price_outside",
                      "support_broken", "resistance_broken", "structure_destabilised")
LEG_VARIABLES = ("strike_offset", "moneyness", "leg_pnl", "qty")
SUPPORTED_VARIABLES = ("days_left", "pnl", "delta", "iv") + LEG_VARIABLES
STRUCTURE_MEASURES = ("delta", "gamma", "vega")


class UnsupportedCondition(OplError, ValueError):
    """A condition the simulator cannot evaluate yet; ``span`` locates it in the file."""

    def __init__(self, message: str, span=None):
        super().__init__(message)
        self.span = span


class LegState:
    """The leg-level variables of one leg (arrays over variants × paths, or scalars), computed when read.

    Parameters
    ----------
    days_left
        Calendar days to the leg's expiry.
    lots
        Signed lots (its sign is the side ``leg_pnl`` is measured for).
    held
        Where the leg holds (or would hold) lots: an unheld leg never makes a condition hold.
    strike, price, is_call
        The series and the future's price.
    value, entry
        The leg's mark now and when it was opened, per unit (``leg_pnl``; 0 when not given).
    """

    def __init__(self, *, days_left, lots, held, strike, price, is_call: bool, value=None, entry=None):
        self.days_left, self.lots, self.held = days_left, lots, held
        self._strike, self._price, self._call, self._value, self._entry = strike, price, is_call, value, entry

    @cached_property
    def moneyness(self) -> np.ndarray:
        return (np.asarray(self._strike) / self._price - 1.0) * 100.0

    @cached_property
    def strike_offset(self) -> np.ndarray:
        otm = self._strike > self._price if self._call else self._strike < self._price
        return np.where(otm, np.abs(self.moneyness), 0.0)

    @cached_property
    def leg_pnl(self) -> np.ndarray:
        if self._value is None or self._entry is None:
            return np.zeros(np.shape(self.lots))
        entry = np.asarray(self._entry, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(entry > 0, np.sign(self.lots) * (self._value - entry) / np.where(entry > 0, entry, 1.0)
                            * 100.0, 0.0)

    @cached_property
    def qty(self) -> np.ndarray:
        return np.abs(self.lots)


@dataclass(kw_only=True)
class TriggerState:
    """What the triggers read at one step; arrays broadcast against each other.

    The callables are computed only when a condition asks (the P&L and drawdown fields through
    `measured`, most steps' conditions never read them): ``legs`` the held legs'
    `LegState`; ``gamma_lots`` the net gamma in futures lots of delta per 1% move;
    ``vega_points`` the net vega in currency per volatility point; ``added_margin`` replaces
    ``additional_margin`` while ``abort_if`` judges an adjustment (`opl.runtime.engine.adjust`).
    """

    shape: tuple[int, ...]  # (variants, paths): what every condition's result broadcasts to
    pnl_percent: np.ndarray | Callable[[], np.ndarray]  # read with measured(), as the other callables below
    pnl_capital: np.ndarray | Callable[[], np.ndarray]
    days_left: float
    expired: bool
    price: np.ndarray
    open_price: np.ndarray
    iv: np.ndarray | Callable[[], np.ndarray]  # (measured()) at-the-money implied volatility, now and at the open
    open_iv: np.ndarray | Callable[[], np.ndarray]
    drawdown: np.ndarray | Callable[[], np.ndarray]
    support: np.ndarray
    resistance: np.ndarray
    delta: np.ndarray | Callable[[], np.ndarray]  # read with measured(): a callable is computed when first read
    requirement: Callable[[], np.ndarray]  # margin now; computed only when a trigger asks
    capital: float
    open_margin: np.ndarray
    unit_delta: np.ndarray | Callable[[], np.ndarray] | None = None  # (measured()) options + the strategy's futures, per unit of size (no hedge)
    band_centre: np.ndarray | float | None = None
    band_width: np.ndarray | float | None = None
    lots: Callable[[], np.ndarray] | None = None  # N of structure_destabilised (module docstring)
    target_delta: Callable[[], np.ndarray] | None = None
    gamma_lots: Callable[[], np.ndarray] | None = None
    vega_points: Callable[[], np.ndarray] | None = None
    bands: tuple[float, float, float] = (0.25, 0.10, 0.5)
    legs: Callable[[], list[LegState]] | None = None
    leg: LegState | None = None
    added_margin: Callable[[], np.ndarray] | None = None
    tenor_days: float = 30.0
    _margin: np.ndarray | None = None

    def measured(self, name: str):
        """A field's value; a callable one (the net deltas, computed only when a condition reads them: most
        conditions never do) is called on first read and kept."""
        value = getattr(self, name)
        if callable(value):
            value = value()
            setattr(self, name, value)
        return value

    def _required(self) -> np.ndarray:
        if self._margin is None:
            self._margin = self.requirement()
        return self._margin

    @property
    def margin_utilisation(self) -> np.ndarray:
        return self._required() / self.capital * 100.0

    @property
    def additional_margin(self) -> np.ndarray:
        if self.added_margin is not None:
            return self.added_margin()
        return (self._required() / np.maximum(self.open_margin, 1e-9) - 1.0) * 100.0

    def _need(self, name: str):
        value = getattr(self, name)
        if value is None:
            raise ValueError(f"this replay does not provide `{name}` (the strategy was built without it)")
        return value


Compiled = Callable[[TriggerState], np.ndarray]


def _measure(name: str) -> Callable[[TriggerState], np.ndarray]:
    def price_move(s: TriggerState) -> np.ndarray:
        return (s.price / s.open_price - 1.0) * 100.0

    return {
        "pnl_percent": lambda s: s.measured("pnl_percent"),
        "days_left": lambda s: np.asarray(s.days_left),
        "price_retrace": price_move,
        "vega_crush": lambda s: (1.0 - s.measured("iv") / s.measured("open_iv")) * 100.0,
        "iv_change": lambda s: (s.measured("iv") / s.measured("open_iv") - 1.0) * 100.0,
        "drawdown": lambda s: s.measured("drawdown"),
        "margin_utilisation": lambda s: s.margin_utilisation,
        "additional_margin": lambda s: s.additional_margin,
    }[name]


def _leg(s: TriggerState) -> LegState:
    if s.leg is None:  # pragma: no cover - compile_condition puts a leg in view first
        raise ValueError("a leg-level variable was read without a leg in view")
    return s.leg


_VARIABLES: dict[str, Callable[[TriggerState], np.ndarray]] = {
    "days_left": lambda s: np.asarray(s.days_left if s.leg is None else s.leg.days_left),
    "pnl": lambda s: s.measured("pnl_capital"),
    "delta": lambda s: s.measured("delta"),
    "iv": lambda s: s.measured("iv") * 100.0,
    "strike_offset": lambda s: _leg(s).strike_offset,
    "moneyness": lambda s: _leg(s).moneyness,
    "leg_pnl": lambda s: _leg(s).leg_pnl,
    "qty": lambda s: _leg(s).qty,
}
VARIABLE_NAMES = tuple(_VARIABLES)


def _structure(measure: str | None) -> Compiled:
    def delta(s: TriggerState) -> np.ndarray:
        return np.abs(s.measured("delta") - s._need("target_delta")()) > s.bands[0] * s._need("lots")()

    def gamma(s: TriggerState) -> np.ndarray:
        return np.abs(s._need("gamma_lots")()) > s.bands[1] * s._need("lots")()

    def vega(s: TriggerState) -> np.ndarray:
        return np.abs(s._need("vega_points")()) / s.capital * 100.0 > s.bands[2]

    if measure is None:
        return lambda s: delta(s) | gamma(s)
    return {"delta": delta, "gamma": gamma, "vega": vega}[measure]


def _delta_band(s: TriggerState) -> np.ndarray:
    if s.unit_delta is None or s.band_width is None:
        raise ValueError("delta_band needs the replay's unit delta and a fitted band (opl backtest)")
    with np.errstate(invalid="ignore"):
        return np.abs(s.measured("unit_delta") - s.band_centre) > s.band_width


def _level_broken(c: spec.LevelBroken) -> Compiled:
    def level(s: TriggerState):
        return s.support if c.level == "support" else s.resistance

    def by(s: TriggerState):
        return level(s) * c.by / 100.0 if c.percent else c.by

    if c.level == "support":
        return lambda s: s.price < s.support - by(s)
    return lambda s: s.price > s.resistance + by(s)


def _trigger(c: spec.Trigger) -> Compiled:
    op, bound, measure = _OPS[c.op], c.bound, _measure(c.measure)

    def test(s: TriggerState) -> np.ndarray:
        return op(measure(s), bound)

    test.rule = c  # the trigger itself: the fast engine tests the common ones in its step kernel (replay)
    return test


def _price_target(c: spec.PriceTargetHit) -> Compiled:
    target = c.target
    return lambda s: np.where(s.open_price <= target, s.price >= target, s.price <= target)


def _outside(c: spec.PriceOutside) -> Compiled:
    low, high = c.low, c.high
    return lambda s: (s.price < low) | (s.price > high)


def _operand(c: spec.Operand) -> Callable[[TriggerState], np.ndarray]:
    if isinstance(c, spec.Variable):
        return _VARIABLES[c.name]
    if isinstance(c, spec.Measure):
        return _measure(c.name)
    number = c.value
    return lambda s: np.asarray(number)


def _compare(c: spec.Compare) -> Compiled:
    left, right, op = _operand(c.left), _operand(c.right), _OPS[c.op]

    def test(s: TriggerState) -> np.ndarray:
        return op(left(s), right(s))

    test.rule = c  # the comparison itself: the fast engine's adjustment round tests `additional_margin(%) > x` so
    return test


def _both(c: spec.And) -> Compiled:
    left, right = _compile(c.left), _compile(c.right)

    # Short-circuit: the right side (often the costlier: margins, leg variables) only where needed.
    def both(s):
        first = left(s)
        return first if not _any(first) else np.logical_and(first, right(s))

    return both


def _either(c: spec.Or) -> Compiled:
    left, right = _compile(c.left), _compile(c.right)

    def either(s):
        first = left(s)
        return first if _all(first) else np.logical_or(first, right(s))

    return either


def _any(x) -> bool:
    """``np.any(x)`` without its dispatch (a guard's one verdict for every path, a numpy bool, at every step
    and leg, is most of its calls)."""
    kind = type(x)
    if kind is np.bool_ or kind is bool:
        return bool(x)
    return bool(x.any()) if kind is np.ndarray else bool(np.any(x))


def _all(x) -> bool:
    """``np.all(x)`` as `_any`."""
    kind = type(x)
    if kind is np.bool_ or kind is bool:
        return bool(x)
    return bool(x.all()) if kind is np.ndarray else bool(np.all(x))


def _negation(c: spec.Not) -> Compiled:
    inner = _compile(c.operand)
    return lambda s: np.logical_not(inner(s))


_COMPILERS: dict[type, Callable[..., Compiled]] = {
    spec.Trigger: _trigger,
    spec.ExpiryPassed: lambda c: lambda s: np.asarray(s.expired),
    spec.MarginRises: lambda c: lambda s: s.additional_margin > 0,
    spec.PriceTargetHit: _price_target,
    spec.PriceOutside: _outside,
    spec.LevelBroken: _level_broken,
    spec.StructureDestabilised: lambda c: _structure(c.measure),
    spec.DeltaBand: lambda c: _delta_band,
    spec.Compare: _compare,
    spec.And: _both,
    spec.Or: _either,
    spec.Not: _negation,
}


def uses_leg_variables(condition: spec.Condition) -> bool:
    """Whether a condition reads a leg-level variable (module docstring)."""
    return any(isinstance(node, spec.Variable) and node.name in LEG_VARIABLES for node in spec.walk(condition))


def _any_leg(inner: Compiled) -> Compiled:
    def test(s: TriggerState) -> np.ndarray:
        out = np.zeros(s.shape, dtype=bool)
        for leg in s._need("legs")():
            if leg.held is False:
                continue
            s.leg = leg
            try:
                out = out | (np.asarray(inner(s), dtype=bool) & leg.held)
            finally:
                s.leg = None
        return out

    return test


class CompiledCondition:
    """A condition compiled into a vectorised test (`compile_condition`): called with a `TriggerState`, it gives
    the elements where the condition holds.

    It pickles as the typed rule it tests and compiles again where it is unpickled (the test itself is a tree
    of closures, which do not pickle), so a strategy's exits, guards and adjustments travel to any process.
    ``condition`` is the rule where the test reads it as a whole (the fast engine's adjustment decision
    evaluates the common ones compiled: `opl.runtime.engine.kernels.adjust.condition_program`), and ``rule``
    the lone trigger or comparison it is, if it is one (the step kernel tests the common triggers, the round
    an ``additional_margin(%) > x`` abort); None where it holds leg by leg.
    """

    __slots__ = ("_rule", "_per_leg", "_test", "condition", "rule")

    def __init__(self, rule: spec.Condition, per_leg: bool):
        self._rule, self._per_leg = rule, per_leg
        test = _compile(rule)
        whole = per_leg or not uses_leg_variables(rule)
        self._test = test if whole else _any_leg(test)
        self.condition = rule if whole else None
        self.rule = getattr(test, "rule", None) if whole else None

    def __call__(self, state: TriggerState) -> np.ndarray:
        return self._test(state)

    def __reduce__(self):
        return CompiledCondition, (self._rule, self._per_leg)

    def __repr__(self) -> str:
        return f"CompiledCondition({self._rule!r}, per_leg={self._per_leg})"


def compile_condition(condition: spec.Condition, *, per_leg: bool = False) -> CompiledCondition:
    """Compile a condition in runtime form (`opl.runtime.engine.conditionspec`, lowered from the file by
    `opl.simulation.conditionforms.lower_condition`) into a vectorised test (a `CompiledCondition`).

    A condition reading leg-level variables holds where it holds for any held leg, unless
    ``per_leg``: then the caller puts each leg in view (``state.leg``).
    """
    return CompiledCondition(condition, per_leg)


def _compile(condition: spec.Condition) -> Compiled:
    return _COMPILERS[type(condition)](condition)

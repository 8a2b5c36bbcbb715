"""Vectorised evaluation of exit conditions over paths (grammar/README.md §7).

`opl.conditions.evaluate` answers one scalar question for the checker; the replay asks the
same question of every path at every step, so a condition is compiled once into a
function of a `TriggerState` (arrays over paths, or over variants × paths) that returns a
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

Bare comparisons may read the variables ``days_left``, ``pnl`` (month P&L, % of capital),
``delta`` (net delta in lots) and ``iv`` (ATM implied volatility, percent). Anything else
— ``structure_destabilised``, the leg-level variables — raises `UnsupportedCondition`
with the node's span, never a silent False.

``delta_band(...)`` (grammar/README.md §7.3) needs an in-sample history of the position's
delta, so it compiles only with ``history=True`` (`opl backtest`): it is true where
``|unit_delta − band_centre| > band_width``, the state's strategy delta per unit of size
against the band the walk-forward fitted for this step (never where no band is fitted
yet, ``band_width`` NaN). The simulator compiles without history and gets a located
`UnsupportedCondition` saying so.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable

import numpy as np

from opl import ast
from opl.conditions import quantity

__all__ = ["TriggerState", "UnsupportedCondition", "compile_condition", "SUPPORTED_TRIGGERS",
           "SUPPORTED_VARIABLES"]

_OPS = {"<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge, "==": operator.eq,
        "!=": operator.ne}

SUPPORTED_TRIGGERS = ("pnl_percent", "days_left", "expiry_passed", "price_retrace", "vega_crush", "iv_change",
                      "drawdown", "margin_utilisation", "additional_margin", "price_target_hit", "price_outside",
                      "support_broken", "resistance_broken")
SUPPORTED_VARIABLES = ("days_left", "pnl", "delta", "iv")


class UnsupportedCondition(ValueError):
    """A condition the simulator cannot evaluate yet; ``span`` locates it in the file."""

    def __init__(self, message: str, span=None):
        super().__init__(message)
        self.span = span


@dataclass(kw_only=True)
class TriggerState:
    """What the triggers read at one step; arrays broadcast against each other."""

    pnl_percent: np.ndarray
    pnl_capital: np.ndarray
    days_left: float
    expired: bool
    price: np.ndarray
    open_price: np.ndarray
    iv: np.ndarray
    open_iv: np.ndarray
    drawdown: np.ndarray
    support: np.ndarray
    resistance: np.ndarray
    delta: np.ndarray
    requirement: Callable[[], np.ndarray]  # margin now; computed only when a trigger asks
    capital: float
    open_margin: np.ndarray
    unit_delta: np.ndarray | None = None  # options + the strategy's futures, per unit of size (no hedge)
    band_centre: np.ndarray | float | None = None
    band_width: np.ndarray | float | None = None
    _margin: np.ndarray | None = None

    def _required(self) -> np.ndarray:
        if self._margin is None:
            self._margin = self.requirement()
        return self._margin

    @property
    def margin_utilisation(self) -> np.ndarray:
        return self._required() / self.capital * 100.0

    @property
    def additional_margin(self) -> np.ndarray:
        return (self._required() / np.maximum(self.open_margin, 1e-9) - 1.0) * 100.0


Compiled = Callable[[TriggerState], np.ndarray]


def _strip(value: ast.Value) -> ast.Value:
    while isinstance(value, ast.Paren):
        value = value.value
    return value


def _number(value: ast.Value, what: str) -> float:
    q = quantity(_strip(value))
    if q is None:
        raise UnsupportedCondition(f"{what} needs a number", getattr(value, "span", None))
    return q


def _measure(name: str) -> Callable[[TriggerState], np.ndarray]:
    def price_move(s: TriggerState) -> np.ndarray:
        return (s.price / s.open_price - 1.0) * 100.0

    return {
        "pnl_percent": lambda s: s.pnl_percent,
        "days_left": lambda s: np.asarray(s.days_left),
        "price_retrace": price_move,
        "vega_crush": lambda s: (1.0 - s.iv / s.open_iv) * 100.0,
        "iv_change": lambda s: (s.iv / s.open_iv - 1.0) * 100.0,
        "drawdown": lambda s: s.drawdown,
        "margin_utilisation": lambda s: s.margin_utilisation,
        "additional_margin": lambda s: s.additional_margin,
    }[name]


_VARIABLES: dict[str, Callable[[TriggerState], np.ndarray]] = {
    "days_left": lambda s: np.asarray(s.days_left),
    "pnl": lambda s: s.pnl_capital,
    "delta": lambda s: s.delta,
    "iv": lambda s: s.iv * 100.0,
}


def _by(value: ast.Value | None, level: Callable[[TriggerState], np.ndarray]):
    """``support_broken(by)``: a price distance, or a percent of the level."""
    if value is None:
        return lambda s: 0.0
    inner = _strip(value)
    amount = _number(inner, "the distance")
    if isinstance(inner, ast.Percent) or (isinstance(inner, ast.Unary) and isinstance(_strip(inner.operand),
                                                                                       ast.Percent)):
        return lambda s: level(s) * amount / 100.0
    return lambda s: amount


def _delta_band(s: TriggerState) -> np.ndarray:
    if s.unit_delta is None or s.band_width is None:
        raise ValueError("delta_band needs the replay's unit delta and a fitted band (opl backtest)")
    with np.errstate(invalid="ignore"):
        return np.abs(s.unit_delta - s.band_centre) > s.band_width


def _call(call: ast.Call, history: bool = False) -> Compiled:
    name = call.func
    args = call.positional
    kwargs = call.keywords
    if name == "delta_band":
        if not history:
            raise UnsupportedCondition("`delta_band` is not supported by the simulator yet: it needs an in-sample "
                                       "history of the position's delta, which simulated paths do not have; run "
                                       "it with `opl backtest FILE --data DIR`", call.span)
        return _delta_band
    if name not in SUPPORTED_TRIGGERS:
        raise UnsupportedCondition(f"`{name}` is not supported by the simulator yet "
                                   f"(supported: {', '.join(SUPPORTED_TRIGGERS)})", call.span)
    if name == "expiry_passed":
        return lambda s: np.asarray(s.expired)
    if name == "additional_margin":
        # Only usable compared (``additional_margin(%) > 15``); alone it would mean "> 0".
        return lambda s: s.additional_margin > 0
    if name == "price_target_hit":
        target = _number(args[0] if args else kwargs["price"].value, "`price_target_hit`")
        return lambda s: np.where(s.open_price <= target, s.price >= target, s.price <= target)
    if name == "price_outside":
        low = _number(args[0] if args else kwargs["low"].value, "`price_outside`")
        high = _number(args[1] if len(args) > 1 else kwargs["high"].value, "`price_outside`")
        return lambda s: (s.price < low) | (s.price > high)
    if name in ("support_broken", "resistance_broken"):
        arg = args[0] if args else (kwargs["by"].value if "by" in kwargs else None)
        if name == "support_broken":
            by = _by(arg, lambda s: s.support)
            return lambda s: s.price < s.support - by(s)
        by = _by(arg, lambda s: s.resistance)
        return lambda s: s.price > s.resistance + by(s)
    compare = _strip(args[0]) if args else None
    if not isinstance(compare, ast.Compare) or compare.left is not None:
        raise UnsupportedCondition(f"`{name}` takes an open comparison such as `{name}(<-25%)`", call.span)
    op, bound, measure = _OPS[compare.op], _number(compare.right, f"`{name}`"), _measure(name)
    return lambda s: op(measure(s), bound)


def _operand(value: ast.Value) -> Callable[[TriggerState], np.ndarray]:
    value = _strip(value)
    if isinstance(value, ast.Name):
        if value.id not in _VARIABLES:
            raise UnsupportedCondition(f"the variable `{value.id}` is not supported by the simulator yet "
                                       f"(supported: {', '.join(SUPPORTED_VARIABLES)})", value.span)
        return _VARIABLES[value.id]
    if isinstance(value, ast.Call):
        if value.func not in ("additional_margin", "margin_utilisation", "drawdown", "pnl_percent"):
            raise UnsupportedCondition(f"`{value.func}` cannot be compared", value.span)
        if value.func not in SUPPORTED_TRIGGERS:  # pragma: no cover - all four are supported
            raise UnsupportedCondition(f"`{value.func}` is not supported by the simulator yet", value.span)
        return _measure(value.func)
    number = _number(value, "a comparison")
    return lambda s: np.asarray(number)


def compile_condition(value: ast.Value, *, history: bool = False) -> Compiled:
    """Compile a condition (``exit_triggers`` item, ``adjust_when``, ...) into a vectorised test.

    ``history`` says the replay runs over a history with a fitted delta band (`opl backtest`),
    which ``delta_band`` needs.

    Raises
    ------
    UnsupportedCondition
        For a trigger or variable the simulator does not evaluate (with its span).
    """
    value = _strip(value)
    if isinstance(value, ast.BoolOp):
        left, right = compile_condition(value.left, history=history), compile_condition(value.right,
                                                                                          history=history)
        if value.op == "and":
            return lambda s: np.logical_and(left(s), right(s))
        return lambda s: np.logical_or(left(s), right(s))
    if isinstance(value, ast.Not):
        inner = compile_condition(value.operand, history=history)
        return lambda s: np.logical_not(inner(s))
    if isinstance(value, ast.Call):
        return _call(value, history)
    if isinstance(value, ast.Name):
        return _call(ast.Call(value.id, (), value.span, value.span), history)
    if isinstance(value, ast.Compare) and value.left is not None:
        left, right, op = _operand(value.left), _operand(value.right), _OPS[value.op]
        return lambda s: op(left(s), right(s))
    raise UnsupportedCondition("not a condition the simulator can evaluate", getattr(value, "span", None))

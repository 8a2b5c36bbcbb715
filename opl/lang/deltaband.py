"""The arguments of the ``delta_band`` exit trigger (grammar/README.md §7.3, an extension).

``delta_band(k, window, objective, step, reopen)`` closes the position when its delta
leaves a band of ``k`` standard deviations of the delta's in-sample distribution (the
close rule of ``../shared/seeds/003_*``):

==============  ==========================================================  ==========
argument        meaning                                                     default
==============  ==========================================================  ==========
``k``           the band's width in standard deviations (a number > 0), or  ``auto``
                ``auto``: chosen in-sample from a grid by ``objective``
``window``      the in-sample window preceding each fit, calendar days      ``250d``
``objective``   what the in-sample choice of ``k`` optimises: the smallest  ``max_drawdown``
                ``max_drawdown`` or the largest ``sharpe``
``step``        the walk-forward step: the band is re-fitted every          ``30d``
                ``step`` on the ``window`` before it
``reopen``      after a band close: ``next_day`` opens the strategy afresh   ``next_day``
                at the next session (strikes re-resolved there, the listed
                expiry nearest the tenor), as the seed's strategy opens
                whenever it is flat at a day's start; ``never`` stays flat
                until the next cycle
==============  ==========================================================  ==========

This module reads the call into a `DeltaBandSpec`; the checker turns a
`DeltaBandError` into E105 at the argument, and the backtest runs the spec. It has no
numeric dependencies (the front end never imports numpy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from opl.lang import ast
from opl.errors import OplError

__all__ = ["DeltaBandSpec", "DeltaBandError", "parse_delta_band", "delta_band_calls", "OBJECTIVES", "REOPENS",
           "DEFAULT_WINDOW_DAYS", "DEFAULT_STEP_DAYS", "MAX_K"]

Objective = Literal["max_drawdown", "sharpe"]
OBJECTIVES: tuple[str, ...] = ("max_drawdown", "sharpe")
Reopen = Literal["next_day", "never"]
REOPENS: tuple[str, ...] = ("next_day", "never")
DEFAULT_WINDOW_DAYS = 250.0
DEFAULT_STEP_DAYS = 30.0
MAX_K = 100.0
MAX_DAYS = 36_500.0
_PARAMS = ("k", "window", "objective", "step", "reopen")


class DeltaBandError(OplError, ValueError):
    """A bad ``delta_band`` argument; ``span`` locates it, ``help`` says what fits."""

    def __init__(self, message: str, span, help: str):
        super().__init__(message, help=help)
        self.span = span


@dataclass(frozen=True, kw_only=True)
class DeltaBandSpec:
    """``k`` None means ``auto`` (fitted in-sample); days are calendar days."""

    k: float | None = None
    window_days: float = DEFAULT_WINDOW_DAYS
    objective: Objective = "max_drawdown"
    step_days: float = DEFAULT_STEP_DAYS
    reopen: Reopen = "next_day"

    @property
    def auto(self) -> bool:
        return self.k is None

    def text(self) -> str:
        k = "auto" if self.k is None else f"{self.k:g}"
        return (f"delta_band(k={k}, window={self.window_days:g}d, objective={self.objective}, "
                f"step={self.step_days:g}d, reopen={self.reopen})")


def _strip(value: ast.Value) -> ast.Value:
    while isinstance(value, ast.Paren):
        value = value.value
    return value


def _number(value: ast.Value) -> float | None:
    value = _strip(value)
    if isinstance(value, ast.Unary) and isinstance(_strip(value.operand), ast.Number):
        inner = _strip(value.operand).value
        return -inner if value.op == "-" else inner
    return value.value if isinstance(value, ast.Number) else None


def _days(value: ast.Value, name: str) -> float:
    inner = _strip(value)
    if not isinstance(inner, ast.Duration) or inner.unit == "bd":
        raise DeltaBandError(f"`delta_band` {name} must be a duration in calendar days such as `250d`",
                             value.span, f"write e.g. `{name}={250 if name == 'window' else 30}d`")
    if not 0 < inner.days <= MAX_DAYS:
        raise DeltaBandError(f"`delta_band` {name} must be between 1d and {MAX_DAYS:g}d, found {inner.days:g}d",
                             value.span, f"write e.g. `{name}={250 if name == 'window' else 30}d`")
    return inner.days


# The arguments that name one of a closed set: (choices, default, help).
_CHOICES = {
    "objective": (OBJECTIVES, "max_drawdown", "`max_drawdown` picks the k with the smallest in-sample drawdown, "
                                              "`sharpe` the largest in-sample Sharpe ratio"),
    "reopen": (REOPENS, "next_day", "`next_day` opens the strategy afresh the session after a band close (the "
                                    "seed's rule); `never` stays flat until the next cycle"),
}


def _choice(values: dict[str, ast.Value], name: str) -> str:
    choices, default, help = _CHOICES[name]
    if name not in values:
        return default
    raw = _strip(values[name])
    if not isinstance(raw, ast.Name) or raw.id not in choices:
        raise DeltaBandError(f"`delta_band` {name} must be `{choices[0]}` or `{choices[1]}`", values[name].span, help)
    return raw.id


def parse_delta_band(call: ast.Call) -> DeltaBandSpec:
    """Read a ``delta_band(...)`` call (positional in the order k, window, objective, step, reopen, or
    keywords).

    Raises
    ------
    DeltaBandError
        An argument of the wrong kind or out of range, located at the argument.
    """
    values: dict[str, ast.Value] = {}
    for name, value in zip(_PARAMS, call.positional):
        values[name] = value
    for kw in call.keywords.values():
        if kw.name in values:
            raise DeltaBandError(f"`delta_band` argument `{kw.name}` is given twice", kw.name_span,
                                 "give each argument once")
        values[kw.name] = kw.value
    k = None
    if "k" in values:
        raw = _strip(values["k"])
        if isinstance(raw, ast.Name) and raw.id == "auto":
            k = None
        else:
            k = _number(raw)
            if k is None or not 0 < k <= MAX_K:
                raise DeltaBandError(f"`delta_band` k must be a number above 0 and at most {MAX_K:g}, or `auto`",
                                     values["k"].span, "write e.g. `k=1.5`, or `k=auto` to fit it in-sample")
    window = _days(values["window"], "window") if "window" in values else DEFAULT_WINDOW_DAYS
    step = _days(values["step"], "step") if "step" in values else DEFAULT_STEP_DAYS
    objective = _choice(values, "objective")
    reopen = _choice(values, "reopen")
    return DeltaBandSpec(k=k, window_days=window, objective=objective, step_days=step, reopen=reopen)


def delta_band_calls(condition) -> list:
    """Every ``delta_band(...)`` trigger inside a lowered condition (`opl.lang.ir.DeltaBand`, its ``spec`` read)."""
    from opl.lang import ir

    return ir.calls(condition, "delta_band")

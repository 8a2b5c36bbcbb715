"""The typed meaning of an OPL-Lang file: what `opl.lang.lower` builds from the syntax tree.

Every section keeps the spans of the statements it came from, so later passes (checks,
compiler) can point at the source. Values a field did not set stay None; defaults are
applied by the stage that needs them and documented in grammar/README.md.

Conditions (``adjust_when``, ``exit_triggers``, guards, ``target``), actions
(``adjust_playbook``), stop rules and hypotheses are typed values of `opl.lang.ir`, validated
against `opl.lang.vocabulary` when lowered; the document holds no syntax-tree node.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Literal

from opl.lang import ir
from opl.lang.legs import LegExpr
from opl.lang.source import Span

Direction = Literal["Bull", "Bear", "RangeBound", "Breakout", "Neutral", "NotBull", "NotBear"]


@dataclass
class Market:
    """§3.1 market inputs plus the levels of the spot team (extension)."""

    price: float | None = None
    iv: float | None = None  # annualised, as a fraction (0.25)
    rate: float | None = None  # as a fraction (0.02)
    time: _dt.date | None = None
    support: float | None = None
    resistance: float | None = None
    entry_price: float | None = None  # underlying price when the position was opened (W402)
    open_interest: float | None = None  # of the traded contracts (W408)


@dataclass
class Underlying:
    """What the options are written on (extension): ``underlying Future(2026-05-15)``."""

    kind: Literal["stock", "etf", "future", "leveraged_etf"] = "stock"
    expiry: _dt.date | None = None
    beta: float | None = None
    symbol: str | None = None
    exchange: str | None = None
    exercise: Literal["American", "European"] | None = None  # None: the exchange's rule
    span: Span | None = None


@dataclass
class Intent:
    """§3.2 intent fields (rc6 adds price_target, vol_target)."""

    direction: Direction | None = None
    vol: Literal["up", "down", "flat"] | None = None
    vega_style: Literal["Debit", "Credit"] | None = None
    holding_horizon_days: float | None = None
    holding_horizon_label: str | None = None  # intraday / swing / multi-week
    price_target: float | None = None
    vol_target: float | None = None


@dataclass
class Constraints:
    """§3.3 resource and risk constraints (rc6 adds max_risk, premium_offset)."""

    capital_limit: float | None = None
    liquidity_floor: float | None = None
    granularity: int | None = None
    ban_leveraged_longdated: bool = False
    max_risk: float | None = None  # an amount; `max_risk 3%` resolves to 3% of capital_limit
    max_risk_share: float | None = None  # the share when written as a percentage (0.03)
    premium_offset: float | None = None  # fraction of the debit (0.4)
    currency: str | None = None


@dataclass
class Adjust:
    """§5: the adjustment module."""

    when: ir.Condition | None = None
    playbook: tuple[ir.Call, ...] = ()
    abort_if: ir.Condition | None = None


@dataclass
class Exit:
    """§6: the exit module. ``declared`` is False when the file wrote none (W404)."""

    mode: Literal["first_hit", "all_required", "machine_decide"] = "first_hit"
    score_fn: str | None = None
    triggers: tuple[ir.Condition, ...] = ()
    appended: tuple[ir.Condition, ...] = ()  # exit_triggers += ...
    declared: bool = False


@dataclass
class Guard:
    """A §3.3 guard rule: ``avoid_leg_if <cond>`` or ``warn_if <cond>``."""

    kind: Literal["avoid_leg_if", "warn_if"]
    condition: ir.Condition
    span: Span
    builtin: bool = False


@dataclass
class HedgeRule:
    """``hedge delta with Future every 1d band 0.05 keep 10% along direction`` (extension).

    The hedge trades ``instrument`` every ``every_days`` (or when net delta leaves
    ``band``, a fraction of the position's lots) towards a target net delta of
    ``keep × direction × position size``; grammar/README.md defines it precisely.
    """

    greek: Literal["delta"] = "delta"
    instrument: str = "Future"
    every_days: float | None = 1.0
    band: float | None = None
    keep: float = 0.0  # fraction, 0.10 for 10%
    along: Literal["direction", "long", "short", "none"] = "none"
    span: Span | None = None


@dataclass
class AssignmentPolicy:
    """``on_assignment hedge_and_close()`` or ``take_delivery(storage=2/day, funding=3%)``."""

    action: Literal["hedge_and_close", "take_delivery"] = "hedge_and_close"
    storage_per_day: float = 0.0  # currency per tonne (unit) per day
    funding_rate: float = 0.0  # annual fraction
    basis: float = 0.0  # price units, spot minus futures at delivery
    hold_days: float = 30.0
    span: Span | None = None


@dataclass
class RiskControls:
    """Stop loss and margin buffer (extension)."""

    stop_loss: float | None = None  # fraction of capital
    margin_buffer: float | None = None  # fraction of margin held back before a call is met
    capital: float | None = None  # account equity returns are measured against


@dataclass
class ModelComponent:
    """One price-model term: ``garch(alpha=0.08)``, ``jump``, ``regime``, ``gbm``."""

    name: str
    params: dict[str, float] = field(default_factory=dict)
    span: Span | None = None


@dataclass
class Scenario:
    """A stress or sensitivity scenario: ``vol_up(+50%)`` → name vol_up, value 0.5, form
    ``percent``; ``slippage(x3)`` → value 3, form ``factor``; ``hit_rate(0.7)`` → ``number``."""

    name: str
    value: float | None
    span: Span | None = None
    form: Literal["percent", "factor", "number"] = "number"


@dataclass
class Experiment:
    """The ``experiment { ... }`` block (extension); defaults in grammar/README.md."""

    model: tuple[ModelComponent, ...] = ()
    calibration: str | None = None
    calibration_file: str | None = None  # `calibration file("calib.json")`, as written
    calibration_span: Span | None = None
    hit_rate: float | None = None
    paths: int | None = None
    steps_per_day: int | None = None
    seed: int | None = None
    horizon_months: int | None = None
    sizes: tuple[float, ...] = ()
    stress: tuple[Scenario, ...] = ()
    sensitivity: tuple[Scenario, ...] = ()
    target: ir.Condition | None = None
    metrics: tuple[str, ...] = ()
    hypotheses: tuple[ir.Call, ...] = ()  # arguments named by position: "1", "2", ...
    stop: tuple[ir.Call, ...] = ()
    smile: dict[str, float] = field(default_factory=dict)  # `iv smile(spread=..., ...)`: fractions
    smile_span: Span | None = None
    span: Span | None = None


@dataclass
class StrategyDef:
    name: str
    expr: LegExpr
    span: Span
    name_span: Span


@dataclass
class Document:
    """Everything a file says, typed; built by `opl.lang.lower.lower`."""

    version: str | None = None
    strategy: StrategyDef | None = None
    definitions: dict[str, StrategyDef] = field(default_factory=dict)
    # names of every `S = …` written, including those whose legs failed to lower (their
    # errors are reported; "no strategy" would be a second, false finding)
    bindings_written: list[str] = field(default_factory=list)
    market: Market = field(default_factory=Market)
    underlying: Underlying | None = None
    intent: Intent = field(default_factory=Intent)
    constraints: Constraints = field(default_factory=Constraints)
    adjust: Adjust = field(default_factory=Adjust)
    exit: Exit = field(default_factory=Exit)
    guards: list[Guard] = field(default_factory=list)
    hedge: HedgeRule | None = None
    assignment: AssignmentPolicy | None = None
    risk: RiskControls = field(default_factory=RiskControls)
    experiment: Experiment | None = None
    spans: dict[str, Span] = field(default_factory=dict)  # field name → statement span

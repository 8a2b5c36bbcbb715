"""What a replay is asked to run and what it gives back: the strategy, the run, the variants, the result.

`StrategySpec` is the strategy as the replay trades it (per unit of size), `RunSpec` everything about a run
that is not the strategy (the market's process or given months, the rule pack, the capital, paths, chunks
and the engine), `Variant` one replay on shared paths (a size, cost and margin multipliers) and
`ReplayResult` what every variant earned and risked on every path. They are plain frozen records, apart from
the replay that reads them (`opl.runtime.engine.replay`): the facade, the backtest, the loop and the cluster
build and pass them without importing the replay's machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np

from opl.runtime.engine.adjust import AdjustSpec
from opl.runtime.engine.exercise import AssignmentSpec
from opl.runtime.engine.guards import GuardRule
from opl.runtime.engine.hedging import HedgeSpec
from opl.runtime.engine.legspec import Levels, OptionLeg
from opl.runtime.engine.marking import SmileRule
from opl.runtime.engine.processes import ProcessSpec
from opl.runtime.engine.scores import ScoreFunction
from opl.runtime.engine.triggers import TriggerState

__all__ = ["StrategySpec", "Variant", "RunSpec", "ReplayResult", "CHUNK", "DAYS_PER_YEAR"]


CHUNK = 10_000  # paths a chunk: each draws from its own seed, [seed, chunk]
DAYS_PER_YEAR = 365.0


@dataclass(frozen=True, kw_only=True)
class StrategySpec:
    """The strategy as the replay runs it, per unit of size (size 1 = the file's quantities)."""

    legs: tuple[OptionLeg, ...]
    futures: int = 0  # the strategy's own futures lots (signed), held through the month
    tenor_days: float = 30.0
    multiplier: float
    contract_size: float
    hedge: HedgeSpec | None = None
    assignment: AssignmentSpec = field(default_factory=AssignmentSpec)
    exit_mode: Literal["first_hit", "all_required", "machine_decide"] = "first_hit"
    exit_triggers: tuple[Callable[[TriggerState], np.ndarray], ...] = ()
    guard_days: float | None = 2.0
    stop_loss: float | None = None
    margin_buffer: float = 0.0
    levels: Levels = field(default_factory=Levels)
    smile: SmileRule = field(default_factory=SmileRule)
    rate: float = 0.0
    greeks: bool = False  # mark gamma too (the adjustment module, structure_destabilised and scores read it)
    leg_numbers: tuple[int, ...] = ()  # each option leg's index in the file's normalised legs (default: order)
    futures_legs: tuple[tuple[int, int], ...] = ()  # (file index, signed lots) of each futures leg
    score: ScoreFunction | None = None  # machine_decide's score function (opl.runtime.engine.scores)
    score_threshold: float | None = None  # None: the function's own
    adjust: AdjustSpec | None = None  # the adjustment module (opl.runtime.engine.adjust)
    guards: tuple[GuardRule, ...] = ()  # avoid_leg_if / warn_if rules, the defaults first (opl.runtime.engine.guards)
    bands: tuple[float, float, float] = (0.25, 0.10, 0.5)  # structure_destabilised's delta, gamma, vega bands


@dataclass(frozen=True, kw_only=True)
class Variant:
    """One replay on shared paths: a position size and cost/margin multipliers."""

    size: float = 1.0
    fee_factor: float = 1.0
    slippage_factor: float = 1.0
    margin_factor: float = 1.0
    band_k: float = 1.0  # multiplies the given months' delta-band width (the walk-forward's grid of k)


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    """Everything about a run that is not the strategy.

    ``source``, when set, gives the months instead of ``process``: called with (chunk,
    paths) it returns an object whose ``next_month()`` yields `months.MarkedMonth` objects.
    """

    process: ProcessSpec | None
    pack: object  # opl.runtime.market.rules.RulePack
    price: float
    capital: float
    paths: int
    months: int = 12
    steps_per_day: int = 1
    days_per_month: int = 21
    seed: int = 0
    chunk: int = CHUNK
    option_ticks: float = 1.0
    futures_ticks: float = 1.0
    exact_american: bool = False
    source: Callable[[int, int], object] | None = None
    engine: Literal["fast", "reference"] = "fast"  # compiled kernels (opl.runtime.engine.kernels) or the numpy reference
    cash_rate: float | None = None  # interest on the strategy's cash a year (None: the strategy's rate)
    margin_rate: float | None = None  # what margin deposits earn a year (None: the cash rate)
    workers: int = 0  # processes replaying chunks side by side (0: one per core); results do not depend on it


@dataclass
class ReplayResult:
    """Per variant (first axis) and path: monthly P&L, ledger, drawdown and margin peaks."""

    variants: tuple[Variant, ...]
    capital: float
    monthly: np.ndarray  # (V, P, M) currency
    buckets: dict[str, np.ndarray]  # (V, P)
    counters: dict[str, np.ndarray]  # (V, P)
    max_drawdown: np.ndarray  # (V, P) fraction of the peak
    peak_margin: np.ndarray  # (V, P) margin / capital
    signal_hits: tuple[int, int] = (0, 0)  # months whose realised regime matched the signal, months with a regime
    trace: dict[str, np.ndarray] | None = None
    actions: tuple[str, ...] = ()  # the playbook's actions as written (counters adjust_done_i, adjust_aborted_i)

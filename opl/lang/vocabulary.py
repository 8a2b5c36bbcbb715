"""The closed vocabularies of OPL-Lang: fields, triggers, guard variables, actions,
experiment settings, price models and scenarios.

Each entry is data, so the language reference (grammar/README.md), the checker and the
LLM prompt all read the same lists; a test keeps the README in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ArgKind = Literal["number", "percent", "tenor", "compare", "name", "any", "unit"]


@dataclass(frozen=True)
class Signature:
    """A trigger/action signature: positional parameters, then keywords, all optional
    beyond ``required``."""

    params: tuple[tuple[str, ArgKind], ...] = ()
    required: int = 0
    doc: str = ""


# --------------------------------------------------------------------------- fields

MARKET_FIELDS = ("price", "iv", "rate", "time", "support", "resistance", "entry_price", "open_interest")
UNDERLYING_FIELDS = ("underlying", "symbol", "exchange", "exercise")
INTENT_FIELDS = ("direction_intent", "intent", "vol_intent", "vega_style", "holding_horizon",
                 "price_target", "vol_target")
CONSTRAINT_FIELDS = ("capital_limit", "liquidity_floor", "granularity", "ban_leveraged_longdated",
                     "max_risk", "premium_offset")
ADJUST_FIELDS = ("adjust_when", "adjust_playbook", "abort_if")
EXIT_FIELDS = ("exit_mode", "exit_triggers")
GUARD_FIELDS = ("avoid_leg_if", "warn_if")
EXTENSION_FIELDS = ("hedge", "on_assignment", "stop_loss", "margin_buffer", "capital")
BLOCKS = ("experiment",)

ALL_FIELDS = (MARKET_FIELDS + UNDERLYING_FIELDS + INTENT_FIELDS + CONSTRAINT_FIELDS + ADJUST_FIELDS
              + EXIT_FIELDS + GUARD_FIELDS + EXTENSION_FIELDS)
REPEATABLE_FIELDS = frozenset(GUARD_FIELDS)

DIRECTIONS = ("Bull", "Bear", "RangeBound", "Breakout", "Neutral", "NotBull", "NotBear")
VEGA_STYLES = ("Debit", "Credit")
HORIZON_LABELS = ("intraday", "swing", "multi-week")
EXIT_MODES = ("first_hit", "all_required", "machine_decide")
# Built-in score functions of ``machine_decide(score_fn)``; their formulas are in runtime/engine/scores.py.
SCORE_FUNCTIONS: dict[str, str] = {
    "trigger_vote": "share of the exit triggers that hold; closes at 0.5",
    "profit_capture": "premium captured against time elapsed, P / (0.5 + 0.5 T); closes at 1",
    "pnl_greeks_time": "loss, gamma and profit with time, 2 max(-P, 0) + 4 G + max(P, 0)(1 + T); closes at 1",
}
EXCHANGES = ("CZCE", "DCE", "SHFE", "INE", "GFEX", "CFFEX", "SSE", "SZSE", "CBOE", "US")

# --------------------------------------------------------------------------- primitives

PRIMITIVES = ("Cash", "Stock", "Future", "ETF", "LeveragedETF", "Option")

# --------------------------------------------------------------------------- conditions

_CMP = (("condition", "compare"),)

TRIGGERS: dict[str, Signature] = {
    "price_target_hit": Signature((("price", "number"),), 1, "the underlying reaches the price"),
    "pnl_percent": Signature(_CMP, 1, "position P&L as a percentage of the premium or margin at risk"),
    "days_left": Signature(_CMP, 1, "calendar days to the nearest expiry"),
    "expiry_passed": Signature((), 0, "the options have expired"),
    "structure_destabilised": Signature((("measure", "name"),), 0, "the Greeks moved beyond their band"),
    "price_retrace": Signature(_CMP, 1, "move of the underlying since entry, in percent"),
    "vega_crush": Signature(_CMP, 1, "fall of implied volatility since entry, in percent"),
    "iv_change": Signature(_CMP, 1, "change of implied volatility since entry, in percent"),
    "additional_margin": Signature((("unit", "unit"),), 0, "extra margin called, in percent of initial"),
    "margin_utilisation": Signature(_CMP, 0, "margin used / capital, in percent"),
    "drawdown": Signature(_CMP, 1, "drawdown of the account from its peak, in percent"),
    "delta_band": Signature((("k", "any"), ("window", "tenor"), ("objective", "name"), ("step", "tenor"),
                             ("reopen", "name")), 0,
                            "position delta beyond k standard deviations of its in-sample distribution "
                            "(k a number or `auto`, fitted walk-forward; re-opened the next day; §7.3)"),
    "price_outside": Signature((("low", "number"), ("high", "number")), 2, "price leaves [low, high]"),
    "support_broken": Signature((("by", "percent"),), 0, "price below the support level (by a distance or a %)"),
    "resistance_broken": Signature((("by", "percent"),), 0,
                                   "price above the resistance level (by a distance or a %)"),
}

# Variables usable in guard rules and bare comparisons (``days_left < 2d``).
VARIABLES: dict[str, str] = {
    "days_left": "calendar days to the leg's expiry (tenor)",
    "strike_offset": "|K/price − 1| of an out-of-the-money leg, in percent (0 when ITM)",
    "moneyness": "K/price − 1, in percent",
    "leg_pnl": "the leg's unrealised P&L as a percentage of its entry premium",
    "pnl": "the position's P&L as a percentage of capital",
    "delta": "the position's net delta in lots",
    "iv": "implied volatility, in percent",
    "qty": "the leg's quantity in lots",
    "open_interest": "open interest of the leg's contract",
    "median_monthly_return": "median monthly return, percent",
    "mean_monthly_return": "mean monthly return, percent",
    "loss_probability": "probability of a losing month, percent",
    "max_drawdown_p95": "95th percentile of the maximum drawdown, percent",
    "max_drawdown_p99": "99th percentile of the maximum drawdown, percent",
    "cvar_95": "conditional value at risk at 95% (monthly), percent",
    "cvar_99": "conditional value at risk at 99% (monthly), percent",
    "margin_call_probability": "probability of at least one margin call, percent",
    "forced_liquidation_probability": "probability of a forced liquidation, percent",
    "peak_margin_p95": "95th percentile of peak margin utilisation, percent",
}

TARGET_METRICS = tuple(k for k in VARIABLES if k not in (
    "days_left", "strike_offset", "moneyness", "leg_pnl", "pnl", "delta", "iv", "qty", "open_interest"))

# --------------------------------------------------------------------------- actions

ACTIONS: dict[str, Signature] = {
    "roll": Signature((("leg", "number"), ("to", "tenor")), 0, "roll legs to the next expiry"),
    "roll_nearest_term": Signature((), 0, "roll the options to the nearest listed expiry"),
    "hedge": Signature((("greek", "name"),), 0, "trade the hedge instrument now"),
    "hedge_gamma": Signature((("target", "number"),), 0, "buy options until |gamma| ≤ target"),
    "delta_neutralise": Signature((("keep", "percent"),), 0, "trade futures to the target delta"),
    "shift_strike": Signature((("leg", "number"), ("by", "percent")), 2, "move a leg's strike (absolute or %)"),
    "roll_tenor": Signature((("leg", "number"), ("by", "tenor")), 2, "move a leg's expiry by days"),
    "replace_leg": Signature((("leg", "number"), ("with", "any")), 2, "swap a leg for another"),
    "add_leg": Signature((("leg", "any"),), 1, "add a leg"),
    "remove_leg": Signature((("leg", "number"),), 1, "remove a leg"),
    "scale_qty": Signature((("leg", "number"), ("factor", "number")), 2, "multiply a leg's quantity"),
    "close": Signature((("leg", "number"),), 0, "close the position (or one leg)"),
}

# --------------------------------------------------------------------------- experiment

EXPERIMENT_SETTINGS = ("model", "calibration", "signal", "paths", "steps_per_day", "seed", "horizon",
                       "sizes", "stress", "sensitivity", "target", "metrics", "hypotheses", "stop", "iv")
PRICE_MODELS = ("gbm", "garch", "gjr", "jump", "regime")
# `iv smile(spread=8%, floor=10%, skew=-0.2, curvature=2)`: the simulator's implied-volatility rule
# (opl.runtime.engine.marking.SmileRule); parameter → (low, high, meaning), bounds inclusive.
SMILE_PARAMETERS: dict[str, tuple[float, float, str]] = {
    "spread": (-0.9, 5.0, "implied over model volatility"),
    "floor": (0.0, 5.0, "implied volatility floor"),
    "skew": (-10.0, 10.0, "slope of the smile in log-moneyness"),
    "curvature": (0.0, 100.0, "curvature of the smile"),
}
CALIBRATIONS = ("historical", "implied", "hybrid", "file")
SCENARIOS: dict[str, str] = {  # each one a surprise; the exact definitions: opl/simulation/scenarios.py
    "vol_up": "options opened at the model's implied volatility, then realised volatility (and the marks that "
              "follow it) × (1 + value), unannounced",
    "vol_down": "options opened at the model's implied volatility, then realised volatility (and the marks) × "
                "(1 − value)",
    "gap": "an overnight gap of value (e.g. −8%) on a random day of each month, unannounced",
    "jump_intensity": "options opened at the model's jumps, then jumps arrive value times as often",
    "slippage": "slippage multiplied by the factor (x3; +50% is x1.5)",
    "fees_up": "fees multiplied by the factor (x2; +50% is x1.5)",
    "sr_shift": "strikes set on the given levels, then the market drifts to levels shifted by value",
    "hit_rate": "direction signal hit rate set to value",
    "hit_rate_down": "direction signal hit rate lowered by value",
    "margin_up": "exchange margin rates raised by value (+50%, or x1.5)",
    "drift": "monthly drift added against the signal's direction",
}
STOP_CONDITIONS: dict[str, Signature] = {
    "converge": Signature((("rounds", "number"), ("min_gain", "percent")), 0, "objective gain stalls"),
    "budget": Signature((("iterations", "number"), ("minutes", "number"), ("tokens", "number"), ("cost", "number")),
                        0, "iteration, wall-time, token and cost budget (cost needs `opl loop --token-price`)"),
    "target_met": Signature((), 0, "stop as soon as the target holds"),
}

"""Result metrics of a replay and the results object `opl simulate` prints and writes.

Units: returns, drawdowns, probabilities and margin utilisation are in **percent** in
the target metrics (grammar/README.md §10.2) and in the JSON; currency amounts are in the
rule pack's currency. Definitions, over all paths (and, for monthly figures, all months
of the horizon pooled):

``monthly_return``        a month's P&L / capital; mean, median, p1 … p95
``loss_probability``      share of months with a negative return
``max_drawdown``          per path, the largest fall of equity from its running peak, as a
                          share of that peak; p50, p95, p99 across paths
``cvar_95`` / ``cvar_99`` the mean loss of the worst 5% / 1% of months (positive = loss)
``attribution``           mean P&L per month by ledger bucket (`opl.runtime.ledger`)
``margin``                peak margin / capital per path (p50, p95, p99, max); the share of
                          paths with a margin call, and with a forced liquidation
``exercise``              share of path-months with an assignment, and with a delivery
``trades``                option lots, futures lots, hedge trades and exits per month; the
                          share of months closed early (by a trigger, the stop loss or an
                          adjustment's abort with more than the guard's 2 days left)
``adjustments``           rounds per month, the share of months closed by the adjustment
                          module (``abort_if`` or ``close()``), and per playbook action the
                          times it traded and was aborted per month (`opl.runtime.adjust`)
``guards``                legs not opened by ``avoid_leg_if`` (W401) and ``warn_if`` alerts
                          (W402) per month, and the share of paths with an alert
                          (`opl.runtime.guards`)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from opl.runtime.records import json_safe

from opl.runtime.ledger import BUCKETS

__all__ = ["RunMetrics", "run_metrics", "target_verdict", "SimulationResult", "SCHEMA"]

SCHEMA = "opl.simulate/1"


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else float("nan")


@dataclass(kw_only=True)
class RunMetrics:
    """The metrics of one variant of one replay (module docstring)."""

    size: float
    paths: int
    months: int
    monthly_return: dict[str, float]
    loss_probability: float
    max_drawdown: dict[str, float]
    cvar: dict[str, float]
    attribution: dict[str, dict[str, float]]
    margin: dict[str, Any]
    exercise: dict[str, float]
    trades: dict[str, float]
    adjustments: dict[str, Any] = field(default_factory=dict)
    guards: dict[str, float] = field(default_factory=dict)

    def target_values(self) -> dict[str, float]:
        """The metrics a ``target`` condition may name (opl.vocabulary.TARGET_METRICS), percent."""
        return {"median_monthly_return": self.monthly_return["median"],
                "mean_monthly_return": self.monthly_return["mean"],
                "loss_probability": self.loss_probability,
                "max_drawdown_p95": self.max_drawdown["p95"], "max_drawdown_p99": self.max_drawdown["p99"],
                "cvar_95": self.cvar["95"], "cvar_99": self.cvar["99"],
                "margin_call_probability": self.margin["margin_call_probability"],
                "forced_liquidation_probability": self.margin["forced_liquidation_probability"],
                "peak_margin_p95": self.margin["peak_utilisation"]["p95"]}

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "paths": self.paths, "months": self.months,
                "monthly_return": self.monthly_return, "loss_probability": self.loss_probability,
                "max_drawdown": self.max_drawdown, "cvar": self.cvar, "attribution": self.attribution,
                "margin": self.margin, "exercise": self.exercise, "trades": self.trades,
                "adjustments": self.adjustments, "guards": self.guards, "target_metrics": self.target_values()}


def run_metrics(result, variant: int) -> RunMetrics:
    """Metrics of variant ``variant`` of an `opl.runtime.replay.ReplayResult`."""
    capital = result.capital
    monthly = result.monthly[variant]
    paths, months = monthly.shape
    r = (monthly / capital * 100.0).ravel()
    sorted_r = np.sort(r)

    def cvar(level: float) -> float:
        k = max(1, int(math.ceil(sorted_r.size * (1 - level))))
        return float(-sorted_r[:k].mean())

    dd = result.max_drawdown[variant] * 100.0
    util = result.peak_margin[variant] * 100.0
    c = {k: v[variant] for k, v in result.counters.items()}
    path_months = paths * months
    per_month = {k: float(v[variant].sum() / path_months) for k, v in result.buckets.items()}
    attribution = {"per_month": {**{k: per_month[k] for k in BUCKETS}, "total": float(sum(per_month.values()))}}
    attribution["percent_of_capital"] = {k: v / capital * 100.0 for k, v in attribution["per_month"].items()}
    return RunMetrics(
        size=result.variants[variant].size, paths=paths, months=months,
        monthly_return={"mean": float(r.mean()), "median": float(np.median(r)), "std": float(r.std()),
                        **{f"p{q}": _pct(r, q) for q in (1, 5, 25, 75, 95)}},
        loss_probability=float(np.mean(r < 0) * 100.0),
        max_drawdown={"mean": float(dd.mean()), **{f"p{q}": _pct(dd, q) for q in (50, 95, 99)}},
        cvar={"95": cvar(0.95), "99": cvar(0.99)},
        attribution=attribution,
        margin={"peak_utilisation": {**{f"p{q}": _pct(util, q) for q in (50, 95, 99)}, "max": float(util.max())},
                "margin_call_probability": float(np.mean(c["margin_calls"] > 0) * 100.0),
                "forced_liquidation_probability": float(np.mean(c["liquidations"] > 0) * 100.0),
                "margin_calls_per_path": float(c["margin_calls"].mean())},
        exercise={"assignment_share": float(c["assigned_months"].sum() / path_months * 100.0),
                  "delivery_share": float(c["delivered_months"].sum() / path_months * 100.0),
                  "skipped_share": float(c["skipped_months"].sum() / path_months * 100.0)},
        trades={"option_lots_per_month": float(c["option_lots"].sum() / path_months),
                "futures_lots_per_month": float(c["futures_lots"].sum() / path_months),
                "hedge_trades_per_month": float(c["hedge_trades"].sum() / path_months),
                "exits_per_month": float(c["exits"].sum() / path_months),
                "early_exit_share": float(c["early_exits"].sum() / path_months * 100.0)},
        adjustments={"rounds_per_month": float(c["adjust_rounds"].sum() / path_months) if "adjust_rounds" in c else 0.0,
                     "exit_share": float(c["adjust_exits"].sum() / path_months * 100.0) if "adjust_exits" in c else 0.0,
                     "actions": [{"action": text,
                                  "done_per_month": float(c[f"adjust_done_{i}"].sum() / path_months),
                                  "aborted_per_month": float(c[f"adjust_aborted_{i}"].sum() / path_months)}
                                 for i, text in enumerate(getattr(result, "actions", ()))]},
        guards={"avoided_legs_per_month": float(c["avoided_legs"].sum() / path_months),
                "alerts_per_month": float(c["alerts"].sum() / path_months),
                "alert_path_share": float(np.mean(c["alerts"] > 0) * 100.0)})


def target_verdict(target, values: dict[str, float]) -> bool | None:
    """Evaluate a ``target`` condition (an `opl.ast` value) on metric values in percent."""
    if target is None:
        return None
    from opl.conditions import evaluate

    return evaluate(target, values)


@dataclass(kw_only=True)
class ScenarioResult:
    """A stress or sensitivity scenario run beside the base case."""

    name: str
    kind: str  # "stress" | "sensitivity"
    text: str
    size: float
    metrics: RunMetrics
    holds: bool | None
    definition: str = ""  # exactly what the scenario does (opl.scenarios)


@dataclass(kw_only=True)
class SimulationResult:
    """Everything `opl simulate` reports; `to_json` keys are stable (``SCHEMA``)."""

    file: str
    run: dict[str, Any]
    model: dict[str, Any]
    strategy: dict[str, Any]
    target: str | None
    base: RunMetrics
    base_holds: bool | None
    sizes: list[tuple[float, RunMetrics, bool | None]]
    recommended_size: dict[str, float] | None
    recommended_reason: str | None
    scenario_size: dict[str, Any] | None = None  # the size the scenarios ran at, and why
    scenarios: list[ScenarioResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plot_size: dict[str, Any] | None = None  # the size of the arrays below, and why that size
    equity: np.ndarray | None = field(default=None, repr=False)  # (paths, months + 1) at ``plot_size``
    drawdowns: np.ndarray | None = field(default=None, repr=False)
    peak_margin: np.ndarray | None = field(default=None, repr=False)
    monthly_returns: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return json_safe({
            "schema": SCHEMA, "file": self.file, "run": self.run, "model": self.model, "strategy": self.strategy,
            "target": {"condition": self.target, "holds": self.base_holds},
            "base": self.base.to_dict(),
            "sizes": [{"size": s, "holds": h, "metrics": m.to_dict()} for s, m, h in self.sizes],
            "recommended_size": self.recommended_size, "recommended_size_reason": self.recommended_reason,
            "scenario_size": self.scenario_size,
            "scenarios": [{"name": s.name, "kind": s.kind, "scenario": s.text, "size": s.size, "holds": s.holds,
                           "definition": s.definition, "metrics": s.metrics.to_dict()} for s in self.scenarios],
            "notes": list(self.notes)})

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def summary(self) -> str:
        """A plain-text summary, a few lines."""
        b = self.base
        m = b.monthly_return
        lines = [f"{self.file}: {self.run['paths']:,} paths x {self.run['horizon_months']} months, seed "
                 f"{self.run['seed']}, model {' + '.join(self.model['components'])}",
                 f"size {b.size:g}: median monthly return {m['median']:+.2f}% (mean {m['mean']:+.2f}%, "
                 f"p5 {m['p5']:+.2f}%), loss probability {b.loss_probability:.1f}%, max drawdown p95 "
                 f"{b.max_drawdown['p95']:.2f}% of peak equity, CVaR95 {b.cvar['95']:.2f}% of capital"]
        adj = b.adjustments
        if adj.get("actions"):
            lines.append(f"adjustments: {adj['rounds_per_month']:.2f} rounds a month; " + "; ".join(
                f"{a['action']} {a['done_per_month']:.2f} done, {a['aborted_per_month']:.2f} aborted"
                for a in adj["actions"]) + f"; {adj['exit_share']:.1f}% of months closed by an abort")
        g = b.guards
        if g and (g["avoided_legs_per_month"] or g["alerts_per_month"]):
            lines.append(f"guards: {g['avoided_legs_per_month']:.2f} legs avoided (W401) and "
                         f"{g['alerts_per_month']:.2f} alerts (W402) a month")
        if self.target is not None:
            verdict = {True: "holds", False: "fails", None: "cannot be decided"}[self.base_holds]
            lines.append(f"target `{self.target}` {verdict} at size {b.size:g}")
        if self.recommended_size is not None:
            lines.append(f"recommended size: {self.recommended_size['low']:g} to {self.recommended_size['high']:g} lots")
        elif self.recommended_reason:
            lines.append(f"recommended size: none ({self.recommended_reason})")
        if self.scenario_size is not None:
            lines.append(f"scenarios at size {self.scenario_size['size']:g}: {self.scenario_size['reason']}")
        for s in self.scenarios:
            verdict = {True: "pass", False: "fail", None: "n/a"}[s.holds]
            lines.append(f"{s.kind} {s.text} at size {s.size:g}: median {s.metrics.monthly_return['median']:+.2f}%, "
                         f"loss {s.metrics.loss_probability:.1f}%, dd p95 {s.metrics.max_drawdown['p95']:.2f}% "
                         f"-> {verdict}")
            if s.definition:
                lines.append(f"  {s.text}: {s.definition}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

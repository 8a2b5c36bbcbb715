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
``attribution``           mean P&L per month by ledger bucket (`opl.runtime.engine.ledger`)
``margin``                peak margin / capital per path (p50, p95, p99, max); the share of
                          paths with a margin call, and with a forced liquidation
``exercise``              share of path-months with an assignment, and with a delivery
``trades``                option lots, futures lots, hedge trades and exits per month; the
                          share of months closed early (by a trigger, the stop loss or an
                          adjustment's abort with more than the guard's 2 days left)
``adjustments``           rounds per month, the share of months closed by the adjustment
                          module (``abort_if`` or ``close()``), and per playbook action the
                          times it traded and was aborted per month (`opl.runtime.engine.adjust`)
``guards``                legs not opened by ``avoid_leg_if`` (W401) and ``warn_if`` alerts
                          (W402) per month, and the share of paths with an alert
                          (`opl.runtime.engine.guards`)
``standard_errors``       the Monte Carlo standard error of each headline number, keyed like
                          ``target_metrics``: mean and median monthly return, loss probability,
                          drawdown p95 and p99, CVaR95 and CVaR99, in the metric's own units; the
                          path is the independent unit (`opl.runtime.results.standard_errors`); null
                          with fewer than two paths (a backtest)

The P&L buckets of ``attribution`` are named by the ledger (``premium`` is the options' P&L
marked to market — premium received less what the options are later worth — not the premium
collected); ``BUCKET_LABELS`` words them for people.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from opl.runtime.results.records import json_safe

from opl.runtime.engine.ledger import BUCKETS
from opl.runtime.results.standard_errors import cvar_ses, mean_se, quantile_se, share_se

__all__ = ["RunMetrics", "run_metrics", "with_errors", "SimulationResult", "SCHEMA", "BUCKET_LABELS", "HEADLINE",
           "headline", "pnl_by_source"]

#: The ledger's buckets (`opl.runtime.engine.ledger`) as a trader reads them; the JSON keeps the bucket names.
BUCKET_LABELS = {"premium": "options P&L (premium less buy-back/expiry value)",
                 "hedge": "hedge futures P&L", "assignment": "assigned futures and delivery",
                 "funding": "funding of delivered goods", "costs": "fees and slippage",
                 "adjustments": "adjustment trades' fees and slippage", "interest": "interest on cash",
                 "total": "total"}

#: The headline numbers, each shown with its Monte Carlo standard error: (target metric, label, unit).
HEADLINE = (("mean_monthly_return", "mean monthly return", "% of capital"),
            ("median_monthly_return", "median monthly return", "% of capital"),
            ("loss_probability", "loss probability", "% of months"),
            ("max_drawdown_p95", "max drawdown p95", "% of peak equity"),
            ("cvar_95", "CVaR95", "% of capital"))

SCHEMA = "opl.simulate/1"


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else float("nan")


def _pcts(values: np.ndarray, qs: tuple[int, ...]) -> dict[str, float]:
    """``{"p<q>": _pct(values, q)}`` for every ``q``, in one call: one copy and one partition of the values
    instead of one each (a hold-out's 600,000 returns; the numbers are each call's own, the order statistics
    being the same and the interpolation elementwise)."""
    if not values.size:
        return {f"p{q}": float("nan") for q in qs}
    return {f"p{q}": float(v) for q, v in zip(qs, np.percentile(values, list(qs)))}


def _sorted_median(sorted_values: np.ndarray) -> float:
    """``np.median`` of values already sorted, without its copy and partition: the mean of the middle one or
    two, as `np.median` takes it (NaN when a value is NaN: they sort last)."""
    n = sorted_values.size
    if not n or np.isnan(sorted_values[-1]):
        return float("nan")
    return float(np.mean(sorted_values[(n - 1) // 2:n // 2 + 1]))


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
    standard_errors: dict[str, float] = field(default_factory=dict)

    def target_values(self) -> dict[str, float]:
        """The metrics a ``target`` condition may name (opl.lang.vocabulary.TARGET_METRICS), percent."""
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
                "adjustments": self.adjustments, "guards": self.guards, "target_metrics": self.target_values(),
                "standard_errors": self.standard_errors}

    def with_error(self, metric: str, digits: int = 2, *, unit: str = "") -> str:
        """``value ± SE`` of a target metric (one Monte Carlo standard error; the value alone without one)."""
        return value_with_error(self.target_values()[metric], self.standard_errors.get(metric), digits,
                                signed=metric.endswith("monthly_return"), unit=unit)


def value_with_error(value: float | None, se: float | None, digits: int = 2, *, signed: bool = False,
                     unit: str = "") -> str:
    """``+0.42% ± 0.03%``: a value and its standard error at the same precision (``—`` for no value).

    ``digits`` grows (to 4 at most) until the error shows a significant digit: ``+0.0215% ± 0.0036%``, not
    ``+0.02% ± 0.00%``.
    """
    if value is None or not math.isfinite(value):
        return "—"
    if se is not None and math.isfinite(se) and se > 0:
        digits = max(digits, min(4, -math.floor(math.log10(se))))
    text = (f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}") + unit
    return text + (f" ± {se:.{digits}f}{unit}" if se is not None and math.isfinite(se) else "")


def headline(values: dict[str, float], errors: dict[str, float], *, capital: float | None = None,
             currency: str = "") -> str:
    """The headline numbers with their errors in one line (target-metric ``values`` and ``errors``, percent);
    with ``capital``, the mean month in currency too."""
    parts = []
    for key, label, unit in HEADLINE:
        text = f"{label} {value_with_error(values.get(key), errors.get(key), signed=key.endswith('return'), unit='%')}"
        parts.append(text + unit.removeprefix("%"))
        if key == "mean_monthly_return" and capital and values.get(key) is not None and math.isfinite(values[key]):
            parts[-1] += f" (about {values[key] / 100 * capital:+,.0f} {currency} a month)".replace("  ", " ")
    return ", ".join(parts)


def pnl_by_source(per_month: dict[str, float], currency: str, *, per: str = "month") -> str:
    """The attribution's mean P&L a month (or a backtest's cycle: ``per``) by bucket, labelled for people."""
    return "; ".join(f"{BUCKET_LABELS.get(k, k)} {v:+,.0f}" for k, v in per_month.items()) + f" {currency} a {per}"


def run_metrics(result, variant: int, *, errors: bool = True) -> RunMetrics:
    """Metrics of variant ``variant`` of an `opl.runtime.engine.runspec.ReplayResult`.

    ``errors=False`` leaves the standard errors out (``standard_errors`` empty; most of the work): a caller that
    needs the numbers first (a sweep's size pick) adds them later with `with_errors`, the same numbers.
    """
    capital = result.capital
    monthly = result.monthly[variant]
    paths, months = monthly.shape
    pm, sorted_r = _returns(result, variant)
    r = pm.ravel()

    def cvar(level: float) -> float:
        k = max(1, int(math.ceil(sorted_r.size * (1 - level))))
        return float(-sorted_r[:k].mean())

    dd = result.max_drawdown[variant] * 100.0
    util = result.peak_margin[variant] * 100.0
    c = {k: v[variant] for k, v in result.counters.items()}
    path_months = paths * months
    return RunMetrics(
        size=result.variants[variant].size, paths=paths, months=months,
        # Percentiles of the sorted returns: the same order statistics, without a partition of 600,000 values each.
        monthly_return={"mean": float(r.mean()), "median": _sorted_median(sorted_r), "std": float(r.std()),
                        **_pcts(sorted_r, (1, 5, 25, 75, 95))},
        loss_probability=float(np.mean(r < 0) * 100.0),
        max_drawdown={"mean": float(dd.mean()), **_pcts(dd, (50, 95, 99))},
        cvar={"95": cvar(0.95), "99": cvar(0.99)},
        attribution=_attribution(result, variant, capital, path_months),
        margin={"peak_utilisation": {**_pcts(util, (50, 95, 99)), "max": float(util.max())},
                "margin_call_probability": float(np.mean(c["margin_calls"] > 0) * 100.0),
                "forced_liquidation_probability": float(np.mean(c["liquidations"] > 0) * 100.0),
                "margin_calls_per_path": float(c["margin_calls"].mean())},
        **_counted(c, path_months, getattr(result, "actions", ())),
        standard_errors=_standard_errors(pm, sorted_r, dd) if errors else {})


def with_errors(metrics: RunMetrics, result, variant: int) -> RunMetrics:
    """``metrics`` (`run_metrics` of ``variant`` of ``result`` without errors) with its standard errors: what
    `run_metrics` gives with them."""
    pm, sorted_r = _returns(result, variant)
    return replace(metrics, standard_errors=_standard_errors(pm, sorted_r, result.max_drawdown[variant] * 100.0))


def _returns(result, variant: int) -> tuple[np.ndarray, np.ndarray]:
    """The monthly returns in % of capital (paths, months) — the path is the independent unit of every error —
    and all of them sorted."""
    pm = result.monthly[variant] / result.capital * 100.0
    return pm, np.sort(pm.ravel())


def _standard_errors(pm: np.ndarray, sorted_r: np.ndarray, dd: np.ndarray) -> dict[str, float]:
    """The headline metrics' Monte Carlo standard errors, the path the independent unit."""
    cvar95_se, cvar99_se = cvar_ses(pm, (0.95, 0.99))
    return {"mean_monthly_return": mean_se(pm), "median_monthly_return": quantile_se(pm, 0.5, flat_sorted=sorted_r),
            "loss_probability": share_se(pm < 0) * 100.0,
            "max_drawdown_p95": quantile_se(dd, 0.95), "max_drawdown_p99": quantile_se(dd, 0.99),
            "cvar_95": cvar95_se, "cvar_99": cvar99_se}


def _attribution(result, variant: int, capital: float, path_months: int) -> dict[str, dict[str, float]]:
    """The P&L by source a month, in currency and in % of capital."""
    per_month = {k: float(v[variant].sum() / path_months) for k, v in result.buckets.items()}
    attribution = {"per_month": {**{k: per_month[k] for k in BUCKETS}, "total": float(sum(per_month.values()))}}
    attribution["percent_of_capital"] = {k: v / capital * 100.0 for k, v in attribution["per_month"].items()}
    return attribution


def _counted(c: dict[str, np.ndarray], path_months: int, actions) -> dict[str, dict]:
    """The metrics read from the replay's counters: exercise, trades, adjustments and guards."""
    def per_month(name: str) -> float:
        return float(c[name].sum() / path_months)

    return dict(
        exercise={"assignment_share": _share(c["assigned_months"], path_months),
                  "delivery_share": _share(c["delivered_months"], path_months),
                  "skipped_share": _share(c["skipped_months"], path_months)},
        trades={"option_lots_per_month": per_month("option_lots"), "futures_lots_per_month": per_month("futures_lots"),
                "hedge_trades_per_month": per_month("hedge_trades"), "exits_per_month": per_month("exits"),
                "early_exit_share": _share(c["early_exits"], path_months)},
        adjustments={"rounds_per_month": per_month("adjust_rounds") if "adjust_rounds" in c else 0.0,
                     "exit_share": _share(c["adjust_exits"], path_months) if "adjust_exits" in c else 0.0,
                     "actions": [{"action": text, "done_per_month": per_month(f"adjust_done_{i}"),
                                  "aborted_per_month": per_month(f"adjust_aborted_{i}")}
                                 for i, text in enumerate(actions)]},
        guards={"avoided_legs_per_month": per_month("avoided_legs"), "alerts_per_month": per_month("alerts"),
                "alert_path_share": float(np.mean(c["alerts"] > 0) * 100.0)})


def _share(counts: np.ndarray, path_months: int) -> float:
    """A count over the path-months, in %."""
    return float(counts.sum() / path_months * 100.0)


@dataclass(kw_only=True)
class ScenarioResult:
    """A stress or sensitivity scenario run beside the base case."""

    name: str
    kind: str  # "stress" | "sensitivity"
    text: str
    size: float
    metrics: RunMetrics
    holds: bool | None
    definition: str = ""  # exactly what the scenario does (opl.simulation.scenarios)


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

    # ------------------------------------------------------------------ notebooks (opl.runtime.results.frames, .figures)

    def to_frame(self):
        """The metrics by size as a pandas DataFrame (`opl.runtime.results.frames.by_size`)."""
        from opl.runtime.results import frames

        return frames.by_size(self)

    def frames(self) -> dict:
        """Every named DataFrame: ``by_size``, ``scenarios``, ``monthly_returns`` (path × month) and
        ``attribution`` (`opl.runtime.results.frames`)."""
        from opl.runtime.results import frames

        return frames.frames(self)

    def scenario_frame(self):
        """The stress and sensitivity scenarios, one row each."""
        from opl.runtime.results import frames

        return frames.scenarios(self)

    def monthly_returns_frame(self):
        """Monthly returns in % of capital, one row per path, one column per month (at ``plot_size``)."""
        from opl.runtime.results import frames

        return frames.monthly_returns(self)

    def attribution_frame(self):
        """Mean P&L a month by source at the base size."""
        from opl.runtime.results import frames

        return frames.attribution(self)

    def _repr_html_(self) -> str:
        from opl.runtime.results import frames

        return frames.html_summary(self)

    def plot_returns(self):
        """Histogram of monthly returns (a matplotlib Figure; ``--report``'s returns.png)."""
        from opl.runtime.results import figures

        return figures.returns(self)

    def plot_drawdowns(self):
        """Histogram of each path's maximum drawdown (drawdown.png)."""
        from opl.runtime.results import figures

        return figures.drawdowns(self)

    def plot_equity(self):
        """Equity fan chart by month (equity.png)."""
        from opl.runtime.results import figures

        return figures.equity(self)

    def plot_margin(self):
        """Peak margin utilisation by path (margin.png)."""
        from opl.runtime.results import figures

        return figures.margin(self)

    def plot_size_sweep(self, metric: str = "median_monthly_return"):
        """A target metric by swept size with ± one standard error, the target's verdict marked."""
        from opl.runtime.results import figures

        return figures.size_sweep(self, metric)

    def summary(self) -> str:
        """A plain-text summary, a few lines."""
        b = self.base
        m = b.monthly_return
        lines = [f"{self.file}: {self.run['paths']:,} paths x {self.run['horizon_months']} months, seed "
                 f"{self.run['seed']}, model {' + '.join(self.model['components'])}",
                 f"size {b.size:g} (± one Monte Carlo standard error): "
                 + headline(b.target_values(), b.standard_errors, capital=self.run.get("capital"),
                            currency=self.run.get("currency", "")) + f"; p5 month {m['p5']:+.2f}%",
                 f"P&L by source at size {b.size:g}: "
                 + pnl_by_source(b.attribution["per_month"], self.run.get("currency", ""))]
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
            lines.append(f"{s.kind} {s.text} at size {s.size:g}: mean {s.metrics.with_error('mean_monthly_return', unit='%')}, "
                         f"median {s.metrics.with_error('median_monthly_return', unit='%')}, "
                         f"loss {s.metrics.with_error('loss_probability', 1, unit='%')}, "
                         f"dd p95 {s.metrics.with_error('max_drawdown_p95', unit='%')} -> {verdict}")
            if s.definition:
                lines.append(f"  {s.text}: {s.definition}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

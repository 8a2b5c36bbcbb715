"""The result of `opl backtest`: one history's equity, its cycles (the trades), the
walk-forward fits of the delta band, and the same history without the band.

Units as in `opl.runtime.results.metrics`: returns, drawdowns and shares in **percent** in the
JSON and the summary; currency in the rule pack's currency. ``metrics`` is the
simulator's `RunMetrics` over the single path with each cycle as a "month" (so the
target metrics read the same way); ``performance`` adds what a single history measures,
over every session from the first cycle's open to the last one's close — the sessions
between cycles, flat, included (equity held, no delta):

``total_return``    final equity / capital − 1 (no compounding: sizes are in lots)
``annual_return``   total return × 365 / calendar days covered
``sharpe``          mean / standard deviation of the daily equity change, × √252
``max_drawdown``    the largest fall of equity from its running peak, % of the peak
``cycles``          cycles in the data, those traded (opened), and the share that made money
``cycles[].planned`` the planned cycle a row belongs to: itself, or — with re-opens — the
                    planned cycle whose band close led to it; the delta band's fits name
                    planned cycles (their in- and out-of-sample cycles)
``cycles[].dividend_adjustment`` M'/M of the contracts a cycle held at its end: above 1
                    when they went through an ex-dividend adjustment (SSE: 10,000 → 10,220 with the
                    strike moved), the cycle marked on them throughout; 1 otherwise
``exits``           how traded cycles ended: ``delta_band`` (the band was breached at the
                    close), ``trigger`` (another exit trigger or the stop loss), ``guard``
                    (the automatic ``days_left < 2d``), ``expiry`` (held to expiry),
                    ``cut`` (closed at a roll or the data's end), ``adjustment`` (the
                    adjustment module's action left the book flat), ``liquidation`` (closed
                    after a margin call)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from opl.runtime.results.metrics import RunMetrics, run_metrics
from opl.runtime.results.records import json_safe

__all__ = ["BacktestResult", "SCHEMA", "performance", "cycle_exit", "on_sessions"]

SCHEMA = "opl.backtest/1"
EXIT_REASONS = ("delta_band", "trigger", "guard", "expiry", "cut", "adjustment", "liquidation")


def performance(equity: np.ndarray, dates: pd.DatetimeIndex, capital: float) -> dict[str, float]:
    """Total and annual return, Sharpe and max drawdown (percent of the capital; drawdown of the peak) of one
    equity series from its first point."""
    equity = np.asarray(equity, dtype=float)
    change = np.diff(equity) / capital
    sd = change.std() if change.size else 0.0
    days = max((dates[-1] - dates[0]).days, 1)
    peak = np.maximum.accumulate(equity)
    total = (equity[-1] - equity[0]) / capital * 100.0  # equity[0] is the capital over the whole history
    return {"total_return": total, "annual_return": total * 365.0 / days,
            "sharpe": float(change.mean() / sd * np.sqrt(252.0)) if sd > 0 else 0.0,
            "max_drawdown": float(np.max((peak - equity) / peak) * 100.0)}


def on_sessions(values: np.ndarray, dates: pd.DatetimeIndex, sessions: pd.DatetimeIndex, *,
                hold: bool) -> np.ndarray:
    """``values`` at ``dates`` carried onto every session: held (equity) or NaN (delta, band) between cycles."""
    series = pd.Series(np.asarray(values, dtype=float), index=dates)
    series = series[~series.index.duplicated(keep="last")].reindex(sessions)
    return (series.ffill() if hold else series).to_numpy(dtype=float)


def _from(day: pd.Timestamp, dates: pd.DatetimeIndex, until: pd.Timestamp | None = None) -> slice:
    """The points of a series from the last one before ``day`` (the base) to the last before ``until``."""
    start = max(int(dates.searchsorted(day, side="left")) - 1, 0)
    stop = len(dates) if until is None else int(dates.searchsorted(until, side="left"))
    return slice(start, max(stop, start + 1))


def band_periods(band: dict, rows: list[dict], dates: pd.DatetimeIndex, equity: np.ndarray,
                 base_equity: np.ndarray, capital: float) -> dict:
    """Performance after the first fit beside the whole period's, and one row per walk-forward window
    (its out-of-sample stretch, from its fit to the next), for the strategy and the band-free replay."""
    if band.get("first_fit") is None:
        return {"after_first_fit": None, "windows": []}
    first = pd.Timestamp(band["first_fit"])
    after = _from(first, dates)
    out = {"after_first_fit": {"from": band["first_fit"],
                               "strategy": performance(equity[after], dates[after], capital),
                               "baseline": performance(base_equity[after], dates[after], capital)}}
    fits = [pd.Timestamp(f["fit_date"]) for f in band["fits"]]
    windows = []
    for i, f in enumerate(band["fits"]):
        until = fits[i + 1] if i + 1 < len(fits) else None
        part = _from(fits[i], dates, until)
        mine = performance(equity[part], dates[part], capital)
        base = performance(base_equity[part], dates[part], capital)
        opened = [r for r in rows if fits[i] <= pd.Timestamp(r["open"]) and (until is None
                                                                           or pd.Timestamp(r["open"]) < until)]
        windows.append({"fit_date": f["fit_date"], "until": None if until is None else str(until.date()),
                        "k": f["k"], "margin": f.get("margin"), "tied": f.get("tied"),
                        "return": mine["total_return"], "max_drawdown": mine["max_drawdown"],
                        "baseline_return": base["total_return"], "baseline_max_drawdown": base["max_drawdown"],
                        "band_closes": sum(r["exit"] == "delta_band" for r in opened),
                        "reopened": sum(bool(r.get("reopened")) for r in opened)})
    out["windows"] = windows
    return out


def cycle_exit(trace: dict, month, offset: int, guard: float | None) -> tuple[bool, int | None, str | None]:
    """Whether the cycle at ``offset`` of a replay's trace opened, the step it closed on and why
    (``EXIT_REASONS``; None, None when it never opened)."""
    n = month.n
    exits = trace["exit"][0, 0, offset:offset + n]
    if not (np.any(exits) or np.any(trace["open"][0, 0, offset:offset + n])):
        return False, None, None
    hit = np.flatnonzero(exits)
    flat = np.flatnonzero(~trace["open"][0, 0, offset:offset + n - 1])
    if hit.size:
        j = int(hit[0]) + 1
        ud, width = trace["unit_delta"][0, 0, offset + j - 1], trace["band"][0, 0, offset + j - 1]
        centre = month.band[0][j] if month.band is not None else 0.0
        if j == n and not month.expires:
            return True, j, "cut"
        if np.isfinite(width) and np.isfinite(ud) and abs(ud - centre) > width:
            return True, j, "delta_band"
        if guard is not None and month.days_left[j] < guard:
            return True, j, "guard"
        return True, j, "trigger"
    if flat.size:  # closed without an exit: by an adjustment, else a liquidation after a margin call
        j = int(flat[0]) + 1
        return True, j, "adjustment" if trace["adjusted"][0, 0, offset + j - 1] else "liquidation"
    return True, n, "expiry"


def _cycle_rows(records, months, result, strategy, size: float, mult: float, guard: float | None) -> list[dict]:
    tr = result.trace
    rows, offset = [], 0
    for rec, month, pnl in zip(records, months, result.monthly[0, 0]):
        n = month.n
        opened, closed, reason = cycle_exit(tr, month, offset, guard)
        premium = -sum(leg.signed_qty * size * v[0, 0] for leg, v in zip(strategy.legs, month.value)) * mult
        rows.append({"cycle": rec["cycle"], "open": str(rec["open"].date()),
                     "close": str(pd.Timestamp(rec["dates"][closed]).date()) if closed is not None else None,
                     "contract": rec["contract"], "expiry": str(rec["expiry"].date()), "ends": rec["ends"],
                     "sessions": rec["sessions"], "open_price": rec["open_price"], "strikes": rec["strikes"],
                     "support": rec["support"], "resistance": rec["resistance"], "direction": rec["direction"],
                     "view_date": str(rec["view_date"].date()) if rec.get("view_date") is not None else None,
                     "level_factor": rec.get("level_factor", 1.0),
                     "dividend_adjustment": rec.get("adjustment", 1.0), "opened": opened,
                     "premium": float(premium) if opened else 0.0, "pnl": float(pnl),
                     "exit": reason, "reopened": rec.get("reopened", False),
                     "planned": rec.get("planned", rec["cycle"]),
                     "marks_from_chain": rec["marks_from_chain"], "marks": rec["marks"]})
        offset += n
    return rows


@dataclass(kw_only=True)
class BacktestResult:
    """Everything `opl backtest` reports; `to_json` keys are stable (``SCHEMA``)."""

    file: str
    data: dict[str, Any]
    run: dict[str, Any]
    strategy: dict[str, Any]
    metrics: RunMetrics
    performance: dict[str, Any]
    baseline: dict[str, Any] | None
    delta_band: dict[str, Any] | None
    cycles: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    dates: pd.DatetimeIndex | None = field(default=None, repr=False)
    equity: np.ndarray | None = field(default=None, repr=False)
    baseline_equity: np.ndarray | None = field(default=None, repr=False)
    unit_delta: np.ndarray | None = field(default=None, repr=False)
    band_centre: np.ndarray | None = field(default=None, repr=False)
    band_width: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def build(cls, *, file, data, files, inputs, settings, strategy, pack, kind, cycles, dates, result, baseline, band,
              notes, versions, surfaces, months, calendar: pd.DatetimeIndex,
              baseline_dates: pd.DatetimeIndex | None = None) -> "BacktestResult":
        """Assemble the result of a replay (``result``) and its band-free ``baseline``; ``dates`` are
        the replay's equity dates (a cycle's opening session is its previous point), ``calendar`` the
        data's sessions from the first open to the last close, onto which the series are carried;
        ``baseline_dates`` the band-free replay's dates when its cycles differ (re-opens)."""
        capital = result.capital
        sessions = len(calendar)

        def carried(trace, key="equity", first=capital, hold=True, at=None):
            at = replayed if at is None else at
            return on_sessions(np.concatenate([[first], trace[key][0, 0]]), at, calendar, hold=hold)

        replayed, dates = dates, calendar
        equity = carried(result.trace)
        base_equity = carried(baseline.trace, at=baseline_dates) if baseline is not None else None
        rows = _cycle_rows(cycles, months, result, strategy, settings.size, strategy.multiplier,
                           strategy.guard_days)
        traded = [r for r in rows if r["opened"]]
        exits = {reason: sum(r["exit"] == reason for r in traded) for reason in EXIT_REASONS}
        perf = {**performance(equity, dates, capital),
                "cycles": len(rows), "cycles_traded": len(traded),
                "winning_share": (sum(r["pnl"] > 0 for r in traded) / len(traded) * 100.0) if traded else None,
                "exits": exits}
        base = None
        if baseline is not None:
            base = {"performance": performance(base_equity, dates, capital), "metrics": run_metrics(baseline, 0)}
        band_dict = None
        if band is not None:
            band_dict = band.to_dict()
            band_dict.update(band_periods(band_dict, rows, dates, equity, base_equity, capital))
        centre = on_sessions(np.concatenate([[np.nan]] + [m.band[0][1:] if m.band is not None
                                                          else np.full(m.n, np.nan) for m in months]),
                             replayed, calendar, hold=False)
        return cls(
            file=file, data={"directory": data, "files": files, "inputs": inputs, "surfaces": surfaces},
            run={"start": str(dates[0].date()), "end": str(dates[-1].date()), "sessions": sessions,
                 "cycles": len(rows), "capital": capital, "currency": pack.currency, "rule_pack": pack.name,
                 "margin_method": settings.margin_method, "margin_combinations": list(pack.margin.combinations),
                 "underlying": kind, "size": settings.size, "rate": strategy.rate, "tenor_days": strategy.tenor_days,
                 "guard_days": strategy.guard_days, "versions": versions},
            strategy={"legs": [{"type": "call" if leg.is_call else "put", "side": "long" if leg.side > 0 else "short",
                                "qty": leg.qty, "american": leg.american} for leg in strategy.legs],
                      "hedge": None if strategy.hedge is None else vars(strategy.hedge).copy(),
                      "exit_mode": strategy.exit_mode, "exit_triggers": len(strategy.exit_triggers),
                      "stop_loss": strategy.stop_loss, "margin_buffer": strategy.margin_buffer},
            metrics=run_metrics(result, 0), performance=perf, baseline=base,
            delta_band=band_dict, cycles=rows, notes=list(notes), dates=dates,
            equity=equity, baseline_equity=base_equity,
            unit_delta=carried(result.trace, "unit_delta", np.nan, hold=False),
            band_centre=centre, band_width=carried(result.trace, "band", np.nan, hold=False))

    def to_dict(self) -> dict[str, Any]:
        base = None
        if self.baseline is not None:
            base = {"performance": self.baseline["performance"], "metrics": self.baseline["metrics"].to_dict()}
        return json_safe({"schema": SCHEMA, "file": self.file, "data": self.data, "run": self.run,
                       "strategy": self.strategy, "performance": self.performance, "metrics": self.metrics.to_dict(),
                       "baseline": base, "delta_band": self.delta_band, "cycles": self.cycles,
                       "notes": list(self.notes)})

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    # ------------------------------------------------------------------ notebooks

    def cycles_frame(self) -> pd.DataFrame:
        """Every option cycle (planned or traded), one row each (index ``cycle``), as in the JSON's ``cycles``;
        ``pnl_pct`` is the P&L in % of capital."""
        frame = pd.DataFrame(self.cycles)
        if frame.empty:
            return frame
        frame["pnl_pct"] = frame["pnl"] / self.run["capital"] * 100.0
        return frame.set_index("cycle")

    def trades_frame(self) -> pd.DataFrame:
        """The cycles that were traded (opened), with their dates, strikes, premium, P&L and how they ended."""
        frame = self.cycles_frame()
        if frame.empty:
            return frame
        columns = ["open", "close", "contract", "expiry", "strikes", "premium", "pnl", "pnl_pct", "exit", "reopened"]
        return frame.loc[frame["opened"], columns]

    def equity_frame(self) -> pd.DataFrame:
        """Equity by session (and without the delta band when the file has one), in currency."""
        frame = pd.DataFrame({"equity": self.equity}, index=self.dates)
        if self.baseline_equity is not None:
            frame["equity_without_band"] = self.baseline_equity
        return frame.rename_axis("date")

    def to_frame(self) -> pd.DataFrame:
        """The cycles (`cycles_frame`)."""
        return self.cycles_frame()

    def frames(self) -> dict:
        """Every named DataFrame: ``cycles``, ``trades``, ``equity``."""
        return {"cycles": self.cycles_frame(), "trades": self.trades_frame(), "equity": self.equity_frame()}

    def plot_equity(self):
        """Equity over the history (a matplotlib Figure; ``--report``'s equity.png)."""
        from opl.backtesting.report import equity_figure

        return equity_figure(self)

    def plot_drawdowns(self):
        """The drawdown from the running peak (drawdown.png)."""
        from opl.backtesting.report import drawdown_figure

        return drawdown_figure(self)

    def plot_delta(self):
        """The position's delta against the delta band (delta.png)."""
        from opl.backtesting.report import delta_figure

        return delta_figure(self)

    def plot_trades(self):
        """Each cycle's P&L coloured by how it ended (trades.png)."""
        from opl.backtesting.report import trades_figure

        return trades_figure(self)

    def _repr_html_(self) -> str:
        import html

        lines = "".join(f"<li>{html.escape(line)}</li>" for line in self.summary().splitlines())
        return f"<ul>{lines}</ul>\n" + self.trades_frame().to_html(float_format=lambda v: f"{v:.2f}", na_rep="—")

    def summary(self) -> str:
        """A plain-text summary, a few lines."""
        p, run = self.performance, self.run
        lines = [f"{self.file} over {self.data['directory']}: {run['start']} to {run['end']}, {run['sessions']} "
                 f"sessions, {p['cycles_traded']} of {p['cycles']} cycles traded, size {run['size']:g}, capital "
                 f"{run['capital']:,.0f} {run['currency']}",
                 f"total return {p['total_return']:+.2f}% ({p['annual_return']:+.2f}% a year), Sharpe "
                 f"{p['sharpe']:.2f}, max drawdown {p['max_drawdown']:.2f}%, median cycle "
                 f"{self.metrics.monthly_return['median']:+.2f}%"]
        if self.baseline is not None:
            b = self.baseline["performance"]
            lines.append(f"without the delta band: total return {b['total_return']:+.2f}%, Sharpe {b['sharpe']:.2f}, "
                         f"max drawdown {b['max_drawdown']:.2f}%")
        if self.delta_band is not None:
            fits = self.delta_band["fits"]
            ks = [f["k"] for f in fits if f["k"] is not None]
            lines.append(f"delta band: {len(fits)} walk-forward fits from {self.delta_band['first_fit']}, k "
                         + (f"{min(ks):g} to {max(ks):g}" if ks else "never fitted")
                         + f"; {p['exits']['delta_band']} cycle(s) closed by the band, reopen="
                         f"{self.delta_band['spec']['reopen']}")
            after = self.delta_band.get("after_first_fit")
            if after is not None:
                a, b = after["strategy"], after["baseline"]
                lines.append(f"after the first fit ({after['from']}): total return {a['total_return']:+.2f}% "
                             f"(without the band {b['total_return']:+.2f}%), max drawdown {a['max_drawdown']:.2f}% "
                             f"(without {b['max_drawdown']:.2f}%)")
            margins = [f["margin"] for f in fits if f.get("margin") is not None and np.isfinite(f["margin"])]
            if margins:
                near = sum(len(f["tied"]) > 1 for f in fits if f.get("tied"))
                unit = "drawdown points" if self.delta_band["spec"]["objective"] == "max_drawdown" else "Sharpe"
                lines.append(f"in-sample choice of k: margin over the best other k from {min(margins):+.4f} to "
                             f"{max(margins):+.4f} ({unit}); "
                             f"{near} of {len(fits)} fits had tied k (kept the previous window's k, else the largest)")
        lines.append("exits: " + ", ".join(f"{k} {v}" for k, v in p["exits"].items() if v))
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

"""``opl backtest --report DIR``: a markdown report with four PNG plots.

``equity.png``   equity over the history, with the same history replayed without the delta
                 band when the file has one, and the first walk-forward fit marked;
``drawdown.png`` the drawdown from the running peak, % of the peak;
``delta.png``    the strategy's delta per unit of size on the sessions a position is held,
                 against the fitted band (centre ± width) and band exits when the file has one;
``trades.png``   each cycle's P&L, coloured by how it ended (the legend's patches carry the
                 bars' colours).

The markdown holds the performance table, the walk-forward fits (date, in-sample
sessions, centre, σ, chosen k and every k's in-sample objective) and the cycles (the
trades: open, close, strikes, premium, P&L, exit).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from opl.runtime.results.metrics import pnl_by_source

__all__ = ["write_report", "PLOTS", "FIGURES", "equity_figure", "drawdown_figure", "delta_figure", "trades_figure"]

PLOTS = ("equity.png", "drawdown.png", "delta.png", "trades.png")
_COLOURS = {"delta_band": "#c44e52", "trigger": "#dd8452", "guard": "#4c72b0", "expiry": "#55a868",
            "cut": "#8c8c8c", "adjustment": "#8172b2", "liquidation": "#000000", None: "#cccccc"}


def _figure(height: float):
    """A new figure without pyplot (a notebook shows it once; nothing global is drawn on)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, height), dpi=110)
    return fig, fig.subplots()


def _plots(result, out: Path) -> None:
    """The PNGs, drawn by the figure functions a notebook's ``result.plot_*()`` calls."""
    for name, draw in FIGURES.items():
        draw(result).savefig(out / name)


def equity_figure(result):
    """Equity in % of capital over the history (and without the delta band), the first walk-forward fit marked."""
    dates = result.dates.to_pydatetime()
    capital = result.run["capital"]
    first_fit = result.delta_band["first_fit"] if result.delta_band else None
    fig, ax = _figure(4.5)
    ax.plot(dates, result.equity / capital * 100, color="#2d6a3e", linewidth=1.6, label="strategy")
    if result.baseline_equity is not None:
        ax.plot(dates, result.baseline_equity / capital * 100, color="grey", linewidth=1.0,
                label="without the delta band")
    if first_fit:
        import pandas as pd

        ax.axvline(pd.Timestamp(first_fit).to_pydatetime(), color="#c44e52", linestyle=":", label="first fit")
    ax.axhline(100, color="black", linewidth=0.8)
    ax.set_ylabel("equity, % of capital")
    ax.set_title(f"Equity — {Path(result.file).name}")
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def drawdown_figure(result):
    """The drawdown from the running peak, % of the peak."""
    dates = result.dates.to_pydatetime()
    peak = np.maximum.accumulate(result.equity)
    fig, ax = _figure(3.5)
    ax.fill_between(dates, -(peak - result.equity) / peak * 100, 0, color="#8172b2", alpha=0.7)
    ax.set_ylabel("drawdown, % of peak")
    ax.set_title(f"Drawdown — {Path(result.file).name} (max {result.performance['max_drawdown']:.2f}%)")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def delta_figure(result):
    """The position's delta per unit on the held sessions, with the band and its exits when the file has one."""
    dates = result.dates.to_pydatetime()
    title = Path(result.file).name
    fig, ax = _figure(4.5)
    ax.plot(dates, result.unit_delta, color="#4c72b0", linewidth=0.9, label="delta per unit (held sessions)")
    if np.any(np.isfinite(result.band_width)):
        ax.plot(dates, result.band_centre + result.band_width, color="#c44e52", linewidth=0.9, label="band")
        ax.plot(dates, result.band_centre - result.band_width, color="#c44e52", linewidth=0.9)
    closes = [c["close"] for c in result.cycles if c["exit"] == "delta_band"]
    if closes:
        index = {d: i for i, d in enumerate(result.dates.strftime("%Y-%m-%d"))}
        at = [index[d] for d in closes if d in index]
        ax.scatter([dates[i] for i in at], result.unit_delta[at], color="#c44e52", s=16, zorder=3,
                   label="closed by the band")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylabel("delta, underlying lots per unit of size")
    ax.set_title(f"Position delta and the delta band — {title}" if result.delta_band is not None
                 else f"Position delta (no delta band in the file) — {title}")
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def trades_figure(result):
    """Each cycle's P&L as a bar coloured by how it ended; the legend's patches carry the bars' colours."""
    from matplotlib.patches import Patch

    capital = result.run["capital"]
    fig, ax = _figure(4)
    pnl = np.array([c["pnl"] for c in result.cycles]) / capital * 100
    colours = [_COLOURS.get(c["exit"], _COLOURS[None]) for c in result.cycles]
    ax.bar(np.arange(len(pnl)), pnl, color=colours)
    # Empty bars give the legend default-coloured handles: patches carry the colours drawn.
    handles = [Patch(color=colour, label=reason or "not opened") for reason, colour in _COLOURS.items()
               if any(c["exit"] == reason for c in result.cycles)]
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("cycle")
    ax.set_ylabel("P&L, % of capital")
    ax.set_title(f"Cycles by exit — {Path(result.file).name}")
    ax.legend(handles=handles, loc="lower left", fontsize=8)
    fig.tight_layout()
    return fig


#: The report's PNG files and the figure each one is.
FIGURES = {"equity.png": equity_figure, "drawdown.png": drawdown_figure, "delta.png": delta_figure,
           "trades.png": trades_figure}


def _markdown(result) -> str:
    """report.md: the period and its performance (with and without the delta band), the band's walk-forward
    fits, the cycles, plots and notes."""
    sections = (_performance_lines, _band_lines, _cycle_lines)
    return "\n".join(line for section in sections for line in section(result))


def _performance_lines(result) -> list[str]:
    run, p = result.run, result.performance
    lines = [f"# Backtest of `{result.file}`", "",
             f"Data `{result.data['directory']}`: {run['start']} to {run['end']}, {run['sessions']} sessions, "
             f"{p['cycles']} option cycles ({p['cycles_traded']} traded); rule pack `{run['rule_pack']}`, capital "
             f"{run['capital']:,.0f} {run['currency']}, size {run['size']:g}. Marks: the chain's settlements, else "
             f"{' / '.join(result.data['surfaces'])}.", "",
             "| | total return % | a year % | Sharpe | max drawdown % | median cycle % | losing cycles % |",
             "|:---|---:|---:|---:|---:|---:|---:|",
             f"| strategy | {p['total_return']:+.2f} | {p['annual_return']:+.2f} | {p['sharpe']:.2f} | "
             f"{p['max_drawdown']:.2f} | {result.metrics.monthly_return['median']:+.3f} | "
             f"{result.metrics.loss_probability:.1f} |"]
    if result.baseline is not None:
        b, m = result.baseline["performance"], result.baseline["metrics"]
        lines.append(f"| without the delta band | {b['total_return']:+.2f} | {b['annual_return']:+.2f} | "
                     f"{b['sharpe']:.2f} | {b['max_drawdown']:.2f} | {m.monthly_return['median']:+.3f} | "
                     f"{m.loss_probability:.1f} |")
    att = result.metrics.attribution["per_month"]
    lines += ["", "Mean P&L a cycle by source: " + pnl_by_source(att, run["currency"], per="cycle") + ".", "",
              "Exits: " + ", ".join(f"{k} {v}" for k, v in p["exits"].items() if v) + ".", ""]
    return lines


def _band_lines(result) -> list[str]:
    band = result.delta_band
    if band is None:
        return []
    p = result.performance
    spec = band["spec"]
    lines = ["## Delta band, walk-forward", "",
             f"`k={spec['k']}`, window {spec['window_days']:g} days, objective `{spec['objective']}`, step "
             f"{spec['step_days']:g} days" + (f", grid {', '.join(f'{k:g}' for k in spec['grid'])}"
                                              if spec["grid"] else "") + "; first fit "
             f"{band['first_fit']} (cycles before it run without a band).", "",
             f"After a band close: `reopen={spec['reopen']}`"
             + (" (a fresh position the next session; k is scored in sample with the re-opens it causes, the "
                "column *in-sample re-opens* below)." if spec["reopen"] == "next_day"
                else " (flat until the next cycle)."), ""]
    after = band["after_first_fit"]
    if after is not None:
        lines += [f"From the first fit ({after['from']}) — the part of the history every band was fitted "
                  "before — beside the whole period:", "",
                  "| | total return % | a year % | Sharpe | max drawdown % |", "|:---|---:|---:|---:|---:|"]
        for name, perf in (("strategy, whole period", p), ("strategy, after the first fit", after["strategy"]),
                           ("without the band, whole period", result.baseline["performance"]),
                           ("without the band, after the first fit", after["baseline"])):
            lines.append(f"| {name} | {perf['total_return']:+.2f} | {perf['annual_return']:+.2f} | "
                         f"{perf['sharpe']:.2f} | {perf['max_drawdown']:.2f} |")
        lines.append("")
    lines += ["Each window: the fit (in-sample centre, σ and k; the k tied with the best in-sample score, the "
              "chosen k's margin over the best other k — drawdown points or Sharpe, walkforward.py **Ties**), "
              "then its out-of-sample stretch to the next fit, with and without the band.", "",
              "| fit | in-sample from | sessions | centre | σ | k | tied | margin | in-sample re-opens | to | "
              "return % | max dd % | without band: return % | max dd % | band closes | re-opened |",
              "|:---|:---|---:|---:|---:|---:|:---|---:|---:|:---|---:|---:|---:|---:|---:|---:|"]
    lines += [_fit_row(f, w) for f, w in zip(band["fits"], band["windows"])]
    return lines + [""]


def _fit_row(f: dict, w: dict) -> str:
    """One walk-forward fit and its out-of-sample window as a table row."""
    k = "—" if f["k"] is None else f"{f['k']:g}"
    tied = ", ".join(f"{t:g}" for t in f["tied"]) if f.get("tied") else "—"
    margin = "—" if f.get("margin") is None or not np.isfinite(f["margin"]) else f"{f['margin']:+.4f}"
    reopens = (f.get("in_sample_reopens") or {}).get(k, "—")
    return (f"| {f['fit_date']} | {f['in_sample_start']} | {f['observations']} | {f['centre']:.3g} | "
            f"{f['sigma']:.3g} | {k} | {tied} | {margin} | {reopens} | {w['until'] or 'end'} | "
            f"{w['return']:+.2f} | {w['max_drawdown']:.2f} | {w['baseline_return']:+.2f} | "
            f"{w['baseline_max_drawdown']:.2f} | {w['band_closes']} | {w['reopened']} |"
            + (f" {f['reason']}" if f["reason"] else ""))


def _cycle_lines(result) -> list[str]:
    lines = ["## Cycles", "", "| # | open | close | contract | expiry | strikes | premium | P&L | exit |",
             "|---:|:---|:---|:---|:---|:---|---:|---:|:---|"]
    legs = result.strategy["legs"]
    for c in result.cycles:
        strikes = ", ".join(f"{leg['side']} {leg['type']} {k:g}" for leg, k in zip(legs, c["strikes"]))
        lines.append(f"| {c['cycle']} | {c['open']} | {c['close'] or '—'} | {c['contract']} | {c['expiry']} | "
                     f"{strikes} | {c['premium']:,.0f} | {c['pnl']:+,.0f} | {c['exit'] or 'not opened'} |")
    lines += ["", "## Plots", ""] + [f"![{name[:-4]}]({name})" for name in PLOTS] + [""]
    if result.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in result.notes] + [""]
    return lines


def write_report(result, directory) -> Path:
    """Write ``report.md`` and the plots into ``directory`` (created); returns the markdown path."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    _plots(result, out)
    path = out / "report.md"
    path.write_text(_markdown(result), encoding="utf-8")
    return path

"""``opl simulate --report DIR``: a markdown report with four PNG plots (at the scenarios' size unless
``--set size=`` names one), drawn by `opl.runtime.results.figures` (what ``SimulationResult.plot_*`` return).

``returns.png``   histogram of monthly returns (all paths and months pooled), median and p5 marked;
``drawdown.png``  histogram of each path's maximum drawdown, p95 and p99 marked;
``equity.png``    equity fan chart by month: median, 50% and 90% bands, five sample paths;
``margin.png``    distribution of each path's peak margin / capital.
"""

from __future__ import annotations

from pathlib import Path

from opl.runtime.results.metrics import headline, pnl_by_source

__all__ = ["write_report", "PLOTS"]

PLOTS = ("returns.png", "drawdown.png", "equity.png", "margin.png")  # opl.runtime.results.figures.FIGURES' keys


def _plots(result, out: Path) -> None:
    """The PNGs, drawn by the same figure functions a notebook's ``result.plot_*()`` calls."""
    from opl.runtime.results.figures import FIGURES

    for name, draw in FIGURES.items():
        draw(result).savefig(out / name)


def _markdown(result) -> str:
    """report.md: the run and its headline, the table by size, the base case, the scenarios, plots and notes."""
    sections = (_summary_lines, _size_lines, _base_lines, _scenario_lines, _closing_lines)
    return "\n".join(line for section in sections for line in section(result))


def _summary_lines(result) -> list[str]:
    run, b = result.run, result.base
    lines = [f"# Simulation of `{result.file}`", "",
             f"{run['paths']:,} paths × {run['horizon_months']} months ({run['days_per_month']} trading days, "
             f"{run['steps_per_day']} step(s) a day), seed {run['seed']}, model "
             f"`{' + '.join(result.model['components'])}`, capital {run['capital']:,.0f} {run['currency']}, "
             f"rule pack `{run['rule_pack']}`.", ""]
    if result.target:
        lines += [f"**Target:** `{result.target}`", ""]
    if result.recommended_size is not None:
        lines += [f"**Recommended size:** {result.recommended_size['low']:g} to "
                  f"{result.recommended_size['high']:g} lots.", ""]
    else:
        lines += [f"**Recommended size:** none — {result.recommended_reason}.", ""]
    return lines + [f"**Headline at size {b.size:g}** (± one Monte Carlo standard error; the paths are the "
                    "independent draws, the months of a path are not): "
                    + headline(b.target_values(), b.standard_errors, capital=run["capital"], currency=run["currency"])
                    + ".", ""]


def _size_lines(result) -> list[str]:
    lines = ["## By size", "",
             "Monthly returns, CVaR and margin in % of capital; drawdowns in % of the running peak equity; "
             "probabilities in % of paths (margin call, liquidation) or of months (loss); ± one Monte Carlo "
             "standard error (runtime/results/standard_errors.py).", "",
             "| size | mean % cap | median % cap | p5 % cap | p95 % cap | loss prob % | dd p95 % peak | dd p99 % peak "
             "| CVaR95 % cap | margin p95 % cap | margin call % | liquidation % | target |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---|"]
    for size, m, holds in result.sizes:
        r = m.monthly_return
        lines.append(f"| {size:g} | {m.with_error('mean_monthly_return', 3)} | "
                     f"{m.with_error('median_monthly_return', 3)} | "
                     f"{r['p5']:+.3f} | {r['p95']:+.3f} | {m.with_error('loss_probability', 1)} | "
                     f"{m.with_error('max_drawdown_p95')} | {m.with_error('max_drawdown_p99')} | "
                     f"{m.with_error('cvar_95', 3)} | {m.margin['peak_utilisation']['p95']:.1f} | "
                     f"{m.margin['margin_call_probability']:.2f} | {m.margin['forced_liquidation_probability']:.2f} | "
                     f"{ {True: 'holds', False: 'fails', None: '—'}[holds]} |")
    return lines


def _base_lines(result) -> list[str]:
    run, b = result.run, result.base
    att = b.attribution["per_month"]
    lines = ["", f"## Base case (size {b.size:g})", "",
             "Mean P&L a month by source: " + pnl_by_source(att, run["currency"]) + ".", "",
             f"Assignment in {b.exercise['assignment_share']:.2f}% of months, delivery in "
             f"{b.exercise['delivery_share']:.2f}%; {b.trades['option_lots_per_month']:.1f} option lots, "
             f"{b.trades['futures_lots_per_month']:.1f} futures lots and {b.trades['hedge_trades_per_month']:.1f} "
             f"hedge trades a month; {b.trades['early_exit_share']:.1f}% of months closed early by a trigger.", ""]
    adj = b.adjustments
    if adj.get("actions"):
        lines += [f"Adjustments: {adj['rounds_per_month']:.2f} rounds a month; {adj['exit_share']:.1f}% of months "
                  "closed by an abort (`abort_if`) or `close()`; costs in the `adjustments` bucket above.", "",
                  "| action | done a month | aborted a month |", "|:---|---:|---:|"]
        lines += [f"| `{a['action']}` | {a['done_per_month']:.3f} | {a['aborted_per_month']:.3f} |"
                  for a in adj["actions"]]
        lines.append("")
    g = b.guards
    if g:
        lines += [f"Guards: {g['avoided_legs_per_month']:.3f} legs a month not opened (`avoid_leg_if`, W401); "
                  f"{g['alerts_per_month']:.3f} alerts a month (`warn_if`, W402) on {g['alert_path_share']:.1f}% "
                  "of paths.", ""]
    return lines


def _scenario_lines(result) -> list[str]:
    if not result.scenarios:
        return []
    why = f": {result.scenario_size['reason']}" if result.scenario_size else ""
    lines = [f"## Scenarios (size {result.scenarios[0].size:g}{why})", "",
             "| scenario | kind | mean % cap | median % cap | loss prob % | dd p95 % peak | CVaR95 % cap "
             "| liquidation % | target |",
             "|:---|:---|---:|---:|---:|---:|---:|---:|:---|"]
    for s in result.scenarios:
        m = s.metrics
        lines.append(f"| `{s.text}` | {s.kind} | {m.with_error('mean_monthly_return', 3)} | "
                     f"{m.with_error('median_monthly_return', 3)} | {m.with_error('loss_probability', 1)} | "
                     f"{m.with_error('max_drawdown_p95')} | {m.with_error('cvar_95', 3)} | "
                     f"{m.margin['forced_liquidation_probability']:.2f} | "
                     f"{ {True: 'pass', False: 'fail', None: '—'}[s.holds]} |")
    lines += ["", "Each scenario is a surprise: the options are opened at the unshocked market's prices.", ""]
    lines += [f"- `{s.text}`: {s.definition}" for s in result.scenarios if s.definition]
    return lines + [""]


def _closing_lines(result) -> list[str]:
    plotted = (f"At size {result.plot_size['size']:g} ({result.plot_size['reason']})."
               if result.plot_size else "At the base size.")
    lines = ["## Plots", "", plotted, ""] + [f"![{p[:-4]}]({p})" for p in PLOTS] + [""]
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

"""``opl simulate FILE``: Monte Carlo replay of a strategy with its experiment block.

Exit codes: 0 simulated (whether or not the target holds — the verdict is in the output);
1 the file has errors or settings the simulator cannot run (printed like `opl check`), or the
``--data`` break their contract or cannot be calibrated;
2 usage or I/O error (a bad ``--set``, an unreadable file, an unwritable output).
"""

from __future__ import annotations

import os
import sys

import click

from opl.cli.options import cluster_options, cluster_session, data_option, market_option
from opl.cli.progress import ProgressBar
from opl.cli.rawdata import data_folder
from opl.cli.report import EXIT_OK, handled, write_result


@click.command("simulate")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--paths", type=click.IntRange(1, 10_000_000), default=None,
              help="Number of paths (default: the experiment's `paths`, else 2,000).")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None, help="Random seed (default: the experiment's).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a setting, e.g. --set experiment.horizon=6 --set hedge.keep=20% "
                   "--set model.garch.alpha=0.05 (keys: opl/lang/experiment/settings.py).")
@market_option()
@data_option(help="Calibrate the price model and implied-volatility rule by the experiment's `calibration`: "
                  "historical (the default) fits this data directory (the layout of `opl data synth`), implied "
                  "takes level and smile from its options.csv or iv_summary.csv, hybrid both; a folder of raw "
                  "exchange/vendor files is imported first (`opl data import`, logged); for `calibration "
                  "file`, the JSON `opl calibrate --json` wrote.", file_okay=True, metavar="DIR|JSON")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Write the results as JSON (stable keys) to this file ('-' for stdout).")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
              help="Write a markdown report with PNG plots into this directory.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no table.")
@cluster_options
@handled
def simulate(file: str, paths: int | None, seed: int | None, overrides: tuple[str, ...], market: dict,
             data: str | None, json_out: str | None, report_dir: str | None, quiet: bool, scheduler: str | None,
             workers: int | None) -> None:
    """Replay FILE over simulated months: returns, drawdowns, margin, assignment, the target's verdict."""
    from pathlib import Path

    from opl.api import simulate as run

    with cluster_session(scheduler, workers):  # before any work: an unreachable scheduler is exit 2
        data = data_folder(data, strategy=file)
        with ProgressBar("simulating", quiet) as progress:
            result = run(Path(file), paths=paths, seed=seed, set=overrides, market=market, progress=progress,
                         data=data)
    from opl.runtime.results.report import write_report

    write_result(result, json_out=json_out, report_dir=report_dir, write_report=write_report)
    if not quiet and json_out != "-":
        _table(result)
        if report_dir:
            click.echo(f"report: {os.path.join(report_dir, 'report.md')}")
    sys.exit(EXIT_OK)


def _cell(metrics, metric: str, digits: int = 2) -> str:
    """A table cell: the value over its Monte Carlo standard error (two lines keep the table narrow)."""
    return metrics.with_error(metric, digits).replace(" ± ", "\n± ")


def _table(result) -> None:
    from rich.console import Console

    probe = Console()
    console = Console(width=probe.width if probe.is_terminal else 160)
    run = result.run
    console.print(f"[bold]{result.file}[/bold]: {run['paths']:,} paths x {run['horizon_months']} months, seed "
                  f"{run['seed']}, model {' + '.join(result.model['components'])}, capital "
                  f"{run['capital']:,.0f} {run['currency']}")
    console.print(_sizes_table(result))
    _base_case_lines(console, result)
    if result.scenarios:
        console.print(_scenarios_table(result))
        for s in result.scenarios:
            console.print(f"  {s.text}: {s.definition}", markup=False, highlight=False)
    for note in result.notes:
        console.print(f"note: {note}", markup=False, highlight=False)


def _sizes_table(result):
    """The by-size table: a row a swept size, the base case's in bold."""
    from rich.table import Table

    table = Table(title="by size: monthly return, CVaR95 and margin in % of capital, drawdown in % of peak equity; "
                        "± one Monte Carlo standard error (the path is the independent unit)", title_justify="left")
    for column in ("size", "mean\n% cap", "median\n% cap", "p5\n% cap", "p95\n% cap", "loss prob\n% months",
                   "dd p95\n% peak", "dd p99\n% peak", "CVaR95\n% cap", "margin p95\n% cap", "margin call",
                   "liquidation", "assigned", "target"):
        table.add_column(column, justify="right", no_wrap=True)
    verdict = {True: "[green]holds[/green]", False: "[red]fails[/red]", None: "—"}
    for size, m, holds in result.sizes:
        r = m.monthly_return
        table.add_row(f"{size:g}", _cell(m, "mean_monthly_return", 3), _cell(m, "median_monthly_return", 3),
                      f"{r['p5']:+.3f}", f"{r['p95']:+.3f}", _cell(m, "loss_probability", 1),
                      _cell(m, "max_drawdown_p95"), _cell(m, "max_drawdown_p99"), _cell(m, "cvar_95", 3),
                      f"{m.margin['peak_utilisation']['p95']:.1f}%", f"{m.margin['margin_call_probability']:.2f}%",
                      f"{m.margin['forced_liquidation_probability']:.2f}%", f"{m.exercise['assignment_share']:.2f}%",
                      verdict[holds], style="bold" if size == result.base.size else None)
    return table


def _base_case_lines(console, result) -> None:
    """The base case's lines under the table: P&L by source, the target, the recommended size, the adjustments
    and the guards."""
    from opl.runtime.results.metrics import pnl_by_source

    base = result.base
    console.print(f"P&L by source at size {base.size:g} (means over all months): "
                  + pnl_by_source(base.attribution["per_month"], result.run["currency"]), markup=False,
                  highlight=False)
    if result.target is not None:
        console.print(f"target: {result.target}")
    if result.recommended_size is not None:
        console.print(f"[bold]recommended size: {result.recommended_size['low']:g} to "
                      f"{result.recommended_size['high']:g} lots[/bold]")
    else:
        console.print(f"[bold]recommended size: none[/bold] — {result.recommended_reason}")
    adj = base.adjustments
    if adj.get("actions"):
        console.print(f"adjustments at size {base.size:g}: {adj['rounds_per_month']:.2f} rounds a month, "
                      + ", ".join(f"{a['action']} {a['done_per_month']:.2f} done / {a['aborted_per_month']:.2f} "
                                  "aborted" for a in adj["actions"])
                      + f"; {adj['exit_share']:.1f}% of months closed by an abort", markup=False, highlight=False)
    guards = base.guards
    if guards and (guards["avoided_legs_per_month"] or guards["alerts_per_month"]):
        console.print(f"guards: {guards['avoided_legs_per_month']:.2f} legs a month not opened (avoid_leg_if, W401), "
                      f"{guards['alerts_per_month']:.2f} alerts a month (warn_if, W402) on "
                      f"{guards['alert_path_share']:.1f}% of paths", markup=False, highlight=False)


def _scenarios_table(result):
    """The scenarios' table at their size (why that size, when chosen)."""
    from rich.table import Table

    why = f" ({result.scenario_size['reason']})" if result.scenario_size else ""
    table = Table(title=f"scenarios at size {result.scenarios[0].size:g}{why}", title_justify="left")
    for column in ("scenario", "kind", "mean\n% cap", "median\n% cap", "loss prob\n% months", "dd p95\n% peak",
                   "CVaR95\n% cap", "liquidation", "target"):
        table.add_column(column, justify="left" if column in ("scenario", "kind") else "right", no_wrap=True)
    verdict = {True: "[green]pass[/green]", False: "[red]fail[/red]", None: "—"}
    for s in result.scenarios:
        m = s.metrics
        table.add_row(s.text, s.kind, _cell(m, "mean_monthly_return", 3), _cell(m, "median_monthly_return", 3),
                      _cell(m, "loss_probability", 1), _cell(m, "max_drawdown_p95"), _cell(m, "cvar_95", 3),
                      f"{m.margin['forced_liquidation_probability']:.2f}%", verdict[s.holds])
    return table

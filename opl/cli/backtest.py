"""``opl backtest FILE --data DIR``: replay a strategy over a market history.

Exit codes: 0 backtested; 1 the file has errors or settings a backtest cannot run
(printed like `opl check`), or a data file breaks its contract (each problem printed as
``path:line: column `name`: message``); 2 usage or I/O error (a bad ``--set``, a missing
file or directory, an unwritable output).
"""

from __future__ import annotations

import os
import sys

import click

from opl.cli.options import cluster_options, cluster_session, market_option
from opl.cli.progress import ProgressBar
from opl.cli.rawdata import data_folder
from opl.cli.report import EXIT_OK, handled, write_result


@click.command("backtest")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--data", "data", required=True, type=click.Path(),
              help="Data directory: futures.csv, and optionally options.csv and signals.csv "
                   "(what `opl data synth` writes; examples/jujube/data_contracts.md); or a futures file alone; or a "
                   "folder of raw exchange/vendor files, imported first (`opl data import`, logged).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a setting, e.g. --set size=2 --set costs.fee_factor=2 --set sim.guard_days=0 "
                   "(keys: opl/lang/experiment/settings.py).")
@market_option()
@click.option("--repair", is_flag=True, help="Make the data loaders' documented repairs, each listed in the notes.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Write the results as JSON (stable keys) to this file ('-' for stdout).")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
              help="Write a markdown report with PNG plots into this directory.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
@cluster_options
@handled(hints={"DataError": "--repair makes the documented repairs"})
def backtest(file: str, data: str, overrides: tuple[str, ...], market: dict, repair: bool, json_out: str | None,
             report_dir: str | None, quiet: bool, scheduler: str | None, workers: int | None) -> None:
    """Replay FILE over the history in DATA with the simulator's rules; fit a delta band walk-forward."""
    from pathlib import Path

    from opl.api import backtest as run

    with cluster_session(scheduler, workers):  # before any work: an unreachable scheduler is exit 2
        data = data_folder(data, strategy=file)
        with ProgressBar("backtesting", quiet=quiet or json_out == "-") as progress:
            result = run(Path(file), data=data, set=overrides, market=market, repair=repair, progress=progress)
    from opl.backtesting.report import write_report

    write_result(result, json_out=json_out, report_dir=report_dir, write_report=write_report)
    if not quiet and json_out != "-":
        click.echo(result.summary())
        if report_dir:
            click.echo(f"report: {os.path.join(report_dir, 'report.md')}")
    sys.exit(EXIT_OK)

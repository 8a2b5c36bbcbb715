"""``opl assumptions --futures FUT.csv [--signals S.csv] [--factors F.csv] | --data DIR [--strategy FILE.opl]
[--json OUT] [--report DIR]``.

Writes ``random_walk.verdict`` and ``hit_rate.{estimate, wilson, clopper_pearson, n}``
with the full results (DESIGN.md, "Contracts"); with ``--strategy``, the file's stress
scenarios run with the simulator (``stress.verdict``), its price model fitted to the
same futures when its calibration is historical (``--no-calibrate``: as written).
Exit codes: 0 the tests ran (whatever their verdicts), 1 an input file breaks its
contract, is too short to test, or the strategy has errors, 2 usage or I/O error.
"""

from __future__ import annotations

import sys

import click

from opl.cli.options import FiniteFloatRange
from opl.cli.report import EXIT_OK, handled


@click.command()
@click.option("--futures", "futures", default=None, type=click.Path(dir_okay=False),
              help="Daily futures bars (continuous series or one contract).")
@click.option("--data", "data", default=None, type=click.Path(file_okay=False),
              help="Instead of --futures/--signals/--factors: a folder with futures.csv (and signals.csv, "
                   "factors.csv), or of raw exchange/vendor files, imported first (`opl data import`, logged).")
@click.option("--signals", "signals", type=click.Path(dir_okay=False), default=None,
              help="The spot team's views: date, support, resistance, direction, source.")
@click.option("--factors", "factors", type=click.Path(dir_okay=False), default=None,
              help="Monthly supply/demand factors: month plus numeric columns.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, help="Write the results here.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
              help="Write assumptions.md and the PNG plots into this directory.")
@click.option("--alpha", type=FiniteFloatRange(0, 1, min_open=True, max_open=True), default=0.05,
              show_default=True, help="Level of every verdict.")
@click.option("--correction", type=click.Choice(["holm", "bonferroni"]), default="holm", show_default=True,
              help="Multiplicity correction of the random-walk family.")
@click.option("--horizon", type=click.IntRange(1), default=21, show_default=True,
              help="Trading days over which a view is scored.")
@click.option("--flat-band", "flat_band", type=FiniteFloatRange(0), default=0.03, show_default=True,
              help="|log move| at or below which the realised move counts as flat.")
@click.option("--claim", type=FiniteFloatRange(0, 1, min_open=True, max_open=True), default=0.90,
              show_default=True, help="Hit rate the team claims.")
@click.option("--power", type=FiniteFloatRange(0, 1, min_open=True, max_open=True), default=0.80,
              show_default=True, help="Power for the sample-size table.")
@click.option("--limit", type=FiniteFloatRange(0, 1, min_open=True), default=None,
              help="Daily limit fraction: checks futures prices and sharpens the roll rule (CJ: 0.10).")
@click.option("--tick", type=FiniteFloatRange(0), default=0.0, show_default=True, help="Price tick (CJ: 5).")
@click.option("--repair", is_flag=True, help="Make the documented data repairs, each logged in the JSON.")
@click.option("--strategy", "strategy", type=click.Path(dir_okay=False), default=None,
              help="An .opl strategy: run its stress scenarios with the simulator (the fourth assumption).")
@click.option("--paths", type=click.IntRange(1, 10_000_000), default=None,
              help="Paths for --strategy (default: the experiment's `paths`).")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None, help="Seed for --strategy.")
@click.option("--calibrate/--no-calibrate", "calibrate", default=True, show_default=True,
              help="Fit the strategy's price model to --futures when its calibration is historical.")
@handled(hints={"CalibrationError": "the strategy's price model could not be fitted; --no-calibrate runs the "
                                    "file's parameters as written"})
def assumptions(futures: str | None, data: str | None, signals: str | None, factors: str | None,
                json_out: str | None,
                report_dir: str | None, alpha: float, correction: str, horizon: int, flat_band: float, claim: float,
                power: float, limit: float | None, tick: float, repair: bool, strategy: str | None,
                paths: int | None, seed: int | None, calibrate: bool) -> None:
    """Test the plan's assumptions (random walk, factors, signal hit rate, the strategy under stress) against data."""
    from pathlib import Path

    from opl.api import assumptions as run

    futures, signals, factors = _files(futures, data, signals, factors, strategy)
    result = run(futures=futures, signals=signals, factors=factors, strategy=Path(strategy) if strategy else None,
                 paths=paths, seed=seed, calibrate=calibrate, alpha=alpha, correction=correction, horizon=horizon,
                 flat_band=flat_band, claim=claim, power=power, limit=limit, tick=tick, repair=repair)
    # Files first: if one cannot be written, no result is shown as if the run had succeeded.
    written = []
    if json_out:
        written.append(result.write_json(json_out))
    if report_dir:
        written.append(result.write_markdown(report_dir))
    click.echo(result.summary())
    for path in written:
        click.echo(f"wrote {path}")
    sys.exit(EXIT_OK)


def _files(futures, data, signals, factors, strategy):
    """The three files, from the options or from ``--data`` (a raw folder is imported first)."""
    from pathlib import Path

    from opl.cli.rawdata import data_folder

    if (futures is None) == (data is None):
        raise click.UsageError("give either --futures FILE or --data DIR")
    if data is None:
        return futures, signals, factors
    if signals or factors:
        raise click.UsageError("--signals and --factors go with --futures; --data reads them from the folder")
    folder = Path(data_folder(data, strategy=strategy))
    found = {kind: folder / f"{kind}.csv" for kind in ("futures", "signals", "factors")}
    if not found["futures"].is_file():
        raise click.UsageError(f"--data {data}: no futures.csv (the underlying's daily bars)")
    return tuple(str(p) if p.is_file() else None for p in found.values())

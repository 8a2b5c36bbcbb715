"""``opl assumptions --futures FUT.csv [--signals S.csv] [--factors F.csv] [--json OUT] [--report DIR]``.

Writes ``random_walk.verdict`` and ``hit_rate.{estimate, wilson, clopper_pearson, n}``
with the full results (DESIGN.md, "Contracts"). Exit codes: 0 the tests ran
(whatever their verdicts), 1 an input file breaks its contract or is too short
to test, 2 usage or I/O error.
"""

from __future__ import annotations

import sys

import click

from opl.cli.report import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE


@click.command()
@click.option("--futures", "futures", required=True, type=click.Path(dir_okay=False),
              help="Daily futures bars (continuous series or one contract).")
@click.option("--signals", "signals", type=click.Path(dir_okay=False), default=None,
              help="The spot team's views: date, support, resistance, direction, source.")
@click.option("--factors", "factors", type=click.Path(dir_okay=False), default=None,
              help="Monthly supply/demand factors: month plus numeric columns.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, help="Write the results here.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
              help="Write assumptions.md and the PNG plots into this directory.")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05,
              show_default=True, help="Level of every verdict.")
@click.option("--correction", type=click.Choice(["holm", "bonferroni"]), default="holm", show_default=True,
              help="Multiplicity correction of the random-walk family.")
@click.option("--horizon", type=click.IntRange(1), default=21, show_default=True,
              help="Trading days over which a view is scored.")
@click.option("--flat-band", "flat_band", type=click.FloatRange(0), default=0.03, show_default=True,
              help="|log move| at or below which the realised move counts as flat.")
@click.option("--claim", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.90,
              show_default=True, help="Hit rate the team claims.")
@click.option("--power", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.80,
              show_default=True, help="Power for the sample-size table.")
@click.option("--limit", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="Daily limit fraction: checks futures prices and sharpens the roll rule (CJ: 0.10).")
@click.option("--tick", type=click.FloatRange(0), default=0.0, show_default=True, help="Price tick (CJ: 5).")
@click.option("--repair", is_flag=True, help="Make the documented data repairs, each logged in the JSON.")
def assumptions(futures: str, signals: str | None, factors: str | None, json_out: str | None,
                report_dir: str | None, alpha: float, correction: str, horizon: int, flat_band: float, claim: float,
                power: float, limit: float | None, tick: float, repair: bool) -> None:
    """Test the plan's assumptions (random walk, factors, signal hit rate) against data."""
    from opl.assumptions.report import run_assumptions
    from opl.data.loaders import DataError, load

    loaded = {}
    try:
        for kind, path in (("futures", futures), ("signals", signals), ("factors", factors)):
            if path is not None:
                extra = {"limit": limit, "tick": tick} if kind == "futures" else {}
                loaded[kind] = load(path, kind=kind, repair=repair, **extra)
    except DataError as error:
        for problem in error.problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(EXIT_FINDINGS)
    except OSError as error:
        click.echo(f"error: {error.filename or ''}: {error.strerror or error}", err=True)
        sys.exit(EXIT_USAGE)
    try:
        result = run_assumptions(futures=loaded["futures"], signals=loaded.get("signals"),
                                 factors=loaded.get("factors"), alpha=alpha, horizon=horizon, flat_band=flat_band,
                                 claim=claim, power=power, limit=limit, tick=tick, correction=correction)
    except ValueError as error:
        click.echo(f"error: {futures}: {error}", err=True)
        sys.exit(EXIT_FINDINGS)
    # Files first: if one cannot be written, no result is shown as if the run had succeeded.
    written = []
    try:
        if json_out:
            written.append(result.write_json(json_out))
        if report_dir:
            written.append(result.write_markdown(report_dir))
    except OSError as error:
        click.echo(f"error: {error.filename or ''}: {error.strerror or error}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(result.summary())
    for path in written:
        click.echo(f"wrote {path}")
    sys.exit(EXIT_OK)

"""``opl calibrate --data DIR | --futures FILE [--options FILE] [--iv-summary FILE]``.

Fits realised volatility, GARCH/GJR-t, jumps and the implied-volatility surface to the
data and maps them onto the experiment block ``opl simulate`` reads. ``--json OUT``
writes every estimate, ``--report DIR`` a markdown report with plots, ``--block
OUT.opl`` the experiment block. Exit codes: 0 calibrated; 1 an input breaks its data
contract or cannot be calibrated (located message); 2 usage or I/O error.
"""

from __future__ import annotations

import sys

import click

from opl.cli.options import FiniteFloatRange, data_option
from opl.cli.progress import ProgressBar
from opl.cli.rawdata import data_folder
from opl.cli.report import EXIT_OK, handled


@click.command("calibrate")
@data_option()
@click.option("--futures", "futures", type=click.Path(dir_okay=False), default=None,
              help="Daily futures bars (instead of --data).")
@click.option("--options", "options", type=click.Path(dir_okay=False), default=None,
              help="Daily option chains: settlements give the surface, skew and implied spread.")
@click.option("--iv-summary", "iv_summary", type=click.Path(dir_okay=False), default=None,
              help="A daily implied-volatility summary (level and dispersion only; e.g. the exchange's CJ file).")
@click.option("--rate", type=FiniteFloatRange(-0.5, 1.0), default=0.02, show_default=True,
              help="Annual rate for inverting option prices.")
@click.option("--exercise", type=click.Choice(["american", "european"]), default=None,
              help="Exercise style of the options, overriding the rule pack's (czce_cj: american, inverted with "
                   "Barone-Adesi-Whaley; sse_50etf: european, Black-76). Default: the pack's.")
@click.option("--pack", "pack", default=None, metavar="NAME",
              help="Rule pack of the options (czce_cj, sse_50etf): exercise style, spot or futures underlying, "
                   "and the import of raw files. Default: the pack the data's symbols name, else american.")
@click.option("--criterion", type=click.Choice(["bic", "aic"]), default="bic", show_default=True,
              help="How GARCH and GJR are compared.")
@click.option("--jump-threshold", "jump_threshold", type=FiniteFloatRange(1.0, 20.0), default=4.5,
              show_default=True, help="Conditional standard deviations beyond which a day is a jump day.")
@click.option("--window", type=click.IntRange(1, 10_000), default=21, show_default=True,
              help="Trading days over which the one-month smile is summarised.")
@click.option("--limit", type=FiniteFloatRange(0, 1, min_open=True), default=None,
              help="Daily limit fraction: checks futures prices and sharpens the roll rule (CJ: 0.10).")
@click.option("--tick", type=FiniteFloatRange(0), default=0.0, show_default=True, help="Price tick (CJ: 5).")
@click.option("--repair", is_flag=True, help="Make the documented data repairs, each listed in the JSON.")
@click.option("--component", "components", multiple=True, type=click.Choice(["regime"]),
              help="Add a component without parameters to the block's model line (e.g. regime).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Write every estimate as JSON ('-' for stdout).")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
              help="Write calibration.md, its plots, calibration.json and experiment.opl into this directory.")
@click.option("--block", "block_out", type=click.Path(dir_okay=False), default=None,
              help="Write the experiment block (an .opl snippet) to this file.")
@handled
def calibrate(data: str | None, futures: str | None, options: str | None, iv_summary: str | None, rate: float,
              exercise: str | None, pack: str | None, criterion: str, jump_threshold: float, window: int, limit: float | None, tick: float,
              repair: bool, components: tuple[str, ...], json_out: str | None, report_dir: str | None,
              block_out: str | None) -> None:
    """Fit the price model and implied-volatility rule to data; print the experiment block."""
    from opl.api import calibrate as run
    from opl.runtime.market.rules import RulePackError

    if (data is None) == (futures is None):
        raise click.UsageError("give either --data DIR or --futures FILE")
    if data is not None and (options or iv_summary):
        raise click.UsageError("--options and --iv-summary go with --futures; --data reads them from the directory")
    data = data_folder(data, pack=pack)
    try:
        with ProgressBar("calibrating", quiet=json_out == "-") as progress:
            result = run(data, futures=futures, options=options, iv_summary=iv_summary, rate=rate,
                         exercise=exercise, pack=pack, criterion=criterion, jump_threshold=jump_threshold,
                         window=window, limit=limit, tick=tick, repair=repair, progress=progress)
    except RulePackError as error:  # the pack --pack names: a usage error of that option
        raise click.UsageError(f"--pack {pack}: {error}") from None
    # Files first: if one cannot be written, no result is shown as if the run had succeeded.
    written = []
    if json_out == "-":
        import json

        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False, allow_nan=False))
    elif json_out:
        written.append(result.write_json(json_out))
    if block_out:
        written.append(result.write_block(block_out, components))
    if report_dir:
        written.append(result.write_report(report_dir))
    if json_out != "-":
        click.echo(result.summary() if not components else result.summary().replace(
            "\n".join(f"  {line}" for line in result.experiment_lines()),
            "\n".join(f"  {line}" for line in result.experiment_lines(components))))
        for path in written:
            click.echo(f"wrote {path}")
    sys.exit(EXIT_OK)

"""``opl payoff FILE --out payoff.png``: P&L at expiry, today and in between, with breakevens."""

from __future__ import annotations

import sys

import click

from opl.cli.compile import load_compiled
from opl.cli.options import FiniteFloatRange, market_option
from opl.cli.report import EXIT_OK, EXIT_USAGE, handled


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--out", "out", type=click.Path(dir_okay=False), default="payoff.png", show_default=True,
              help="Where to write the PNG.")
@click.option("--low", type=FiniteFloatRange(0, min_open=True), default=None,
              help="Lowest underlying price on the x axis.")
@click.option("--high", type=FiniteFloatRange(0, min_open=True), default=None,
              help="Highest underlying price on the x axis.")
@market_option()
@handled
def payoff(file: str, out: str, low: float | None, high: float | None, market: dict) -> None:
    """Draw the P&L profile of a strategy and print its breakevens and extremes."""
    from opl.compiler.payoff import payoff_curves, plot_payoff

    from pathlib import Path

    from matplotlib.backend_bases import FigureCanvasBase

    if low is not None and high is not None and not low < high:
        click.echo("error: --low must be positive and below --high", err=True)
        sys.exit(EXIT_USAGE)
    suffix = Path(out).suffix.lower().lstrip(".")
    formats = FigureCanvasBase.get_supported_filetypes()
    if not suffix:
        out += ".png"  # what matplotlib would write anyway; `wrote` then names the real file
    elif suffix not in formats:
        click.echo(f"error: --out {out}: cannot write a plot as `.{suffix}`; use .png (or one of "
                   f"{', '.join(sorted(formats))})", err=True)
        sys.exit(EXIT_USAGE)
    strategy = load_compiled(file, market)
    curves = payoff_curves(strategy, low=low, high=high)
    plot_payoff(strategy, curves, out)
    click.echo(curves.summary())
    click.echo(f"wrote {out}")
    sys.exit(EXIT_OK)

"""``opl build``: construct a leg set from an intent and target Greeks (spec §4, paths A/B/C).

The result is printed (or written with ``--out``) as a `.opl` file; ``reality_check``
runs `opl check` on it and the command fails (exit 1) if the checker finds an error.
"""

from __future__ import annotations

import math
import sys

import click

from opl.lang import limits

from opl.cli.options import FiniteFloatRange, market_option
from opl.cli.report import EXIT_FINDINGS, EXIT_OK, handled

INTENTS = ("Bull", "Bear", "RangeBound", "Breakout", "Neutral", "NotBull", "NotBear")


def _targets(text: str) -> dict[str, float]:
    out = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or name.strip() not in ("delta", "gamma", "vega", "theta"):
            raise click.BadParameter(f"`{item}`: expected greek=value with greek one of delta, gamma, vega, theta",
                                     param_hint="--target")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not (math.isfinite(number) and abs(number) <= limits.MAX_NUMBER):
            raise click.BadParameter(f"`{item}`: `{value}` is not a finite number up to {limits.MAX_NUMBER:g}",
                                     param_hint="--target")
        out[name.strip()] = number
    return out


@click.command()
@click.option("--intent", type=click.Choice(INTENTS), required=True, help="direction_intent of the strategy.")
@click.option("--vega-style", type=click.Choice(["Debit", "Credit"]), default=None, help="Premium paid or received.")
@click.option("--target", "target", default="", metavar="GREEK=VALUE,...",
              help="Position Greeks to aim for, in table units: delta, gamma, vega per vol point, theta per day.")
@market_option(default="price=100,iv=0.25", help="price, iv, rate, time of the market to build against.")
@click.option("--path", type=click.Choice(["A", "B", "C"]), default="C", show_default=True,
              help="A stepwise from MapIntentToO, B batch of template families, C solve for target Greeks.")
@click.option("--tenor", type=click.IntRange(1, 3650), default=30, show_default=True, help="Tenor in calendar days.")
@click.option("--multiplier", type=FiniteFloatRange(min=0, min_open=True), default=100.0, show_default=True,
              help="Contract multiplier (written as `granularity`; spec rc6: 100 units a contract).")
@click.option("--max-lots", type=click.IntRange(1, 1000), default=10, show_default=True, help="Lots per leg at most.")
@click.option("--max-risk", type=FiniteFloatRange(0, min_open=True), default=None, help="Worst loss at expiry allowed (currency).")
@click.option("--premium-offset", type=FiniteFloatRange(0, 1), default=None,
              help="Share of the debit the credit legs must offset (0.4 = 40%).")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the .opl file here.")
@handled
def build(intent, vega_style, target, market, path, tenor, multiplier, max_lots, max_risk, premium_offset, out):
    """Build a strategy for an intent and print it as an OPL-Lang file."""
    import datetime as dt

    from opl.lang.frontend import check_text
    from opl.compiler.construct import BuildRequest
    from opl.compiler.construct import build as run_build
    from opl.lang.render import render

    given = market
    request = BuildRequest(intent=intent, vega_style=vega_style, targets=_targets(target),
                           price=given.get("price", 100.0), iv=given.get("iv", 0.25), rate=given.get("rate", 0.0),
                           time=given.get("time", dt.date.today()), tenor_days=tenor, multiplier=multiplier,
                           max_lots=max_lots, max_risk=max_risk, premium_offset=premium_offset, path=path)
    result = run_build(request)
    report = check_text(result.text, out or "<built>").report  # reality_check
    if report.has_errors:
        click.echo(render([report], "full"), err=True)
        sys.exit(EXIT_FINDINGS)
    if out:
        with open(out, "w", encoding="utf-8") as handle:
            handle.write(result.text)
        click.echo(f"wrote {out}")
    else:
        click.echo(result.text, nl=False)
    sys.exit(EXIT_OK)

"""Options shared by several commands, declared once (black/pip-tools style)."""

from __future__ import annotations

import click


def _parse_market(ctx: click.Context, param: click.Parameter, value: str) -> dict:
    from opl.compiler import parse_market

    try:
        return parse_market(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from None


def market_option(default: str = "", help: str = "Override the file's market inputs: price, iv, rate, time, "
                                                  "support, resistance."):
    """``--market price=…,iv=…,rate=…,time=…,support=…,resistance=…``, parsed into a dict (usage error, exit 2)."""
    return click.option("--market", "market", default=default, show_default=bool(default), metavar="KEY=VALUE,...",
                        callback=_parse_market, help=help)


def data_option(help: str = "A data directory in the layout `opl data synth` writes (futures.csv, optional "
                            "options.csv, iv_summary.csv).", *, file_okay: bool = False, metavar: str = "DIR"):
    """``--data DIR``: market data for calibration (``opl calibrate``, ``opl simulate``; the latter also takes
    a calibration JSON for ``calibration file``)."""
    return click.option("--data", "data", default=None, type=click.Path(file_okay=file_okay), metavar=metavar,
                        help=help)

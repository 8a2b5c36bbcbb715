"""Options shared by several commands, declared once (black/pip-tools style)."""

from __future__ import annotations

import click


class FiniteFloatRange(click.FloatRange):
    """`click.FloatRange` that also refuses ``nan`` and ``inf``.

    click parses ``nan`` as a float and every range comparison with it is false, so a plain
    FloatRange lets ``--alpha nan`` through to the computation (a silent garbage result).
    """

    name = "finite float range"

    def convert(self, value, param, ctx):
        import math

        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def _parse_market(ctx: click.Context, param: click.Parameter, value: str) -> dict:
    from opl.compiler.strategy import parse_market

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
                            "options.csv, iv_summary.csv), or a folder of raw exchange/vendor files, imported "
                            "first (`opl data import`, logged).", *, file_okay: bool = False, metavar: str = "DIR"):
    """``--data DIR``: market data for calibration (``opl calibrate``, ``opl simulate``; the latter also takes
    a calibration JSON for ``calibration file``)."""
    return click.option("--data", "data", default=None, type=click.Path(file_okay=file_okay), metavar=metavar,
                        help=help)


def cluster_options(function):
    """``--scheduler ADDRESS`` (default ``OPL_SCHEDULER``) and ``--workers N``: run on a Dask cluster
    (`opl.simulation.cluster`)."""
    function = click.option("--workers", "workers", type=click.IntRange(1, 1024), default=None, metavar="N",
                            help="Start N local Dask worker processes on 127.0.0.1 and run the work on them "
                                 "(the same numbers as without; needs opl[dask]).")(function)
    return click.option("--scheduler", "scheduler", default=None, metavar="ADDRESS",
                        help="Run the work on the Dask cluster of this scheduler, e.g. tcp://10.0.0.5:8786 "
                             "(default: $OPL_SCHEDULER); the same numbers as without.")(function)


def cluster_session(scheduler: str | None, workers: int | None):
    """The `opl.simulation.cluster.session` of ``--scheduler``/``OPL_SCHEDULER``/``--workers``, entered before any work.

    A cluster that cannot be reached or started is an error on stderr and exit 2, without a traceback; no
    option and no ``OPL_SCHEDULER`` is a session that imports nothing.
    """
    import contextlib

    from opl.simulation.cluster import scheduler_address, session

    address = scheduler_address(scheduler)
    if address is not None and workers is not None:
        if scheduler is None:  # OPL_SCHEDULER is set, --workers asks for a local cluster: the flag wins
            address = None
        else:
            raise click.UsageError("give --scheduler ADDRESS or --workers N, not both")
    stack = contextlib.ExitStack()
    # an unreachable scheduler is a `SchedulerError` (an OplError, exit 2): the command's handler reports it
    stack.cluster = stack.enter_context(session(address, workers))  # the `opl.simulation.cluster.Cluster`, or None
    return stack

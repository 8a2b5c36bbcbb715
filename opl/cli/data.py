"""``opl data``: write the synthetic dataset, fetch from AKShare, import raw exchange/vendor files, validate a
data file, list the rolls of a series.

Exit codes: 0 success, 1 the file breaks its contract (each problem printed as
``path:line: column `name`: message``), 2 usage or I/O error.
"""

from __future__ import annotations

import sys

import click

from opl.cli.options import FiniteFloatRange
from opl.cli.report import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, handled

KINDS = ("futures", "options", "signals", "factors")


@click.group()
def data() -> None:
    """Market data: synthesise, fetch, validate, inspect rolls."""


@data.command()
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Directory to write into.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the numpy Generator.")
@click.option("--years", type=click.IntRange(1, 30), default=6, show_default=True, help="Years of daily data.")
@click.option("--start", default="2019-01-02", show_default=True, help="First calendar day (YYYY-MM-DD).")
@click.option("--hit-rate", "hit_rate", type=FiniteFloatRange(0, 1), default=0.85, show_default=True,
              help="True hit rate of the planted direction views.")
@click.option("--no-options", is_flag=True, help="Skip the option chains (the largest file).")
@click.option("--profile", type=click.Choice(("jujube", "etf50")), default="jujube", show_default=True,
              help="The market: CZCE jujube futures options, or SSE 50ETF options (opl/data/synth.py).")
@handled
def synth(out: str, seed: int, years: int, start: str, hit_rate: float, no_options: bool, profile: str) -> None:
    """Write a synthetic dataset (futures, options, signals, factors) and truth.json to OUT."""
    import pandas as pd

    from opl.data.synth import synthesize

    try:
        pd.Timestamp(start)
    except ValueError:
        click.echo(f"error: --start {start!r} is not a date", err=True)
        sys.exit(EXIT_USAGE)
    dataset = synthesize(seed=seed, years=years, start=start, hit_rate=hit_rate, options=not no_options,
                         profile=profile)
    paths = dataset.write(out)
    click.echo(dataset.summary())
    for path in paths.values():
        click.echo(f"wrote {path}")
    sys.exit(EXIT_OK)


def _load_or_exit(path: str, kind: str, **kwargs):
    """The loaded file; its problems are what ``validate`` reports (stdout, then the count), exit 1."""
    from opl.data.loaders import DataError, load, shown

    try:
        return load(path, kind=kind, **kwargs)
    except DataError as error:
        for line in shown(error.problems):
            click.echo(line)
        count = len(error.problems)
        click.echo(f"{count} problem{'s' if count != 1 else ''} in {path}: not a valid {kind} file "
                   f"(see examples/jujube/data_contracts.md)", err=True)
        sys.exit(EXIT_FINDINGS)


@data.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Directory to write into.")
@click.option("--pack", default=None, help="Rule pack (czce_cj, sse_50etf, …): option multiplier, expiry rule, "
                                           "daily limit, futures or spot underlying.")
@click.option("--parity-tolerance", "tolerance", type=FiniteFloatRange(0, 1, min_open=True), default=None,
              help="Largest put–call parity gap (log) between the chain's implied forward and the underlying "
                   "[default: 0.02].")
@handled(hints={"DataError": "nothing was written (the alias table: examples/jujube/data_contracts.md)"})
def import_command(files: tuple[str, ...], out: str, pack: str | None, tolerance: float | None) -> None:
    """Read raw exchange/vendor FILES (or folders), write the canonical layout and import_log.md to OUT."""
    from opl.data.importer import import_files

    result = import_files(files, out, pack=pack, tolerance=tolerance)
    click.echo(result.summary())
    for path in result.written.values():
        click.echo(f"wrote {path}")
    click.echo(f"wrote {result.log}")
    sys.exit(EXIT_OK)


@data.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--kind", required=True, type=click.Choice(KINDS), help="Which contract the file follows.")
@click.option("--limit", type=FiniteFloatRange(0, 1, min_open=True), default=None,
              help="Daily limit fraction to check futures prices against prev_settlement (CJ: 0.10).")
@click.option("--tick", type=FiniteFloatRange(0), default=0.0, show_default=True,
              help="Price tick, the tolerance of the limit check (CJ: 5).")
@click.option("--repair", is_flag=True, help="Make the documented repairs, each listed.")
@click.option("--underlying", "underlying", type=click.Path(dir_okay=False), default=None,
              help="Options: the underlying's bars to check the chain against by put–call parity (default: the "
                   "futures.csv beside FILE, when there is one).")
@click.option("--pack", default=None, help="Options: the rule pack, which says whether the underlying is spot "
                                           "(an ETF: dividends allowed for) or the futures the options deliver.")
@click.option("--parity-tolerance", "tolerance", type=FiniteFloatRange(0, 1, min_open=True), default=0.02,
              show_default=True, help="Largest put–call parity gap (log) between the implied forward and the "
                                      "underlying.")
@handled
def validate(file: str, kind: str, limit: float | None, tick: float, repair: bool, underlying: str | None,
             pack: str | None, tolerance: float) -> None:
    """Check FILE against its data contract; print every located problem. An option chain is also checked
    against its underlying by put–call parity."""
    result = _load_or_exit(file, kind, limit=limit, tick=tick, repair=repair)
    click.echo(result.summary())
    if kind == "options":
        _parity_or_exit(result, underlying, pack, tolerance, repair)
    click.echo("ok")
    sys.exit(EXIT_OK)


def _parity_or_exit(options, underlying: str | None, pack: str | None, tolerance: float, repair: bool) -> None:
    from pathlib import Path

    from opl.data.parity import check_parity
    from opl.runtime.market.rules import load_pack

    if underlying is None:
        beside = [p for p in (Path(options.file).with_name(f"futures{s}") for s in (".csv", ".parquet", ".pq"))
                  if p.is_file()]
        if not beside:
            click.echo("put–call parity: not checked (no underlying: --underlying FILE, or a futures.csv beside "
                       "the chain)")
            return
        underlying = str(beside[0])
    spot = pack is not None and load_pack(pack).underlying.kind != "future"
    bars = _load_or_exit(underlying, "futures", repair=repair)
    report = check_parity(options.frame, bars.frame, spot=spot, tolerance=tolerance, file=options.file,
                          lines=options.lines, futures_file=underlying)
    for problem in report.problems:
        click.echo(str(problem))
    click.echo(report.summary())
    if report.problems:
        click.echo(f"{options.file}: the chain disagrees with its underlying {underlying} (put–call parity)",
                   err=True)
        sys.exit(EXIT_FINDINGS)


@data.command()
@click.option("--source", type=click.Choice(["akshare"]), required=True,
              help="Where to fetch from (akshare: the optional extra, pip install -e \".[akshare]\").")
@click.option("--symbol", required=True,
              help="Product code with a rule pack: a CZCE product (CJ: futures and option chains) or an SSE ETF "
                   "(510050: the ETF's bars and its options of each --month).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Directory to write into.")
@click.option("--start", default=None, help="First trading day (YYYY-MM-DD); option chains for every day from it.")
@click.option("--end", default=None, help="Last trading day (YYYY-MM-DD).")
@click.option("--option-days", "option_days", type=click.IntRange(1, 5000), default=60, show_default=True,
              help="Without --start: option chains for the last N trading days (one request a day).")
@click.option("--month", "months", multiple=True, metavar="YYYYMM",
              help="An SSE ETF's option expiry month to fetch (repeatable; required for an ETF).")
@click.option("--no-options", is_flag=True, help="Futures only.")
@click.option("--repair", is_flag=True, help="Make the documented repairs, each listed.")
@handled
def fetch(source: str, symbol: str, out: str, start: str | None, end: str | None, option_days: int,
          months: tuple[str, ...], no_options: bool, repair: bool) -> None:
    """Fetch futures (or ETF) bars and option chains into OUT in the layout `opl calibrate --data` reads."""
    from opl.data.akshare import ETF_PRODUCTS, fetch as fetch_akshare, fetch_etf
    from opl.errors import OplError

    notes: list[str] = []
    if symbol in ETF_PRODUCTS and not months:
        raise click.UsageError(f"--symbol {symbol} is an ETF: give the option expiry months, --month YYYYMM")
    try:
        if symbol in ETF_PRODUCTS:
            paths, notes = fetch_etf(symbol, months, out, start=start, end=end)
        else:
            paths = fetch_akshare(symbol, out, start=start, end=end, options=not no_options,
                                  option_days=option_days, repair=repair)
    except OplError:  # AKShare missing or unreachable (exit 2), data breaking their contract (exit 1)
        raise
    except ValueError as error:  # an unknown product: a usage error of --symbol
        raise click.UsageError(f"--symbol {symbol}: {error}") from None
    for note in notes:
        click.echo(f"note: {note}")
    for path in paths.values():
        click.echo(f"wrote {path}")
    sys.exit(EXIT_OK)


@data.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--limit", type=FiniteFloatRange(0, 1, min_open=True), default=None,
              help="Daily limit fraction: a jump must also exceed it to be a roll (CJ: 0.10).")
@click.option("--tick", type=FiniteFloatRange(0), default=0.0, show_default=True, help="Price tick (CJ: 5).")
@click.option("--mad-k", "mad_k", type=FiniteFloatRange(0, min_open=True), default=8.0, show_default=True,
              help="Robust standard deviations a jump must exceed.")
@click.option("--repair", is_flag=True, help="Make the documented repairs, each listed.")
@handled
def rolls(file: str, limit: float | None, tick: float, mad_k: float, repair: bool) -> None:
    """List the contract rolls of a continuous futures series, each with its evidence (symbol change, price jump,
    open interest and volume)."""
    from opl.data.rolls import within_contract_returns

    result = _load_or_exit(file, "futures", repair=repair)
    for fix in result.repairs:
        click.echo(f"repaired: {fix}")
    returns = within_contract_returns(result.frame, limit=limit, tick=tick, mad_k=mad_k)
    click.echo(returns.rolls.summary())
    click.echo(f"{returns.n_excluded} roll-day returns excluded from {len(returns.returns) - 1}")
    sys.exit(EXIT_OK)

"""``opl schema NAME``: the JSON Schema of one of opl's JSON outputs (`opl.schemas`); ``--list`` names them."""

from __future__ import annotations

import json
import sys

import click

from opl.cli.report import EXIT_USAGE


@click.command()
@click.argument("name", required=False)
@click.option("--list", "list_names", is_flag=True, help="List every output with a schema and what writes it.")
def schema(name: str | None, list_names: bool) -> None:
    """Print the JSON Schema of a JSON output (check, compile, simulate, backtest, calibrate, assumptions,
    loop-result, loop-run)."""
    from opl.lang.diagnostics import did_you_mean
    from opl.schemas import SCHEMAS, json_schema

    if list_names == (name is not None):
        raise click.UsageError("give either a NAME or --list")
    if list_names:
        width = max(map(len, SCHEMAS))
        for key, entry in SCHEMAS.items():
            click.echo(f"{key:<{width}}  v{entry.version}  {entry.written_by}")
        return
    if name not in SCHEMAS:
        click.echo(f"error: no schema named `{name}`", err=True)
        guess = did_you_mean(name, list(SCHEMAS))
        if guess:
            click.echo(f"  = help: did you mean `{guess}`?", err=True)
        click.echo("  = note: `opl schema --list` lists them", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(json.dumps(json_schema(name), indent=2, ensure_ascii=False))

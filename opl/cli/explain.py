"""``opl explain CODE``: the long explanation of a diagnostic code (as ``rustc --explain``).

``opl explain --list`` prints the whole table, one code a line. An unknown code is a
usage error (exit 2) with a did-you-mean on stderr, so a typo in a script fails loudly.
"""

from __future__ import annotations

import sys

import click

from opl.cli.report import EXIT_USAGE


@click.command()
@click.argument("code", required=False)
@click.option("--list", "list_codes", is_flag=True, help="List every code with its severity and title.")
def explain(code: str | None, list_codes: bool) -> None:
    """Explain a diagnostic code, e.g. `opl explain E101`."""
    from opl.lang.codes import CODES, explain as explanation
    from opl.lang.diagnostics import did_you_mean

    if list_codes == (code is not None):
        raise click.UsageError("give either a CODE or --list")
    if list_codes:
        width = max(len(entry.severity) for entry in CODES.values())
        for entry in CODES.values():
            click.echo(f"{entry.code}  {entry.severity:<{width}}  {entry.title}")
        return
    text = explanation(code.strip())
    if text is None:
        click.echo(f"error: unknown code `{code}`", err=True)
        suggestion = did_you_mean(code.strip(), list(CODES))
        if suggestion:
            click.echo(f"  = help: did you mean `{suggestion}`?", err=True)
        click.echo("  = note: `opl explain --list` lists every code", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(text, nl=False)

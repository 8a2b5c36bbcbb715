"""``opl fmt FILE...``: print, check, diff or rewrite OPL-Lang files in canonical form.

Modes (black style): with one file and no option the formatted text goes to stdout;
``--check`` lists the files that would change; ``--diff`` prints a unified diff;
``--write`` rewrites changed files in place. ``-`` reads stdin (and ``--write`` then
prints to stdout).

Exit codes: 0 done (and, with ``--check``, nothing would change); 1 a file would
change under ``--check``, or a file was left alone because of syntax errors (printed
to stderr in the concise format); 2 usage or I/O error.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

import click

from opl.cli.report import FormatOutcome


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--check", "check_only", is_flag=True,
              help="Write nothing; exit 1 when a file is not in canonical form, listing it.")
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff instead of the formatted text.")
@click.option("--write", is_flag=True, help="Rewrite files in place (only those that change).")
def fmt(files: tuple[str, ...], check_only: bool, show_diff: bool, write: bool) -> None:
    """Format OPL-Lang files (grammar/README.md, "Canonical form")."""
    from opl.lang.diagnostics import FileReport
    from opl.lang.fmt import format_text
    from opl.lang.parser import decode
    from opl.lang.render import render
    from opl.lang.source import SourceFile

    if write and (check_only or show_diff):
        raise click.UsageError("--write cannot be combined with --check or --diff")
    if len(files) > 1 and not (write or check_only or show_diff):
        raise click.UsageError("give one file to print, or use --check, --diff or --write for several")
    outcome = FormatOutcome(check=check_only)
    for name in files:
        shown = "<stdin>" if name == "-" else name
        if name.endswith(".json"):
            click.echo(f"skipped {name}: opl fmt formats OPL-Lang text, not the JSON leg form", err=True)
            continue
        try:
            data = click.get_binary_stream("stdin").read() if name == "-" else Path(name).read_bytes()
        except OSError as error:
            outcome.io_error(f"{name}: {error.strerror or error}")
            continue
        source, problems = decode(data, shown)
        result = format_text(source.text, shown) if source is not None else None
        if result is None or result.diagnostics:
            report = FileReport(source or SourceFile(shown, ""), problems if result is None else result.diagnostics)
            click.echo(render([report], "concise"), err=True, nl=False)
            click.echo(f"error: {shown}: left unchanged (errors above)", err=True)
            outcome.failed.append(shown)
            continue
        if result.error:
            click.echo(f"error: {shown}: {result.error}", err=True)
            outcome.failed.append(shown)
            continue
        if result.changed:
            outcome.changed.append(shown)
        else:
            outcome.unchanged += 1
        if show_diff:
            click.echo(_unified_diff(source.text, result.text, shown), nl=False)
        elif write and name != "-":
            if result.changed:
                try:
                    with open(name, "w", encoding="utf-8", newline="") as handle:
                        handle.write(result.text)
                except OSError as error:
                    outcome.io_error(f"{name}: {error.strerror or error}")
        elif not check_only:
            click.echo(result.text, nl=False)
        if check_only and result.changed:
            click.echo(f"would reformat {shown}", err=True)
    for message in outcome.io_errors:
        click.echo(f"error: {message}", err=True)
    if write or check_only:
        click.echo(outcome.summary(), err=True)
    sys.exit(outcome.exit_code)


def _unified_diff(before: str, after: str, name: str) -> str:
    """A unified diff that stays well formed when a side does not end in a newline (as diff -u)."""
    lines = difflib.unified_diff(before.splitlines(True), after.splitlines(True), name, f"{name} (formatted)")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)

"""``opl fmt FILE...``: print, check or rewrite files in the canonical form.

Exit codes: 0 done (or nothing would change with ``--check``); 1 a file would change
under ``--check``, or a file has syntax errors (left untouched); 2 I/O error.
"""

from __future__ import annotations

import difflib
import sys

import click

from opl.cli.report import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--check", "check_only", is_flag=True, help="Exit 1 when a file is not in canonical form; write nothing.")
@click.option("--write", is_flag=True, help="Rewrite files in place (only those that change).")
@click.option("--diff", is_flag=True, help="Print a unified diff instead of the formatted text.")
def fmt(files: tuple[str, ...], check_only: bool, write: bool, diff: bool) -> None:
    """Format OPL-Lang files (see grammar/README.md, "Canonical form")."""
    from opl.diagnostics import FileReport
    from opl.fmt import format_text
    from opl.render import render
    from opl.source import SourceFile

    if write and check_only:
        raise click.UsageError("--write and --check exclude each other")
    exit_code, changed, unchanged = EXIT_OK, [], 0
    for name in files:
        try:
            text = sys.stdin.read() if name == "-" else open(name, encoding="utf-8").read()
        except (OSError, UnicodeDecodeError) as error:
            click.echo(f"error: {name}: {getattr(error, 'strerror', None) or error}", err=True)
            exit_code = EXIT_USAGE
            continue
        result = format_text(text, name)
        if result.diagnostics:
            report = FileReport(SourceFile(name, text), result.diagnostics)
            click.echo(render([report], "concise"), err=True, nl=False)
            click.echo(f"error: {name}: not formatted (syntax errors)", err=True)
            exit_code = max(exit_code, EXIT_FINDINGS)
            continue
        if result.changed:
            changed.append(name)
        else:
            unchanged += 1
        if diff:
            click.echo("".join(difflib.unified_diff(text.splitlines(True), result.text.splitlines(True),
                                                    f"{name} (original)", f"{name} (formatted)")), nl=False)
        elif write:
            if result.changed and name != "-":
                with open(name, "w", encoding="utf-8") as handle:
                    handle.write(result.text)
            elif name == "-":
                click.echo(result.text, nl=False)
        elif not check_only:
            click.echo(result.text, nl=False)
    if check_only:
        for name in changed:
            click.echo(f"would reformat {name}", err=True)
        if changed:
            exit_code = max(exit_code, EXIT_FINDINGS)
    if write:
        click.echo(f"reformatted {len(changed)} file{'s' * (len(changed) != 1)}, {unchanged} unchanged", err=True)
    sys.exit(exit_code)

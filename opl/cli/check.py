"""``opl check FILE...``: lint OPL-Lang files like a compiler.

Exit codes (DESIGN.md): 0 no error (warnings allowed unless ``--strict``), 1 any error
(or any warning with ``--strict``), 2 usage or I/O error.
"""

from __future__ import annotations

import sys

import click

from opl.checks import DEFAULT_GUARD_CODES
from opl.cli.report import CheckOutcome


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(["full", "concise", "json", "sarif"]), default="full",
              show_default=True, help="Output format.")
@click.option("--strict", is_flag=True, help="Fail (exit 1) on warnings too.")
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
              help="Colour the full format.")
@click.option("--no-guard", "no_guard", multiple=True, type=click.Choice(DEFAULT_GUARD_CODES),
              help="Switch off a default guard of spec §3.4 (repeatable); the file's own rules still apply.")
@click.option("--confine", "confine", multiple=True, type=click.Path(file_okay=False), metavar="DIR",
              help="Check as `opl loop` checks a model's candidate: a file the .opl names must be a regular file "
                   "inside DIR (repeatable), named by a relative path (E015).")
def check(files: tuple[str, ...], fmt: str, strict: bool, color: str, no_guard: tuple[str, ...],
          confine: tuple[str, ...]) -> None:
    """Check OPL-Lang files (.opl, or the JSON leg form .json) and report every finding."""
    from opl.checks import CheckOptions
    from opl.fileaccess import FileAccess
    from opl.frontend import check_path, check_source
    from opl.parser import decode
    from opl.render import render, summary_line

    options = CheckOptions(no_guards=frozenset(no_guard), files=FileAccess.within(*confine) if confine else None)
    outcome = CheckOutcome(strict=strict)
    reports = []
    for name in files:
        try:
            if name == "-":
                source, problems = decode(sys.stdin.buffer.read(), "<stdin>")
                if source is None:
                    from opl.diagnostics import FileReport
                    from opl.source import SourceFile

                    result_report = FileReport(SourceFile("<stdin>", ""), problems)
                else:
                    result_report = check_source(source, options).report
            else:
                result_report = check_path(name, options).report
        except OSError as error:
            outcome.io_error(f"{name}: {error.strerror or error}")
            continue
        reports.append(result_report)
        outcome.add(result_report)
    use_color = color == "always" or (color == "auto" and fmt == "full" and sys.stdout.isatty())
    text = render(reports, fmt, color=use_color)
    if text:
        click.echo(text, nl=not text.endswith("\n"), color=use_color)
    if fmt == "full":
        summary = summary_line(reports)
        if summary:
            click.echo(summary, err=False)
    for message in outcome.io_errors:
        click.echo(f"error: {message}", err=True)
    sys.exit(outcome.exit_code)

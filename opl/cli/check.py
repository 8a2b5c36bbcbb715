"""``opl check FILE...``: lint OPL-Lang files like a compiler.

Exit codes (DESIGN.md): 0 no error (warnings allowed unless ``--strict``), 1 any error
(or any warning with ``--strict``), 2 usage or I/O error.
"""

from __future__ import annotations

import sys

import click

from opl.lang.checks import DEFAULT_GUARD_CODES
from opl.cli.report import CheckOutcome, handled


def _settings(name: str, config: str | None, isolated: bool):
    """The settings of one file: ``--isolated`` none, ``--config`` that file's, else the nearest (stdin: the
    current folder's)."""
    from opl.lang.configuration import Settings, read_settings, settings_for

    if isolated:
        return Settings()
    if config is not None:
        from pathlib import Path

        return read_settings(Path(config))
    return settings_for("." if name == "-" else name)


def _check_one(name: str, settings, options):
    """The unfiltered report of one file (or of stdin); OSError for I/O problems."""
    from opl.lang.configuration import check_options
    from opl.lang.frontend import check_path, check_source
    from opl.lang.parser import decode

    options = check_options(settings, options)
    if name != "-":
        return check_path(name, options).report
    source, problems = decode(sys.stdin.buffer.read(), "<stdin>")
    if source is None:
        from opl.lang.diagnostics import FileReport
        from opl.lang.source import SourceFile

        return FileReport(SourceFile("<stdin>", ""), problems)
    return check_source(source, options).report


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
@click.option("--config", "config", type=click.Path(dir_okay=False, exists=True), default=None, metavar="FILE",
              help="Read settings from this opl.toml or pyproject.toml instead of the one nearest each file.")
@click.option("--isolated", is_flag=True, help="Read no configuration file: every code, no defaults.")
@click.option("--show-settings", is_flag=True,
              help="Print the settings that apply to each file (and where they come from), then exit.")
@click.option("--show-suppressed", is_flag=True,
              help="Also print the findings that settings or `# opl: ignore[...]` suppress, each saying why "
                   "(they never change the exit code).")
@handled
def check(files: tuple[str, ...], fmt: str, strict: bool, color: str, no_guard: tuple[str, ...],
          confine: tuple[str, ...], config: str | None, isolated: bool, show_settings: bool,
          show_suppressed: bool) -> None:
    """Check OPL-Lang files (.opl, or the JSON leg form .json) and report every finding.

    Settings come from the nearest opl.toml or pyproject.toml [tool.opl] (select, ignore,
    per-file-ignores, exchange, market); see README.md, "Configuration".
    """
    from opl.lang.checks import CheckOptions
    from opl.lang.configuration import apply_settings, describe, with_suppressed
    from opl.lang.fileaccess import FileAccess
    from opl.lang.render import render, summary_line

    options = CheckOptions(no_guards=frozenset(no_guard), files=FileAccess.within(*confine) if confine else None)
    outcome = CheckOutcome(strict=strict)
    reports, shown, hidden = [], [], 0
    for name in files:
        settings = _settings(name, config, isolated)
        if show_settings:
            click.echo(describe(settings, name) + "\n")
            continue
        try:
            result_report = _check_one(name, settings, options)
        except OSError as error:
            outcome.io_error(f"{name}: {error.strerror or error}")
            continue
        result_report, suppressed = apply_settings(result_report, settings)
        hidden += len(suppressed)
        reports.append(result_report)
        shown.append(with_suppressed(result_report, suppressed) if show_suppressed else result_report)
        outcome.add(result_report)
    if show_settings:
        sys.exit(0)
    use_color = color == "always" or (color == "auto" and fmt == "full" and sys.stdout.isatty())
    text = render(shown, fmt, color=use_color)
    if text:
        click.echo(text, nl=not text.endswith("\n"), color=use_color)
    if fmt == "full":
        summary = summary_line(reports)
        if summary:
            click.echo(summary, err=False)
        if show_suppressed and hidden:
            click.echo(f"{hidden} suppressed, shown above (they do not change the exit code)")
    for message in outcome.io_errors:
        click.echo(f"error: {message}", err=True)
    sys.exit(outcome.exit_code)

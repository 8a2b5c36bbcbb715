"""``opl compile FILE``: the resolved, priced leg set as JSON or a table.

Exit codes: 0 compiled; 1 the file has errors (printed like `opl check`); 2 usage or
I/O error (a bad ``--market`` item, an unreadable file).
"""

from __future__ import annotations

import json
import sys

import click

from opl.cli.options import market_option
from opl.cli.report import EXIT_OK, handled


def load_compiled(path: str, market: dict):
    """Check and compile a file (shared by compile and payoff); raises `opl.compiler.strategy.CompileError`.

    The project's defaults (``exchange``, ``[market]`` of the nearest opl.toml / ``[tool.opl]``) fill what
    the file leaves out, as in `opl check` and in the editor's hover, so the three price the same legs.
    """
    from pathlib import Path

    from opl.api import compile as run
    from opl.lang.configuration import check_options, settings_for

    return run(Path(path), market=market, options=check_options(settings_for(path)))


@click.command("compile")
@click.argument("file", type=click.Path(dir_okay=False), required=False)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="JSON per DESIGN.md (raw Greeks), or a table for people (vega per 1%, theta per day).")
@market_option()
@click.option("--schema", is_flag=True, help="Print the JSON schema of the compiled strategy and exit.")
@handled
def compile_command(file: str | None, fmt: str, market: dict, schema: bool) -> None:
    """Resolve strikes and expiries, price every leg and sum the Greeks."""
    if schema:
        from opl.compiler.compiled import CompiledStrategy

        click.echo(json.dumps(CompiledStrategy.model_json_schema(), indent=2))
        sys.exit(EXIT_OK)
    if file is None:
        raise click.UsageError("missing FILE")
    strategy = load_compiled(file, market)
    if fmt == "json":
        click.echo(strategy.model_dump_json(indent=2))
    else:
        _table(strategy)
    sys.exit(EXIT_OK)


def _table(strategy) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{strategy.source}: {strategy.summary()}", title_justify="left")
    rows = strategy.leg_table()
    for column in rows[0]:
        table.add_column(column, justify="left" if column in ("side", "instrument") else "right", no_wrap=True)

    def cell(value) -> str:
        if value is None:
            return "—"
        if isinstance(value, float):
            return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
        return str(value)

    for row in rows:
        table.add_row(*(cell(v) for v in row.values()))
    t = strategy.totals
    table.add_row("total", "", "", "", "", "", "", "", cell(t.premium), cell(t.delta), cell(t.gamma),
                  cell(t.vega / 100), cell(t.theta / 365), cell(t.rho / 100), cell(t.charm / 365), style="bold")
    probe = Console()
    console = Console(width=probe.width if probe.is_terminal else 200)  # pipes and CI get the whole table
    console.print(table)
    notes = [f"position Greeks: quantity × polarity × multiplier; vega and rho per 1%, theta and charm per day; "
             f"'price' of the total row is the net premium ({'debit' if t.premium > 0 else 'credit'})"]
    if t.margin is not None:
        combined = "" if t.margin_per_leg is None or abs(t.margin_per_leg - t.margin) < 0.005 else \
            f" as a combination ({t.margin_per_leg:,.2f} leg by leg)"
        notes.append(f"exchange margin at the {strategy.underlying.rule_pack} rates: {t.margin:,.2f}{combined}")
    notes.extend(f"warning {w}" for w in strategy.warnings)
    notes.extend(f"note: {n}" for n in strategy.notes)
    for note in notes:
        console.print(note)

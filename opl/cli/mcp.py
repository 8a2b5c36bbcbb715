"""``opl mcp``: the Model Context Protocol server over stdio, for agents (README.md, "Agents (MCP)")."""

from __future__ import annotations

import click

from opl.cli.options import FiniteFloatRange


@click.command()
@click.option("--root", type=click.Path(file_okay=False, exists=True), default=None, metavar="DIR",
              help="The folder a file's `calibration file(\"…\")` may name files in (as `opl loop` confines a "
                   "candidate, E015). Without it, a file may name none.")
@click.option("--max-seconds", type=FiniteFloatRange(0, min_open=True), default=60.0, show_default=True,
              help="The longest a `simulate` call runs before it is stopped.")
@click.option("--max-paths", type=click.IntRange(10), default=5_000, show_default=True,
              help="The most paths a `simulate` call may ask for.")
def mcp(root: str | None, max_seconds: float, max_paths: int) -> None:
    """Serve check, explain, compile, payoff and simulate (and the language reference) to an MCP client on
    stdin/stdout."""
    from pathlib import Path

    try:
        from opl.mcp_server import ServerLimits, serve
    except ImportError as error:  # mcp is a dependency; a broken install says so instead of a traceback
        raise click.ClickException(f"the MCP server needs the mcp SDK ({error}); pip install 'mcp>=2.3'") from None
    serve(ServerLimits(root=Path(root).resolve() if root else None, max_seconds=max_seconds, max_paths=max_paths))

"""``opl lsp``: the language server over stdio, for editors (README.md, "Editor support")."""

from __future__ import annotations

import click


@click.command()
def lsp() -> None:
    """Run the OPL-Lang language server on stdin/stdout (diagnostics, hover, completion, formatting,
    code actions, symbols, go-to-definition)."""
    try:
        from opl.lsp.server import main
    except ImportError as error:  # pygls is a dependency; a broken install says so instead of a traceback
        raise click.ClickException(f"the language server needs pygls ({error}); pip install 'pygls>=2'") from None
    main()

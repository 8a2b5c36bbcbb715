"""``--data`` given a folder of raw exchange/vendor files: the same import as ``opl data import``, logged.

A folder already in the canonical layout (``futures.csv`` …, what ``opl data synth`` and
``opl data import`` write) is used as it is. Any other folder is imported into a new
temporary folder (:func:`opl.data.importer.resolve_data`); the command says so on
stderr, naming the folder and its ``import_log.md``, before it prints anything else.
"""

from __future__ import annotations

import click

from opl.cli.report import reported


def strategy_pack(file: str | None) -> str | None:
    """The rule pack a strategy file names (for the multiplier and expiry rule of an import); None if none."""
    if file is None:
        return None
    try:
        from opl.lang.frontend import check_text
        from opl.compiler.strategy import compile_checked

        with open(file, encoding="utf-8") as handle:
            compiled = compile_checked(check_text(handle.read()), None)
        return compiled.strategy.underlying.rule_pack
    except Exception:  # noqa: BLE001 - the command itself reports a bad file; the import then runs packless
        return None


def data_folder(data: str | None, *, strategy: str | None = None, pack: str | None = None) -> str | None:
    """``data`` unchanged, or the folder its raw files were imported into (exit 1 on what cannot be imported)."""
    if data is None:  # nothing to import: not worth the importer's pandas (~0.5 s of every `opl simulate`)
        return None
    from opl.data.importer import resolve_data
    from opl.errors import OplError
    from opl.runtime.market.rules import RulePackError

    with reported(data, hints={"DataError": f"--data {data}: raw files that `opl data import` cannot map"}):
        try:
            folder, result = resolve_data(data, pack=pack or strategy_pack(strategy))
        except RulePackError as error:  # the pack the strategy names cannot map these files: a data problem
            raise OplError(f"--data {data}: {error}") from None
    if result is not None:
        roles = ", ".join(f"{f.role} ({f.source})" for f in result.files)
        click.echo(f"note: --data {data} holds raw files: imported {roles} into {folder} "
                   f"(every mapping, derivation and repair: {result.log})", err=True)
    return folder

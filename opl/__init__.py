"""opl: check, compile, simulate and improve option strategies written in OPL-Lang.

The facade (sqlglot style) — each name runs one stage:

>>> import opl
>>> result = opl.check("opl-lang 1.0\\nS = long Option(Call, 480, 14d)\\n")
>>> [d.code for d in result.report.diagnostics]
['W404']

``opl.parse`` gives the syntax tree, ``opl.check`` the diagnostics with the lowered
document and the normalised legs. Importing ``opl`` imports nothing numeric.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from opl.lang.frontend import CheckResult
    from opl.lang.parser import ParseResult

__all__ = ["parse", "check", "check_file"]


def parse(text: str, path: str = "<string>") -> "ParseResult":
    """Parse OPL-Lang text into its syntax tree (with syntax diagnostics)."""
    from opl.lang.parser import parse as _parse

    return _parse(text, path)


def check(text: str, path: str = "<string>", options=None) -> "CheckResult":
    """Run the whole front end on text: parse, lower, normalise and check.

    ``options``: an `opl.lang.checks.CheckOptions` (guards switched off; ``files`` confines the files the text
    names to some folders, E015).
    """
    from opl.lang.frontend import check_text

    return check_text(text, path, options)


def check_file(path, options=None) -> "CheckResult":
    """Read and check a file (.opl, or the JSON leg form .json); ``options`` as for `check`."""
    from opl.lang.frontend import check_path

    return check_path(path, options)

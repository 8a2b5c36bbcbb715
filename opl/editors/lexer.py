"""A Pygments lexer for OPL-Lang, built at import from `opl.editors.highlight.rules`.

Registered under the ``pygments.lexers`` entry point (alias ``opl``, ``*.opl``), so
``pygmentize -l opl FILE``, Sphinx and MkDocs highlight OPL-Lang once ``opl`` is
installed. Pygments comes with rich, a dependency of ``opl``.
"""

from __future__ import annotations

from pygments.lexer import RegexLexer
from pygments.token import Error, Token

from opl.editors.highlight import WHITESPACE, rules


def _token(path: str):
    token = Token
    for part in path.split("."):
        token = getattr(token, part)
    return token


class OplLexer(RegexLexer):
    """OPL-Lang (``.opl``): the option-strategy language `opl` checks, compiles and simulates."""

    name = "OPL-Lang"
    aliases = ["opl", "opl-lang"]
    filenames = ["*.opl"]
    mimetypes = ["text/x-opl"]
    url = "grammar/README.md"

    tokens = {
        "root": [(WHITESPACE.regex, _token(WHITESPACE.token))]
        + [(rule.regex, _token(rule.token)) for rule in rules()]
        + [(r".", Error)],  # a character no rule knows: the checker's E002
    }

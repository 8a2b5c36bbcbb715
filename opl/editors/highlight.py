"""Syntax highlighting rules for OPL-Lang, built from the parser's own vocabulary.

One ordered table of rules feeds both highlighters: the TextMate grammar editors read
(VS Code, Zed, Sublime; ``opl/editors/vscode/syntaxes/opl.tmLanguage.json``, written
by ``python -m opl.editors.highlight --write`` and checked for staleness by a test) and
the Pygments lexer (`opl.editors.lexer`, built from the same table at import). The rules
come from two sources the parser and checker use:

- the lark grammar's terminals (grammar/opl.lark): every terminal has a style in
  `TERMINAL_STYLES` (a test fails when the grammar gains a terminal the table lacks),
  its keywords (``long``, ``short``, ``and``, …) are read from it, and the numeric
  literals reuse its regular expressions;
- the vocabularies (`opl.lang.vocabulary`, `opl.lang.templates`): fields, primitives, templates,
  triggers, actions, values and variables.

Rules are tried in order at each position (Pygments' rule; a TextMate engine takes the
earliest match and, on a tie, the first rule), so literals come before names and the
classified names before the generic ``NAME``.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from opl.lang import vocabulary as vocab

GRAMMAR_PATH = Path(__file__).resolve().parent / "vscode" / "syntaxes" / "opl.tmLanguage.json"
_BEFORE = r"(?<![A-Za-z0-9_])"
_AFTER = r"(?![A-Za-z0-9_])"


@dataclass(frozen=True)
class Rule:
    """One highlighting rule: a regular expression (Python ``re`` and Oniguruma alike), its
    TextMate scope and its Pygments token type (a dotted path under ``pygments.token.Token``)."""

    name: str
    regex: str
    scope: str
    token: str


# Every terminal of grammar/opl.lark → (TextMate scope, Pygments token); None: covered by another rule.
TERMINAL_STYLES: dict[str, tuple[str, str] | None] = {
    "OPL_LANG": ("keyword.control.directive.opl", "Keyword.Namespace"),
    "VERSION": None,  # part of the header rule
    "LONG": ("keyword.other.polarity.opl", "Keyword"),
    "SHORT": ("keyword.other.polarity.opl", "Keyword"),
    "X": ("keyword.operator.times.opl", "Operator.Word"),
    "OR": ("keyword.operator.logical.opl", "Operator.Word"),
    "AND": ("keyword.operator.logical.opl", "Operator.Word"),
    "NOT": ("keyword.operator.logical.opl", "Operator.Word"),
    "OR_SYM": ("keyword.operator.logical.opl", "Operator"),
    "AND_SYM": ("keyword.operator.logical.opl", "Operator"),
    "NOT_SYM": ("keyword.operator.logical.opl", "Operator"),
    "CMP": ("keyword.operator.comparison.opl", "Operator"),
    "PLUS": ("keyword.operator.arithmetic.opl", "Operator"),
    "MINUS": ("keyword.operator.arithmetic.opl", "Operator"),
    "TIMES": ("keyword.operator.arithmetic.opl", "Operator"),
    "SLASH": ("keyword.operator.arithmetic.opl", "Operator"),
    "PERCENT_SIGN": ("keyword.operator.unit.opl", "Operator"),
    "EQUAL": ("keyword.operator.assignment.opl", "Operator"),
    "__ANON_0": ("keyword.operator.assignment.opl", "Operator"),  # `+=`
    "DATE": ("constant.numeric.date.opl", "Literal.Date"),
    "DURATION": ("constant.numeric.duration.opl", "Number"),
    "PERCENT": ("constant.numeric.percent.opl", "Number"),
    "FACTOR": ("constant.numeric.factor.opl", "Number"),
    "NUMBER": ("constant.numeric.opl", "Number"),
    "VOLDIR": ("constant.language.vol-direction.opl", "Name.Constant"),
    "STRING": ("string.quoted.double.opl", "String.Double"),
    "COMMENT": ("comment.line.number-sign.opl", "Comment.Single"),
    "NAME": ("variable.other.opl", "Name"),
    "LBRACE": ("punctuation.section.block.opl", "Punctuation"),
    "RBRACE": ("punctuation.section.block.opl", "Punctuation"),
    "LPAR": ("punctuation.section.parens.opl", "Punctuation"),
    "RPAR": ("punctuation.section.parens.opl", "Punctuation"),
    "LSQB": ("punctuation.section.brackets.opl", "Punctuation"),
    "RSQB": ("punctuation.section.brackets.opl", "Punctuation"),
    "COMMA": ("punctuation.separator.opl", "Punctuation"),
    "_NL": None,  # whitespace
    "WS": None,
}
WHITESPACE = Rule("whitespace", r"[ \t\f\r\n\ufeff]+", "", "Whitespace")


@lru_cache(maxsize=1)
def terminals() -> dict[str, object]:
    """The parser's terminals by name (lark ``TerminalDef``)."""
    from opl.lang.parser import _lark

    return {t.name: t for t in _lark().terminals}


def _regex(name: str) -> str:
    return terminals()[name].pattern.to_regexp()


def parser_keywords() -> tuple[str, ...]:
    """The words the grammar reserves: its string terminals made of letters (``long``, ``and``, ``x``…)."""
    return tuple(sorted(t.pattern.value for t in terminals().values()
                        if type(t.pattern).__name__ == "PatternStr" and t.pattern.value.isalpha()))


def _words(words) -> str:
    ordered = sorted(set(words), key=lambda w: (-len(w), w))
    return "(?:" + "|".join(re.escape(w) for w in ordered) + ")"


def word_classes() -> tuple[tuple[str, tuple[str, ...], str, str], ...]:
    """(class, words, scope, token) of the vocabulary's names, in the order they claim a word."""
    from opl.lang.templates import TEMPLATES

    calls = (tuple(vocab.TRIGGERS) + tuple(vocab.ACTIONS) + tuple(vocab.STOP_CONDITIONS) + tuple(vocab.SCENARIOS)
             + ("machine_decide", "hedge_and_close", "take_delivery", "delta", "smile", "file"))
    values = (vocab.DIRECTIONS + vocab.VEGA_STYLES + vocab.EXIT_MODES + vocab.EXCHANGES + vocab.PRICE_MODELS
              + vocab.CALIBRATIONS + vocab.HORIZON_LABELS + tuple(vocab.SCORE_FUNCTIONS)
              + ("Call", "Put", "American", "European", "ATM", "TRUE", "FALSE", "direction"))
    return (
        ("template", tuple(TEMPLATES), "support.class.template.opl", "Name.Class"),
        ("primitive", vocab.PRIMITIVES, "support.type.primitive.opl", "Name.Builtin"),
        ("field", vocab.ALL_FIELDS + vocab.BLOCKS + vocab.EXPERIMENT_SETTINGS, "variable.other.property.opl",
         "Name.Attribute"),
        ("value", values, "constant.language.opl", "Name.Constant"),
        ("variable", tuple(vocab.VARIABLES), "variable.language.opl", "Name.Variable"),
        ("call", calls, "support.function.opl", "Name.Function"),
    )


def _style(name: str) -> tuple[str, str]:
    style = TERMINAL_STYLES[name]
    assert style is not None, name
    return style


@lru_cache(maxsize=1)
def rules() -> tuple[Rule, ...]:
    """The ordered rules both highlighters use."""
    version = _regex("VERSION")
    out = [
        Rule("comment", _regex("COMMENT"), *_style("COMMENT")),
        Rule("header", re.escape(terminals()["OPL_LANG"].pattern.value) + rf"(?:[ \t]+{version})?",
             *_style("OPL_LANG")),
        Rule("string", _regex("STRING"), *_style("STRING")),
    ]
    for name in ("DATE", "DURATION", "PERCENT", "FACTOR", "NUMBER", "VOLDIR"):  # lark's priority order
        out.append(Rule(name.lower(), _BEFORE + _regex(name), *_style(name)))
    classes = word_classes()
    # A vocabulary word followed by `(` is a call (`days_left(<2d)`, `Straddle(...)`) whatever else it is.
    callable_words = [w for cls, words, _, _ in classes if cls in ("call", "template", "primitive") for w in words]
    out.append(Rule("call", _BEFORE + _words(callable_words) + r"(?=[ \t]*\()", "support.function.opl",
                    "Name.Function"))
    keyword_styles = {t.pattern.value: TERMINAL_STYLES[name] for name, t in terminals().items()
                      if t.pattern.value in parser_keywords()}
    for style in dict.fromkeys(keyword_styles.values()):
        words = [w for w, s in keyword_styles.items() if s == style]
        out.append(Rule("keyword", _BEFORE + _words(words) + _AFTER, *style))
    for cls, words, scope, token in classes:
        out.append(Rule(cls, _BEFORE + _words(words) + _AFTER, scope, token))
    out.append(Rule("name", _regex("NAME"), *_style("NAME")))
    symbols = [(name, t.pattern.value) for name, t in terminals().items()
               if type(t.pattern).__name__ == "PatternStr" and not t.pattern.value.isalpha()]
    symbols += [(name, None) for name in ("CMP", "MINUS", "TIMES")]
    for name, text in sorted(symbols, key=lambda s: -len(s[1] or "xx")):  # `+=` before `+`, `||` before `|`
        if name == "OPL_LANG":
            continue
        out.append(Rule(name.lower(), re.escape(text) if text is not None else _regex(name), *_style(name)))
    return tuple(out)


def covered_terminals() -> set[str]:
    """The grammar terminals the table styles (what a test compares with the grammar's)."""
    return set(TERMINAL_STYLES)


def textmate_grammar() -> dict:
    """The TextMate grammar (VS Code's ``contributes.grammars``) as a dict."""
    return {
        "$schema": "https://raw.githubusercontent.com/martinring/tmlanguage/master/tmlanguage.json",
        "name": "OPL-Lang",
        "scopeName": "source.opl",
        "fileTypes": ["opl"],
        "comment": "Generated by `python -m opl.editors.highlight --write` from grammar/opl.lark and "
                   "opl/lang/vocabulary.py; do not edit by hand.",
        "patterns": [{"name": rule.scope, "match": rule.regex} for rule in rules() if rule.scope],
    }


def textmate_text() -> str:
    return json.dumps(textmate_grammar(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    """``--write`` regenerates the TextMate grammar; without it, exit 1 when the file is stale."""
    fresh = textmate_text()
    if "--write" in argv:
        GRAMMAR_PATH.parent.mkdir(parents=True, exist_ok=True)
        GRAMMAR_PATH.write_text(fresh, encoding="utf-8")
        return 0
    if not GRAMMAR_PATH.exists() or GRAMMAR_PATH.read_text(encoding="utf-8") != fresh:
        print(f"{GRAMMAR_PATH} is stale: run `python -m opl.editors.highlight --write`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Highlighting: the TextMate grammar and the Pygments lexer follow the parser's vocabulary and tokenise
every `.opl` in the repository without an error token."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pygments.token import Error, Name

from opl.lang import vocabulary as vocab
from opl.editors import highlight
from opl.editors.lexer import OplLexer
from opl.lang.frontend import check_path
from opl.lang.templates import TEMPLATES

ROOT = Path(__file__).resolve().parents[2]
def _files() -> list[Path]:
    return sorted(p for folder in ("strategies", "examples", "tests") for p in (ROOT / folder).rglob("*.opl"))


def _lexical_errors(text: str) -> bool:
    """Whether the parser's own lexer meets a character no terminal accepts (the checker's E002; a NUL
    byte, a U+2028, an unterminated string) — there an error token is the right answer."""
    from lark.exceptions import UnexpectedCharacters

    from opl.lang.parser import _lark

    try:
        for _ in _lark().lex(text, dont_ignore=True):
            pass
    except UnexpectedCharacters:
        return True
    return False


def _tm_tokens(text: str) -> list[tuple[str, str | None]]:
    """Tokenise with the TextMate grammar as an engine does for a flat `match` grammar: the earliest
    match wins, the first rule on a tie — here, the first rule matching at the position, else the
    character is left unscoped (``None``)."""
    grammar = json.loads(highlight.GRAMMAR_PATH.read_text(encoding="utf-8"))
    patterns = [(re.compile(p["match"]), p["name"]) for p in grammar["patterns"]]
    tokens: list[tuple[str, str | None]] = []
    for line in text.split("\n"):  # engines split lines at LF only
        position = 0
        while position < len(line):
            match = next(((m, scope) for pattern, scope in patterns
                          if (m := pattern.match(line, position)) and m.end() > position), None)
            if match is None:
                tokens.append((line[position], None))
                position += 1
            else:
                tokens.append((match[0].group(), match[1]))
                position = match[0].end()
    return [(text, scope) for text, scope in tokens
            if scope or not re.fullmatch(highlight.WHITESPACE.regex, text)]


def test_the_textmate_grammar_is_generated_from_the_current_vocabulary():
    assert highlight.main([]) == 0, "run `python -m opl.editors.highlight --write`"


def test_every_grammar_terminal_has_a_style():
    # a terminal added to grammar/opl.lark without a highlighting style fails here
    assert set(highlight.terminals()) == highlight.covered_terminals()


def test_the_grammar_keywords_are_highlighted_as_keywords():
    keywords = highlight.parser_keywords()
    assert {"long", "short", "and", "or", "not", "x"} <= set(keywords)
    for word in keywords:
        (token, _), *_ = OplLexer().get_tokens(f"{word} ")
        assert token not in (Name, Error), word
        assert _tm_tokens(f"{word} ")[0][1].startswith("keyword."), word


VOCABULARY = sorted(set(vocab.ALL_FIELDS + vocab.BLOCKS + vocab.EXPERIMENT_SETTINGS + vocab.PRIMITIVES
                        + tuple(vocab.TRIGGERS) + tuple(vocab.ACTIONS) + tuple(vocab.STOP_CONDITIONS)
                        + tuple(vocab.SCENARIOS) + tuple(vocab.VARIABLES) + vocab.DIRECTIONS + vocab.EXIT_MODES
                        + vocab.EXCHANGES + vocab.PRICE_MODELS + tuple(TEMPLATES)))


@pytest.mark.parametrize("word", VOCABULARY)
def test_every_vocabulary_word_is_classified_by_both_lexers(word):
    # a field, trigger, action, template … added to the vocabulary is highlighted, not a plain name
    written = f"{word}(" if word in vocab.TRIGGERS or word in vocab.ACTIONS or word in TEMPLATES else f"{word} "
    (token, text), *_ = OplLexer().get_tokens(written)
    assert text == word and token not in (Name, Error)
    (tm_text, scope), *_ = _tm_tokens(written)
    assert tm_text == word and scope not in (None, "variable.other.opl")


def test_no_highlighted_word_is_outside_the_vocabulary():
    known = set(VOCABULARY) | set(highlight.parser_keywords())
    for cls, words, _, _ in highlight.word_classes():
        stray = [w for w in words if w not in known]
        allowed = {"machine_decide", "hedge_and_close", "take_delivery", "delta", "smile", "file", "Call", "Put",
                   "American", "European", "ATM", "TRUE", "FALSE", "direction", "gbm"} | set(vocab.VEGA_STYLES) | set(
            vocab.CALIBRATIONS) | set(vocab.HORIZON_LABELS) | set(vocab.SCORE_FUNCTIONS)
        assert not set(stray) - allowed, (cls, set(stray) - allowed)


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_opl_file_tokenises_without_an_error_token(path):
    """…except where the parser finds a character it does not accept (fuzz and code fixtures), and there
    the lexers agree that something is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        assert check_path(path).report.diagnostics[0].code == "E007"  # not text: nothing to highlight
        return
    if _lexical_errors(text):
        assert Error in [token for token, _ in OplLexer().get_tokens(text)]
        assert None in [scope for _, scope in _tm_tokens(text)]
        return
    errors = [value for token, value in OplLexer().get_tokens(text) if token is Error]
    assert not errors, errors
    unscoped = [text for text, scope in _tm_tokens(text) if scope is None]
    assert not unscoped, unscoped


def test_a_stray_character_is_an_error_token_in_both():
    assert Error in [t for t, _ in OplLexer().get_tokens("price 480 $\n")]
    assert ("$", None) in _tm_tokens("price 480 $\n")


def test_the_vscode_extension_registers_the_language_grammar_and_server():
    import shutil
    import subprocess

    folder = highlight.GRAMMAR_PATH.parent.parent
    manifest = json.loads((folder / "package.json").read_text(encoding="utf-8"))
    (language,) = manifest["contributes"]["languages"]
    (grammar,) = manifest["contributes"]["grammars"]
    assert language["id"] == grammar["language"] == "opl" and language["extensions"] == [".opl"]
    assert (folder / grammar["path"]).resolve() == highlight.GRAMMAR_PATH
    assert grammar["scopeName"] == highlight.textmate_grammar()["scopeName"]
    assert (folder / language["configuration"]).is_file()
    assert manifest["contributes"]["configuration"]["properties"]["opl.server.command"]["default"] == ["opl", "lsp"]
    assert "vscode-languageclient" in manifest["dependencies"]
    script = (folder / manifest["main"]).read_text(encoding="utf-8")
    assert '"server.command"' in script and "LanguageClient" in script
    if shutil.which("node"):
        subprocess.run(["node", "--check", str(folder / manifest["main"])], check=True)


def test_pygments_finds_the_lexer_by_name_once_installed():
    import importlib
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    module, _, name = project["entry-points"]["pygments.lexers"]["opl"].partition(":")
    assert getattr(importlib.import_module(module), name) is OplLexer  # what `pygmentize -l opl` loads

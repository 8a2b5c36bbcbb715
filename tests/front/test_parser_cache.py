"""The parser's tables cached beside the module (`opl.lang.parser._cached_lark`): a cached parser parses
exactly as a built one, and a cache that is corrupt or cannot be written only costs the build."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from opl.lang import parser

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jujube" / "strangle.opl"


@pytest.fixture(scope="module")
def grammar() -> str:
    return resources.files("opl.grammar").joinpath("opl.lark").read_text(encoding="utf-8")


def _tree(lark_parser) -> str:
    return lark_parser.parse(EXAMPLE.read_text(encoding="utf-8"), start="start").pretty()


def test_the_cache_is_written_then_read_and_parses_as_the_build(grammar, tmp_path, monkeypatch):
    path = tmp_path / "__pycache__" / "opl-lark.pickle"
    built = parser._cached_lark(grammar, path)
    assert path.is_file() and path.stat().st_size > 0
    # The second parser must come from the file: the grammar analysis would fail if it ran.
    monkeypatch.setattr("lark.lark.Lark._build_parser", lambda self: pytest.fail("built instead of loaded"))
    loaded = parser._cached_lark(grammar, path)
    assert _tree(loaded) == _tree(built)
    assert [t.name for t in loaded.terminals] == [t.name for t in built.terminals]


def test_a_corrupt_cache_is_rebuilt(grammar, tmp_path):
    path = tmp_path / "opl-lark.pickle"
    path.write_bytes(b"not a pickle\n\x80\x04garbage")
    assert _tree(parser._cached_lark(grammar, path)) == _tree(parser._cached_lark(grammar, tmp_path / "fresh.pickle"))


def test_a_cache_that_cannot_be_written_only_costs_the_build(grammar, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    path = blocker / "__pycache__" / "opl-lark.pickle"  # its folder cannot be made under a file
    assert _tree(parser._cached_lark(grammar, path)) == _tree(parser._lark())
    assert not path.exists()


def test_the_cache_is_named_for_the_grammar(grammar):
    assert parser._cache_path(grammar) != parser._cache_path(grammar + "\n// edited")
    assert parser._cache_path(grammar).parent.name == "__pycache__"

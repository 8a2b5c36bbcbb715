"""`opl fmt`: golden output, idempotence and tree preservation over every shipped file, CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import opl
from opl import ast
from opl.cli import main
from opl.fmt import format_text
from opl.parser import parse
from opl.vocabulary import ALL_FIELDS

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted(p for p in [*ROOT.glob("strategies/*.opl"), *ROOT.glob("examples/**/*.opl"),
                           *ROOT.glob("tests/fixtures/**/*.opl")] if not parse(p.read_text("utf-8")).diagnostics)

MESSY = """opl-lang   1.0
# a comment stays
price   480   # trailing comment stays
intent = Bull


S = 3 x short  Option( Put ,450,30d )+long Option(Call,ATM+5%,30d)
exit_triggers [ pnl_percent(<-25%),days_left(<2d) ,price_outside(400, 560), drawdown(>10%), iv_change(>30%) ]
experiment {
    paths 1000
   seed 7
}
"""

CANONICAL = """opl-lang 1.0
# a comment stays
price 480  # trailing comment stays
intent Bull

S = 3×short Option(Put, 450, 30d) + long Option(Call, ATM+5%, 30d)
exit_triggers [
    pnl_percent(<-25%),
    days_left(<2d),
    price_outside(400, 560),
    drawdown(>10%),
    iv_change(>30%)
]
experiment {
  paths 1000
  seed 7
}
"""


def _tree(text: str):
    """Statements with rc6 `field = value` bindings read as fields (the formatter's one rewrite)."""
    def norm(node):
        if isinstance(node, ast.Binding) and node.name in ALL_FIELDS:
            return ast.Field(node.name, node.value)
        if isinstance(node, ast.Block):
            return ast.Block(node.name, tuple(norm(s) for s in node.body))
        return node
    module = parse(text).module
    return [norm(s) for s in module.statements], [c.text for c in module.comments]


def test_golden_canonical_form():
    assert format_text(MESSY).text == CANONICAL
    assert format_text(CANONICAL).changed is False


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_idempotent_and_tree_preserving(path):
    text = path.read_text(encoding="utf-8")
    once = format_text(text).text
    assert format_text(once).text == once
    assert _tree(once) == _tree(text)


def test_syntax_errors_leave_the_text_alone():
    result = format_text("opl-lang 1.0\nS = long Option(Call, 480, 30d\n")
    assert result.diagnostics and result.text.endswith("30d\n") and not result.changed


def test_cli_check_write_diff_and_errors(tmp_path):
    runner = CliRunner()
    messy = tmp_path / "messy.opl"
    messy.write_text(MESSY, encoding="utf-8")
    check = runner.invoke(main, ["fmt", "--check", str(messy)])
    assert check.exit_code == 1 and "would reformat" in check.output
    diff = runner.invoke(main, ["fmt", "--diff", str(messy)])
    assert diff.exit_code == 0 and "+S = 3×short" in diff.output
    write = runner.invoke(main, ["fmt", "--write", str(messy)])
    assert write.exit_code == 0 and messy.read_text(encoding="utf-8") == CANONICAL
    assert runner.invoke(main, ["fmt", "--check", str(messy)]).exit_code == 0
    broken = tmp_path / "broken.opl"
    broken.write_text("opl-lang 1.0\nS = long Option(Call, 480, 30d\n", encoding="utf-8")
    before = broken.read_text(encoding="utf-8")
    result = runner.invoke(main, ["fmt", "--write", str(broken)])
    assert result.exit_code == 1 and broken.read_text(encoding="utf-8") == before and "E003" in result.output
    stdin = runner.invoke(main, ["fmt", "-"], input=MESSY)
    assert stdin.exit_code == 0 and stdin.output == CANONICAL
    assert runner.invoke(main, ["fmt", str(tmp_path / "missing.opl")]).exit_code == 2


LEGS = st.builds(lambda q, sep, side, kind, k, t: f"{q}{sep}{side} Option({kind},{k}, {t}d)",
                 st.integers(1, 9), st.sampled_from(["×", "x", " x ", "*", " * ", " "]), st.sampled_from(["long", "short"]),
                 st.sampled_from(["Call", "Put"]), st.integers(50, 900), st.integers(1, 90))
FIELDS = st.sampled_from(["price 480", "iv 0.25", "rate = 0.02", "direction_intent Bull", "exit_mode first_hit",
                          "exit_triggers [ pnl_percent(<-25%), days_left(<2d) ]", "capital_limit   100000",
                          "# a note", "", "vega_style Credit  # why"])


@settings(max_examples=150, deadline=None)
@given(st.lists(LEGS, min_size=1, max_size=5), st.lists(FIELDS, max_size=6), st.sampled_from([" + ", "+", "  +  "]))
def test_generated_files_format_idempotently(legs, fields, plus):
    text = "opl-lang 1.0\n" + "\n".join(fields) + "\nS = " + plus.join(legs) + "\n"
    once = format_text(text)
    assert not once.diagnostics, once.diagnostics
    assert format_text(once.text).text == once.text
    assert _tree(once.text) == _tree(text)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(FILES), st.data())
def test_mutated_files_never_raise(path, data):
    text = path.read_text(encoding="utf-8")
    position = data.draw(st.integers(0, len(text)))
    action = data.draw(st.sampled_from(["delete", "insert", "duplicate"]))
    if action == "delete":
        text = text[:position] + text[position + 1:]
    elif action == "insert":
        text = text[:position] + data.draw(st.characters()) + text[position:]
    else:
        text = text[:position] + text[position:position + 20] + text[position:]
    opl.check(text)  # returns diagnostics, never raises
    format_text(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_random_text_never_raises(text):
    opl.check("opl-lang 1.0\n" + text)
    format_text(text)

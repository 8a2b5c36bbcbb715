"""`opl fmt`: golden output, idempotence and tree preservation over every shipped file,
comments, the canonical spellings, and the command line.

Golden pairs live in tests/fixtures/fmt/: ``<name>.opl`` (messy input) and
``<name>.opl.expected`` (its canonical form).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import opl
from opl.lang import ast
from opl.cli import main
from opl.lang.fmt import MAX_WIDTH, canonical, format_text, scan_comments
from opl.lang.parser import parse

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = sorted((ROOT / "tests" / "fixtures" / "fmt").glob("*.opl"))
SHIPPED = sorted([*ROOT.glob("strategies/*.opl"), *ROOT.glob("examples/**/*.opl"),
                  *ROOT.glob("tests/fixtures/spec/*.opl"), *GOLDEN])


def tree(text: str):
    """What formatting must keep: the canonical tree and the comments' texts, in order."""
    return canonical(parse(text).module).statements, [c.text for c in scan_comments(text)]


def codes(text: str) -> list[str]:
    """The checker's findings, by code: formatting must not change what a file means."""
    return sorted(d.code for d in opl.check(text).report.diagnostics)


# --------------------------------------------------------------------------- golden files


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden(path):
    expected = path.with_name(path.name + ".expected").read_text(encoding="utf-8")
    result = format_text(path.read_text(encoding="utf-8"))
    assert result.ok and result.changed
    assert result.text == expected
    assert format_text(expected).changed is False


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_idempotent_tree_and_meaning_preserving(path):
    text = path.read_text(encoding="utf-8")
    result = format_text(text, str(path))
    assert result.ok, (result.diagnostics, result.error)
    once = result.text
    assert result.module == parse(once, str(path)).module  # the tree it gives is the formatted text's
    assert format_text(once).text == once
    assert parse(once).module.statements == canonical(parse(text).module).statements
    assert tree(once) == tree(text)
    assert codes(once) == codes(text)


def test_shipped_strategies_are_already_canonical():
    for path in ROOT.glob("strategies/*.opl"):
        assert not format_text(path.read_text(encoding="utf-8")).changed, path.name


# --------------------------------------------------------------------------- the rewrites


def test_rc6_field_bindings_become_fields_and_leg_bindings_stay():
    assert format_text("opl-lang 1.0\nintent   =   Bull\nS = long Stock\n").text == \
        "opl-lang 1.0\nintent Bull\nS = long Stock\n"
    # outside the field list `name = ...` is a leg definition and keeps its `=`
    assert format_text("opl-lang 1.0\npaths = long Stock\n").text == "opl-lang 1.0\npaths = long Stock\n"


def test_experiment_settings_are_split_as_the_lowerer_reads_them():
    text = "opl-lang 1.0\nexperiment {\n  paths 500  steps_per_day 2  seed 7\n  horizon = 6\n}\n"
    once = format_text(text).text
    assert once == "opl-lang 1.0\nexperiment {\n  paths 500\n  steps_per_day 2\n  seed 7\n  horizon 6\n}\n"
    before, after = opl.check(text).document.experiment, opl.check(once).document.experiment
    assert (before.paths, before.steps_per_day, before.seed, before.horizon_months) == (500, 2, 7, 6)
    assert (after.paths, after.steps_per_day, after.seed, after.horizon_months) == (500, 2, 7, 6)
    assert format_text("opl-lang 1.0\nexperiment {}\n").text == "opl-lang 1.0\nexperiment {}\n"


# --------------------------------------------------------------------------- spellings


@pytest.mark.parametrize("written", ["3×short Stock", "3x short Stock", "3 x short Stock", "3*short Stock",
                                     "3 * short Stock", "3 × short Stock"])
def test_quantity_spellings(written):
    assert format_text(f"opl-lang 1.0\nS = {written}\n").text == "opl-lang 1.0\nS = 3×short Stock\n"


def test_juxtaposed_quantity_is_kept_because_it_is_another_tree():
    # `3 short A + long B` scales the whole sum (a Seq), `3×short A + long B` only A
    text = "opl-lang 1.0\nS = 3 short Stock + long ETF\n"
    assert format_text(text).text == text


@pytest.mark.parametrize("written, expected", [
    ("avoid_leg_if days_left < 2d and strike_offset > 10%", "avoid_leg_if days_left < 2d && strike_offset > 10%"),
    ("warn_if !days_left > 30d or leg_pnl > 25%", "warn_if not days_left > 30d || leg_pnl > 25%"),
    ("exit_triggers += days_left < 2d and iv > 20%", "exit_triggers += days_left < 2d && iv > 20%"),
    ("adjust_when price_retrace(>-3%) || !vega_crush(>20%)", "adjust_when price_retrace(>-3%) or not vega_crush(>20%)"),
    ("abort_if drawdown(>5%) && margin_utilisation(>80%)", "abort_if drawdown(>5%) and margin_utilisation(>80%)"),
])
def test_boolean_spelling_follows_the_spec(written, expected):
    assert format_text(f"opl-lang 1.0\n{written}\n").text == f"opl-lang 1.0\n{expected}\n"


@pytest.mark.parametrize("written, expected", [
    ("S = long Option(Put, ATM − 5%, 30d)", "S = long Option(Put, ATM-5%, 30d)"),  # U+2212 minus
    ("S = long Option(Put, support - 100, 30d)", "S = long Option(Put, support-100, 30d)"),
    ("model garch+jump", "model garch + jump"),
    ("price 1_000.50", "price 1_000.50"),  # numbers as written
    ("price 1e3", "price 1e3"),
    ("iv 25.0%", "iv 25.0%"),
    ("time 2026-01-05", "time 2026-01-05"),
    ("stress [ slippage(×3), slippage( x3 ) ]", "stress [ slippage(x3), slippage(x3) ]"),
    # `x1e1` would lex as a name: a factor with an exponent or `_` is written from its value
    ("stress [ slippage(×1e1), slippage(*1_000), fees_up(× 2.5E-1), fees_up(*1_500.25) ]",
     "stress [ slippage(x10), slippage(x1000), fees_up(x0.25), fees_up(x1500.25) ]"),
    ("vol_intent ↓IV", "vol_intent ↓IV"),
    ("on_assignment take_delivery( storage = 2 / day )", "on_assignment take_delivery(storage=2/day)"),
    ("abort_if additional_margin( % )>15", "abort_if additional_margin(%) > 15"),
    ("exit_triggers [ ]", "exit_triggers []"),
    ("symbol \"a \\\"b\\\"\"", "symbol \"a \\\"b\\\"\""),
    ("underlying LeveragedETF { 3 }", "underlying LeveragedETF{3}"),
    ("exit_triggers [ f(> =IV), f(k= =IV) ]", "exit_triggers [ f(> =IV), f(k= =IV) ]"),  # not `>=` `IV`
])
def test_canonical_spelling(written, expected):
    result = format_text(f"opl-lang 1.0\n{written}\n")
    assert result.ok and result.text == f"opl-lang 1.0\n{expected}\n"
    assert tree(result.text) == tree(f"opl-lang 1.0\n{written}\n")


# --------------------------------------------------------------------------- layout


def test_lists_break_only_past_the_width():
    items = ["days_left(<2d)"] * 4
    name_length = MAX_WIDTH - len("exit_triggers [ " + ", ".join(items) + ", () ]")
    fits = f"opl-lang 1.0\nexit_triggers [ {', '.join(items)}, {'f' * name_length}() ]\n"
    assert len(fits.splitlines()[1]) == MAX_WIDTH and format_text(fits).text == fits
    too_long = fits.replace("f" * name_length, "f" * (name_length + 1))
    assert format_text(too_long).text == ("opl-lang 1.0\nexit_triggers [\n" + "".join(f"  {i},\n" for i in items)
                                          + f"  {'f' * (name_length + 1)}()\n]\n")


def test_whitespace_blank_lines_and_newlines():
    text = "\n\n opl-lang 1.0   \r\n\r\n\r\n\r\nprice 480\t\t\n\n\n"
    assert format_text(text).text == "opl-lang 1.0\n\nprice 480\n"
    assert format_text("").text == ""
    assert format_text("# only a comment   ").text == "# only a comment\n"
    assert format_text("opl-lang 1.0").text == "opl-lang 1.0\n"


def test_comments_keep_their_text_order_and_place():
    text = (ROOT / "tests" / "fixtures" / "fmt" / "comments.opl").read_text(encoding="utf-8")
    once = format_text(text).text
    assert [c.text for c in scan_comments(once)] == [c.text for c in scan_comments(text)]
    assert "price 480  # trailing comments get two spaces\n" in once
    assert "  pnl_percent(>30%),  # after an item\n" in once
    assert "# a comment inside a joined expression moves above it\nS = long" in once


def test_a_hash_inside_a_string_is_not_a_comment():
    text = 'opl-lang 1.0\nsymbol "a\\"b # not a comment"   # a comment\n'
    result = format_text(text)
    assert result.text == 'opl-lang 1.0\nsymbol "a\\"b # not a comment"  # a comment\n'
    assert [c.text for c in scan_comments(text)] == ["# a comment"]
    assert [c.text for c in parse(text).module.comments] == ["# a comment"]  # the parser's own list too


# --------------------------------------------------------------------------- files that do not parse


def test_syntax_errors_leave_the_text_alone():
    text = "opl-lang 1.0\nS = long Option(Call, 480, 30d\n"
    result = format_text(text)
    assert not result.ok and result.text == text and not result.changed
    assert [d.code for d in result.diagnostics] == ["E003"]


def test_value_errors_with_a_complete_tree_are_still_formatted():
    # 30 February (E109) and 1e999 (E012) are the checker's business, not the formatter's
    result = format_text("opl-lang 1.0\ntime   2026-02-30\nprice   1e999\n")
    assert result.ok and result.text == "opl-lang 1.0\ntime 2026-02-30\nprice 1e999\n"


# --------------------------------------------------------------------------- command line

MESSY = "opl-lang   1.0\nprice   480\nS = 3 x short Option(Put,450,30d)\n"
CANONICAL = "opl-lang 1.0\nprice 480\nS = 3×short Option(Put, 450, 30d)\n"
BROKEN = "opl-lang 1.0\nS = long Option(Call, 480, 30d\n"


@pytest.fixture
def files(tmp_path):
    paths = {}
    for name, text in (("messy.opl", MESSY), ("clean.opl", CANONICAL), ("broken.opl", BROKEN)):
        paths[name] = tmp_path / name
        paths[name].write_text(text, encoding="utf-8")
    return paths


def run(*args, stdin=None):
    return CliRunner().invoke(main, ["fmt", *map(str, args)], input=stdin)


def test_cli_prints_one_file(files):
    result = run(files["messy.opl"])
    assert result.exit_code == 0 and result.stdout == CANONICAL
    assert files["messy.opl"].read_text(encoding="utf-8") == MESSY


def test_cli_check(files):
    result = run("--check", files["messy.opl"], files["clean.opl"])
    assert result.exit_code == 1
    assert f"would reformat {files['messy.opl']}" in result.stderr
    assert "1 file would be reformatted, 1 unchanged" in result.stderr
    assert result.stdout == "" and files["messy.opl"].read_text(encoding="utf-8") == MESSY
    assert run("--check", files["clean.opl"]).exit_code == 0


def test_cli_write_rewrites_only_changed_files(files):
    before = files["clean.opl"].stat().st_mtime_ns
    result = run("--write", files["messy.opl"], files["clean.opl"])
    assert result.exit_code == 0 and "reformatted 1 file, 1 unchanged" in result.stderr
    assert files["messy.opl"].read_text(encoding="utf-8") == CANONICAL
    assert files["clean.opl"].stat().st_mtime_ns == before
    assert run("--check", files["messy.opl"]).exit_code == 0


def test_cli_diff(files):
    result = run("--diff", files["messy.opl"])
    assert result.exit_code == 0
    assert "\n-S = 3 x short Option(Put,450,30d)\n" in result.stdout
    assert "\n+S = 3×short Option(Put, 450, 30d)\n" in result.stdout
    assert result.stdout.startswith(f"--- {files['messy.opl']}\n")
    assert run("--diff", "--check", files["messy.opl"]).exit_code == 1
    assert run("--diff", files["clean.opl"]).stdout == ""


def test_cli_syntax_error_exit_1_and_file_untouched(files):
    result = run("--write", files["broken.opl"], files["messy.opl"])
    assert result.exit_code == 1
    assert f"{files['broken.opl']}:2:16: E003 unclosed `(`" in result.stderr
    assert files["broken.opl"].read_text(encoding="utf-8") == BROKEN
    assert files["messy.opl"].read_text(encoding="utf-8") == CANONICAL  # the other files are still done


def test_cli_stdin():
    result = run("-", stdin=MESSY)
    assert result.exit_code == 0 and result.stdout == CANONICAL
    assert run("--check", "-", stdin=MESSY).exit_code == 1
    assert run("--write", "-", stdin=MESSY).stdout == CANONICAL  # stdin cannot be rewritten: printed


def test_cli_usage_and_io_errors(files, tmp_path):
    assert run(tmp_path / "missing.opl").exit_code == 2
    assert run(files["messy.opl"], files["clean.opl"]).exit_code == 2  # several files need a mode
    assert run("--write", "--check", files["messy.opl"]).exit_code == 2
    undecodable = tmp_path / "latin1.opl"
    undecodable.write_bytes(b"opl-lang 1.0\nsymbol \"\xe9\"\n")
    result = run("--check", undecodable)
    assert result.exit_code == 1 and "E007" in result.stderr


def test_cli_skips_the_json_leg_form(tmp_path):
    legs = tmp_path / "legs.json"
    legs.write_text('[{"qty":1,"side":"long","type":"call","strike":480,"exp":30}]', encoding="utf-8")
    result = run("--check", legs)
    assert result.exit_code == 0 and "skipped" in result.stderr


def test_every_ast_node_type_is_printed():
    # a smoke test that the printer knows the whole tree (Value and Statement unions)
    text = ('opl-lang 1.0\nS = 2×(long Option(Call, ATM+5%, +30d) - short Future(2026-05-15)) + LeveragedETF{3}\n'
            'abort_if not additional_margin(%) > 15 and iv_change(<-3%)\nsymbol "x"\nvol_intent ↑IV\n'
            'stress [ slippage(x3) ]\nexit_triggers += days_left < 2d\nexit_mode\nexperiment {\n  seed 1\n}\n')
    nodes = {type(n) for s in parse(text).module.statements for n in ast.walk(s)}
    assert nodes >= {ast.Header, ast.Binding, ast.Field, ast.Append, ast.Block, ast.Number, ast.Percent,
                     ast.Duration, ast.Date, ast.String, ast.Name, ast.Factor, ast.VolDir, ast.UnitPlaceholder,
                     ast.Call, ast.Braced, ast.ListValue, ast.Paren, ast.Unary, ast.Polarity, ast.Binary,
                     ast.BoolOp, ast.Not, ast.Compare}
    assert format_text(text).text == text

"""Parser: spec forms parse exactly as written, spans are exact, errors are located."""

from __future__ import annotations

import datetime as dt

import pytest

from opl.lang import ast
from opl.lang.parser import decode, parse


def only(text: str):
    result = parse(text)
    assert result.ok, [(d.code, d.message) for d in result.diagnostics]
    return result.module.statements


def value_of(text: str):
    (statement,) = only(text)
    return statement.value


def test_header_and_strategy_spans_field_by_field():
    statements = only("opl-lang 1.0\nS = long Swap\n")
    header, binding = statements
    assert header == ast.Header("1.0")
    assert (header.span.line, header.span.column, header.span.end_column) == (1, 1, 13)
    assert isinstance(binding, ast.Binding) and binding.name == "S"
    name = binding.value.operand
    assert name == ast.Name("Swap")
    assert (name.span.line, name.span.column, name.span.end_line, name.span.end_column) == (2, 10, 2, 14)
    assert (name.span.start, name.span.end) == (22, 26)


@pytest.mark.parametrize("text", ["S = 3×short Option(Put,450,30d)", "S = 3 x short Option(Put,450,30d)",
                                  "S = 3*short Option(Put,450,30d)", "S = 3x short Option(Put,450,30d)"])
def test_multiplier_spellings_are_one_tree(text):
    value = value_of(text)
    assert value == ast.Binary("×", ast.Number(3), ast.Polarity("short", ast.Call(
        "Option", (ast.Name("Put"), ast.Number(450), ast.Duration(30, "d")))))


def test_keyword_arguments_of_alias_calls():
    value = value_of("S = Condor(Call, K1=480, K2=520, T=30d)")
    assert value.func == "Condor"
    assert [k for k in value.keywords] == ["K1", "K2", "T"]
    assert value.keywords["T"].value == ast.Duration(30, "d")


def test_every_primitive_of_the_ebnf():
    value = value_of("S = long Stock + short ETF + Cash + long Future(2026-05-15) + short LeveragedETF{3}")
    terms = []
    while isinstance(value, ast.Binary):
        terms.append(value.right)
        value = value.left
    terms.append(value)
    assert ast.Polarity("short", ast.Braced("LeveragedETF", ast.Number(3))) in terms
    assert ast.Polarity("long", ast.Call("Future", (ast.Date(dt.date(2026, 5, 15)),))) in terms


def test_open_comparisons_and_unit_placeholder():
    value = value_of("abort_if additional_margin(%) > 15")
    assert value == ast.Compare(">", ast.Call("additional_margin", (ast.UnitPlaceholder(),)), ast.Number(15))
    trig = value_of("exit_triggers [ pnl_percent(<-25%) ]").items[0]
    assert trig.args[0] == ast.Compare("<", None, ast.Unary("-", ast.Percent(25)))


def test_multiline_list_and_continuation_lines():
    statements = only("exit_triggers [\n    price_target_hit(108),\n    pnl_percent(>30%),\n    days_left(<2d)\n]\n"
                      "S = long Option(Call, 480, 14d) +\n    short Option(Call, 500, 14d)\n")
    assert len(statements[0].value.items) == 3
    assert statements[0].value.span.end_line == 5
    assert isinstance(statements[1].value, ast.Binary)


def test_guard_rules_and_append():
    statements = only("avoid_leg_if days_left < 2d && strike_offset > 10%\nexit_triggers += days_left < 2d\n")
    assert isinstance(statements[0].value, ast.BoolOp) and statements[0].value.op == "and"
    assert isinstance(statements[1], ast.Append)


def test_unicode_minus_from_the_published_tables():
    assert value_of("exit_triggers [ pnl_percent(<\u201125%) ]") == value_of("exit_triggers [ pnl_percent(<-25%) ]")
    assert value_of("x = 3 \u2212 1").op == "-"


def test_vol_directions_and_rc6_equals_fields():
    assert value_of("vol_intent ↑IV") == ast.VolDir("up")
    assert value_of("vol_intent =IV") == ast.VolDir("flat")
    (binding,) = only("max_risk         = 1500 USD")
    assert binding.value == ast.Seq((ast.Number(1500), ast.Name("USD")))


def test_experiment_block_with_several_settings_on_a_line():
    (block,) = only("experiment {\n  paths 50000  steps_per_day 1  seed 7\n}\n")
    assert isinstance(block, ast.Block) and block.name == "experiment"
    assert block.body[0].value.items[1] == ast.Name("steps_per_day")


def codes(text: str) -> list[tuple[str, int, int]]:
    return [(d.code, d.span.line, d.span.column) for d in parse(text).diagnostics]


def test_one_syntax_error_does_not_hide_the_rest():
    text = "opl-lang 1.0\nS = long Option(Call, 480 14d)\nprice $5\ncapital_limit 100000\niv 0.2 )\n"
    result = parse(text)
    found = [(d.code, d.span.line) for d in result.diagnostics]
    assert ("E002", 3) in found and [c for c, line in found if line == 5]
    assert len({line for _, line in found}) == 3
    names = [s.name for s in result.module.statements if isinstance(s, (ast.Field, ast.Binding))]
    assert "capital_limit" in names  # the good statement after the errors survives


def test_errors_inside_a_block_keep_the_other_settings():
    result = parse("experiment {\n  paths 10\n  seed ]\n  model garch\n}\n")
    (block,) = result.module.statements
    assert [s.name for s in block.body] == ["paths", "model"]
    assert [(d.code, d.span.line) for d in result.diagnostics] == [("E001", 3)]


def test_unclosed_bracket_is_located_at_the_opener():
    result = parse("exit_triggers [ pnl_percent(<-25%)\ncapital_limit 100000\n")
    assert ("E003", 1, 15) in [(d.code, d.span.line, d.span.column) for d in result.diagnostics]
    assert any(isinstance(s, ast.Field) and s.name == "capital_limit" for s in result.module.statements)


def test_unclosed_block():
    assert ("E003", 1, 12) in codes("experiment {\n paths 10\n")


def test_unexpected_character_has_help():
    (diag,) = parse("S = long Option(Call，480, 14d)").diagnostics
    assert diag.code == "E002" and diag.help == "replace it with `,`"


def test_invalid_calendar_date():
    assert codes("time 2026-02-30") == [("E109", 1, 6)]


@pytest.mark.parametrize("text,code", [
    ("S = " + "(" * 80 + "1" + ")" * 80, "E009"),
    ("S = " + "-" * 5000 + "1", "E008"),
    ("S = " + "- " * 1000 + "1", "E009"),
    ("a" * 65 + " 1", "E011"),
    ("price 1e400", "E012"),
    ("time 2999-01-01", "E012"),
    ("x 1\n" * 6000, "E008"),
])
def test_input_bounds(text, code):
    assert code in [c for c, _, _ in codes(text)]


def test_decode_rejects_binary_and_bad_utf8():
    source, problems = decode(b"opl-lang 1.0\n\xff\xfe", "f.opl")
    assert source is None and problems[0].code == "E007" and problems[0].span.line == 2
    source, problems = decode(b"opl-lang 1.0\x00", "f.opl")
    assert source is None and problems[0].code == "E007"
    source, problems = decode("\ufeffopl-lang 1.0\n".encode(), "f.opl")
    assert source is not None and not problems and parse(source.text).ok

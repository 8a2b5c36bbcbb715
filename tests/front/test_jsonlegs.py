"""The JSON leg form (golden example 2): every way a `.json` leg file can be wrong is one
located diagnostic — code, span (line, column, end_line, end_column) and the words of the
message — and nothing after it (no spurious `E203 no strategy` beside a bad leg)."""

from __future__ import annotations

import pytest

import opl

OPTION = '"type":"call","strike":480'

CASES = {
    "unfinished": ('[{"qty":1,\n', "E013", (1, 11, 1, 11), "the text ends before the JSON is complete"),
    "stray character": ('[{"qty":1,}]', "E013", (1, 11, 1, 12), "invalid JSON: unexpected `}`"),
    "object, not array": ('{"qty":1}', "E013", (1, 1, 1, 10), "expected a JSON array"),
    "string, not array": ('"legs"', "E013", (1, 1, 1, 7), "expected a JSON array"),
    "number as a leg": ('[1]', "E013", (1, 2, 1, 3), "each leg must be a JSON object"),
    "empty array": ('[]', "E203", (1, 1, 1, 3), "the leg list is empty"),
    "unknown key": ('[{"qtx":1}]', "E102", (1, 3, 1, 8), "unknown leg key `qtx`"),
    "no type": ('[{"side":"long"}]', "E103", (1, 2, 1, 17), "a leg needs `type`"),
    "unknown type": ('[{"type":"bond"}]', "E101", (1, 10, 1, 16), "unknown primitive `bond`"),
    "null type": ('[{"type":null}]', "E101", (1, 10, 1, 14), "unknown primitive `null`"),
    "object type": ('[{"type":{"a":1}}]', "E101", (1, 10, 1, 17), 'unknown primitive `{"a":1}`'),
    "bad side": ('[{"side":"up","type":"call"}]', "E105", (1, 10, 1, 14), "`up` is not a side"),
    "null side": ('[{' + OPTION + ',"exp":30,"side":null}]', "E105", (1, 46, 1, 50), "`null` is not a side"),
    "fractional qty": ('[{"qty":1.5,"type":"call"}]', "E104", (1, 9, 1, 12), "found `1.5`"),
    "negative qty": ('[{"qty":-1,"type":"call"}]', "E305", (1, 9, 1, 11), "found `-1`"),
    "string qty": ('[{"qty":"a","type":"call"}]', "E104", (1, 9, 1, 12), "found `a`"),
    "boolean qty": ('[{"type":"stock","qty":true}]', "E104", (1, 24, 1, 28), "found `true`"),
    "infinite qty": ('[{"qty":1e400,"type":"call"}]', "E012", (1, 9, 1, 14), "`1e400` is outside"),
    "huge strike": ('[{"type":"call","strike":-1e13,"exp":30}]', "E012", (1, 26, 1, 31), "`-1e13` is outside"),
    "negative strike": ('[{"type":"call","strike":-5,"exp":30}]', "E205", (1, 26, 1, 28), "positive numeric `strike`"),
    "string strike": ('[{"type":"call","strike":"x","exp":30}]', "E104", (1, 26, 1, 29), "positive numeric `strike`"),
    "no expiry": ('[{' + OPTION + '}]', "E103", (1, 2, 1, 30), "needs `exp` (days), `expiry` or `tenor`"),
    "zero exp": ('[{' + OPTION + ',"exp":0}]', "E206", (1, 36, 1, 37), "`exp` must be a number of days"),
    "bad date": ('[{' + OPTION + ',"expiry":"2027-13-01"}]', "E109", (1, 39, 1, 51), "`2027-13-01` is not a date"),
    "bad tenor": ('[{' + OPTION + ',"tenor":"30x"}]', "E206", (1, 38, 1, 43), 'not a tenor such as "30d"'),
    "future bad date": ('[{"type":"future","expiry":"soon"}]', "E109", (1, 28, 1, 34), "`soon` is not a date"),
    "too many legs": ("[" + ",".join(['{"type":"cash"}'] * 65) + "]", "E010", (1, 1, 1, 1042), "65 legs"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_json_leg_file_gives_one_located_diagnostic(name):
    text, code, (line, column, end_line, end_column), words = CASES[name]
    diagnostics = opl.check(text, "legs.json").report.diagnostics
    assert [d.code for d in diagnostics] == [code], [(d.code, d.message) for d in diagnostics]
    d = diagnostics[0]
    assert (d.span.line, d.span.column, d.span.end_line, d.span.end_column) == (line, column, end_line, end_column)
    assert words in d.message


@pytest.mark.parametrize("leg", [
    '{' + OPTION + ',"exp":30,"side":"Short"}',
    '{' + OPTION + ',"expiry":"2027-03-01","side":"short"}',
    '{' + OPTION + ',"tenor":"30d","side":"short"}',
    '{"type":"future","expiry":"2027-03-01","qty":2,"side":"short"}',
])
def test_each_expiry_form_and_side_spelling_loads(leg):
    result = opl.check(f"[{leg}]", "legs.json")
    assert not result.report.has_errors, [(d.code, d.message) for d in result.report.diagnostics]
    assert [leg.side for leg in result.legs] == [-1]


def test_future_leg_keeps_its_expiry_and_quantity():
    result = opl.check('[{"type":"future","expiry":"2027-03-01","qty":2,"side":"short"}]', "legs.json")
    (leg,) = result.legs
    assert (leg.kind, leg.qty, leg.side, str(leg.expiry)) == ("future", 2, -1, "2027-03-01")

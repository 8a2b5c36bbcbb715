"""Renderers: snapshot tests of every format, plus field-level checks of JSON and SARIF.

The reports are built by hand so that each feature of the full format is exercised on
purpose: a tab-indented line, CJK text before a span and inside one, a two-digit line
number, a multi-line span, notes with help, a warning, a note and a finding with no
location. Golden files live in tests/fixtures/render/; set OPL_UPDATE_SNAPSHOTS=1 to
rewrite them after an intended change, then review the diff by eye.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from opl.lang.codes import CODES, explain
from opl.lang.diagnostics import Diagnostic, FileReport
from opl.lang.render import FORMATS, render, summary_line
from opl.lang.render import sarif as sarif_module
from opl.lang.source import SourceFile, Span

SNAPSHOTS = Path(__file__).resolve().parents[1] / "fixtures" / "render"

TEXT = (
    "opl-lang 1.0\n"
    "# 红枣 short strangle, sized for the desk\n"
    "underlying Future(2026-05-15)\n"
    'desk "红枣组" capitl 100000\n'
    "S = short Option(Put, support-100, 30d) + short Option(Call, 11100, 30d)\n"
    "exit_triggers [\n"
    "\tpnl_pct(<-25%),\n"
    "\tdays_left(<2d)，\n"
    "]\n"
    "experiment {\n"
    "  paths 50000\n"
    "  sizes [0, 2,\n"
    "         5]\n"
    "}\n"
    "hedge delta with Swap\n"
)
SOURCE = SourceFile("strategies/jujube.opl", TEXT)


def at(needle: str) -> Span:
    """The span of the only occurrence of ``needle`` in TEXT."""
    assert TEXT.count(needle) == 1, needle
    start = TEXT.index(needle)
    return SOURCE.span(start, start + len(needle))


# Listed out of source order on purpose: renderers must sort.
DIAGNOSTICS = [
    Diagnostic("E101", "unknown primitive `Swap`", at("Swap"), "not a primitive", "did you mean `Stock`?",
               ("primitives are Cash, Stock, Future, ETF, LeveragedETF{β} and Option", "names are case-sensitive")),
    Diagnostic("E102", "unknown field `capitl`", at("capitl"), "not a field", "did you mean `capital`?"),
    Diagnostic("W405", "short call `Option(Call, 11100, 30d)` is not covered", at("short Option(Call, 11100, 30d)"),
               "unbounded loss above 11100", "add a long call above 11100, or a stop"),
    Diagnostic("I401", "strike `support-100` is resolved at run time", at("support-100"), "`support` is not set"),
    Diagnostic("E106", "unknown condition `pnl_pct`", at("pnl_pct"), "not a condition", "did you mean `pnl_percent`?"),
    Diagnostic("E002", "unexpected character `，`", at("，"), "full-width comma", "write `,`",
               ("OPL-Lang punctuation is ASCII",)),
    Diagnostic("E207", "`sizes` must be positive", at("[0, 2,\n         5]"), "contains 0"),
]

BIG = Diagnostic("E008", "file is 2000000 bytes, above the limit of 1048576", Span(0, 0, 0, 0),
                 help="split the file or remove unrelated content")


def reports() -> list[FileReport]:
    return [
        FileReport(SOURCE, list(DIAGNOSTICS)),
        FileReport(SourceFile("big.opl", ""), [BIG]),
        FileReport(SourceFile("clean.opl", "opl-lang 1.0\nS = long Stock\n"), []),
    ]


@pytest.fixture(autouse=True)
def fixed_tool_metadata(monkeypatch):
    # The SARIF driver carries the installed version; pin it so a release does not churn snapshots.
    monkeypatch.setattr(sarif_module, "_package_metadata", lambda: ("0.0.0", None))


def test_hand_built_spans_are_where_the_test_means():
    assert at("Swap") == Span(15, 18, 15, 22, TEXT.index("Swap"), TEXT.index("Swap") + 4)
    assert (at("capitl").line, at("capitl").column) == (4, 12)  # characters, not bytes or cells
    assert (at("pnl_pct").line, at("pnl_pct").column) == (7, 2)  # after one tab
    assert (at("，").line, at("，").column, at("，").end_column) == (8, 16, 17)
    multi = at("[0, 2,\n         5]")
    assert (multi.line, multi.column, multi.end_line, multi.end_column) == (12, 9, 13, 12)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_output_matches_snapshot(fmt: str):
    actual = render(reports(), fmt, color=False)
    path = SNAPSHOTS / f"{fmt}.txt"
    if os.environ.get("OPL_UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}; run with OPL_UPDATE_SNAPSHOTS=1"
    assert actual == path.read_text(encoding="utf-8")


def test_full_format_reproduces_the_design_example_exactly():
    source = SourceFile("strategies/bad.opl", "opl-lang 1.0\n# a comment\nS = long Swap\n")
    start = source.text.index("Swap")
    diagnostic = Diagnostic("E101", "unknown primitive `Swap`", source.span(start, start + 4), "not a primitive",
                            "did you mean `Stock`?")
    assert render([FileReport(source, [diagnostic])], "full") == (
        "error[E101]: unknown primitive `Swap`\n"
        " --> strategies/bad.opl:3:10\n"
        "  |\n"
        "3 | S = long Swap\n"
        "  |          ^^^^ not a primitive\n"
        "  |\n"
        "  = help: did you mean `Stock`?\n"
        "\n"
    )


def _chars_under(line: str, first: int, last: int) -> str:
    """The characters of a rendered line that occupy terminal cells first..last-1."""
    found, cell = [], 0
    for ch in line:
        width = 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
        if first <= cell and cell + width <= last:
            found.append(ch)
        cell += width
    return "".join(found)


@pytest.mark.parametrize("code, underlined", [
    ("E102", "capitl"), ("E106", "pnl_pct"), ("E002", "，"), ("E101", "Swap"), ("W405", "short Option(Call, 11100, 30d)"),
])
def test_carets_sit_under_the_span_in_terminal_cells(code: str, underlined: str):
    diagnostic = next(d for d in DIAGNOSTICS if d.code == code)
    lines = render([FileReport(SOURCE, [diagnostic])], "full").splitlines()
    quoted, carets = lines[3], lines[4]
    assert "\t" not in quoted
    first, last = carets.index("^"), carets.rindex("^") + 1
    assert _chars_under(quoted, first, last) == underlined


def test_multi_line_span_is_underlined_to_the_end_of_its_first_line():
    diagnostic = next(d for d in DIAGNOSTICS if d.code == "E207")
    lines = render([FileReport(SOURCE, [diagnostic])], "full").splitlines()
    assert lines[1] == "  --> strategies/jujube.opl:12:9"
    assert lines[3] == "12 |   sizes [0, 2,"
    assert lines[4] == "   |         ^^^^^^ contains 0"


def test_location_without_a_line_prints_header_and_path_only():
    text = render([FileReport(SourceFile("big.opl", ""), [BIG])], "full")
    assert text == (
        "error[E008]: file is 2000000 bytes, above the limit of 1048576\n"
        " --> big.opl\n"
        "  = help: split the file or remove unrelated content\n"
        "\n"
    )


def test_control_characters_from_the_file_are_drawn_harmlessly():
    source = SourceFile("bin.opl", "S = long \x1b[31mX\x00\n")
    start = source.text.index("\x00")
    diagnostic = Diagnostic("E007", "file contains a NUL byte", source.span(start, start + 1), "binary data")
    text = render([FileReport(source, [diagnostic])], "full")
    assert "\x1b" not in text and "\x00" not in text
    assert "1 | S = long \u241b[31mX\u2400\n" in text
    assert "  | " + " " * len("S = long ␛[31mX") + "^ binary data\n" in text


@pytest.mark.parametrize("breaker", ["\n", "\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"])
def test_a_line_breaking_character_never_splits_a_concise_record(breaker: str):
    # Every character str.splitlines (and so editors' problem matchers) breaks a line at.
    assert len(f"a{breaker}b".splitlines()) == 2
    source = SourceFile(f"odd{breaker}name.opl", "S = long X\n")
    diagnostic = Diagnostic("E101", f"unknown primitive `X{breaker}Y`", source.span(9, 10), "here")
    plain = Diagnostic("E101", "unknown primitive `XY`", source.span(9, 10), "here")
    full = render([FileReport(source, [diagnostic])], "full")
    assert len(full.splitlines()) == len(render([FileReport(SourceFile("n.opl", source.text), [plain])],
                                                "full").splitlines())
    concise = render([FileReport(source, [diagnostic])], "concise")
    assert breaker not in concise[:-1] and concise.endswith("\n")
    assert len(concise.splitlines()) == 1 and concise.startswith("odd") and ":1:10: E101 unknown primitive `X" in concise


def test_c1_controls_and_separators_are_escaped_visibly():
    from opl.lang.render.full import printable

    assert printable("a\u2028b\u2029c\x85d\x9b[31m") == "a\\u2028b\\u2029c\\u0085d\\u009b[31m"


def test_colour_wraps_the_plain_text_and_off_means_no_escapes():
    plain = render(reports(), "full", color=False)
    coloured = render(reports(), "full", color=True)
    assert "\x1b" not in plain
    assert "\x1b[1;31merror[E101]\x1b[0m" in coloured
    assert "\x1b[1;33mwarning[W405]\x1b[0m" in coloured
    assert "\x1b[1;34m|\x1b[0m" in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain


@pytest.mark.parametrize("fmt", ["concise", "json", "sarif"])
def test_machine_formats_never_colour(fmt: str):
    assert render(reports(), fmt, color=True) == render(reports(), fmt, color=False)


def test_nothing_found():
    clean = [FileReport(SourceFile("a.opl", "opl-lang 1.0\n"), [])]
    assert render(clean, "full") == ""
    assert render(clean, "concise") == ""
    assert json.loads(render(clean, "json")) == []
    assert json.loads(render(clean, "sarif"))["runs"][0]["results"] == []
    assert summary_line(clean) == ""
    assert summary_line([]) == ""


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        render(reports(), "xml")


def _report(path: str, *codes: str) -> FileReport:
    return FileReport(SourceFile(path, "x\n"), [Diagnostic(c, "m", Span(1, 1, 1, 2, 0, 1)) for c in codes])


@pytest.mark.parametrize("reports_, expected", [
    ([_report("a", "E101", "E102", "W404")], "error: 2 errors and 1 warning in 1 file"),
    ([_report("a", "W404"), _report("b"), _report("c")], "1 warning in 3 files"),
    ([_report("a", "E101"), _report("b", "W404", "I401", "I302")], "error: 1 error, 1 warning and 2 notes in 2 files"),
    ([_report("a", "I401")], "1 note in 1 file"),
    ([_report("a", "E101", "E101", "E101")], "error: 3 errors in 1 file"),
])
def test_summary_line_wording(reports_: list[FileReport], expected: str):
    assert summary_line(reports_) == expected


def test_concise_lines_follow_the_contract():
    lines = render(reports(), "concise").splitlines()
    assert len(lines) == len(DIAGNOSTICS) + 1
    assert lines[0] == "strategies/jujube.opl:4:12: E102 unknown field `capitl`"
    assert all(re.fullmatch(r"[^:]+:\d+:\d+: [EWI]\d{3} .+", line) for line in lines)


def test_json_fields():
    items = json.loads(render(reports(), "json"))
    assert [item["code"] for item in items] == ["E102", "I401", "W405", "E106", "E002", "E207", "E101", "E008"]
    contract = ["file", "code", "severity", "message", "line", "column", "end_line", "end_column", "help"]
    assert all(list(item)[: len(contract)] == contract for item in items)
    assert all({"label", "notes"} <= set(item) for item in items)
    swap = items[6]
    assert swap == {
        "file": "strategies/jujube.opl", "code": "E101", "severity": "error", "message": "unknown primitive `Swap`",
        "line": 15, "column": 18, "end_line": 15, "end_column": 22, "help": "did you mean `Stock`?",
        "label": "not a primitive",
        "notes": ["primitives are Cash, Stock, Future, ETF, LeveragedETF{β} and Option", "names are case-sensitive"],
    }
    assert items[1]["severity"] == "note" and items[1]["help"] is None
    assert items[5]["end_line"] == 13
    assert items[7]["file"] == "big.opl" and items[7]["label"] is None


def test_sarif_structure():
    log = json.loads(render(reports(), "sarif"))
    assert log["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "opl"
    rules = driver["rules"]
    assert [rule["id"] for rule in rules] == sorted({d.code for d in DIAGNOSTICS} | {"E008"})
    for rule in rules:
        entry = CODES[rule["id"]]
        assert rule["shortDescription"]["text"] == entry.title
        assert rule["fullDescription"]["text"] == entry.explanation
        assert rule["help"]["text"] == explain(rule["id"])
        assert rule["defaultConfiguration"]["level"] == entry.severity
    results = run["results"]
    assert len(results) == len(DIAGNOSTICS) + 1
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note")
        assert result["message"]["text"]
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    by_code = {result["ruleId"]: result for result in results}
    assert by_code["W405"]["level"] == "warning" and by_code["I401"]["level"] == "note"
    assert by_code["E207"]["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 12, "startColumn": 9, "endLine": 13, "endColumn": 12,
    }
    assert "region" not in by_code["E008"]["locations"][0]["physicalLocation"]
    assert by_code["E008"]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "big.opl"


def test_sarif_uri_is_a_relative_reference():
    report = _report("my strategies\\a b.opl", "E101")
    log = json.loads(render([report], "sarif"))
    uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "my%20strategies/a%20b.opl"


def test_renderers_do_not_import_numeric_libraries():
    code = (
        "import sys, opl.lang.render as r\n"
        "from opl.lang.diagnostics import FileReport\n"
        "from opl.lang.source import SourceFile\n"
        "for fmt in r.FORMATS: r.render([FileReport(SourceFile('a', ''), [])], fmt)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'scipy', 'pandas'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])

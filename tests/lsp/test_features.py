"""The editor features as functions (no LSP transport): fixes, half-typed text, documentation."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from opl.lang.fixes import apply_fix, concrete_fixes
from opl.lang.frontend import check_text
from opl.lsp.analysis import analyse
from opl.lsp.completion import completions
from opl.lsp.docs import documentation
from opl.lsp.hover import hover
from opl.lsp.outline import symbols

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p for folder in ("strategies", "examples") for p in (ROOT / folder).rglob("*.opl"))


def _fixed(text: str, code: str) -> str:
    result = check_text(text, "x.opl")
    (diagnostic,) = [d for d in result.report.diagnostics if d.code == code]
    (fix,) = concrete_fixes(diagnostic, result.report.source)
    return apply_fix(text, fix)


def _codes(text: str) -> list[str]:
    return sorted(d.code for d in check_text(text, "x.opl").report.diagnostics)


@pytest.mark.parametrize("broken, code, fixed", [
    ("opl-lang 1.0\ndirction_intent Bull\n", "E102", "opl-lang 1.0\ndirection_intent Bull\n"),
    ("opl-lang 1.0\nexit_mode frist_hit\n", "E105", "opl-lang 1.0\nexit_mode first_hit\n"),
    ("S = long Option(Put, 9800, 30d)\n", "E004", "opl-lang 1.0\nS = long Option(Put, 9800, 30d)\n"),
    ("opl-lang 1.0\nS = long Option(Put, 30d, 9800)\n", "E104", "opl-lang 1.0\nS = long Option(Put, 9800, 30d)\n"),
    ("opl-lang 1.0\nS = long Swap\n", "E101", "opl-lang 1.0\nS = long Stock\n"),
])
def test_a_concrete_fix_makes_the_finding_go_away(broken, code, fixed):
    assert _fixed(broken, code) == fixed
    assert code not in _codes(fixed)


def test_no_fix_without_one_exact_replacement():
    result = check_text("opl-lang 1.0\nzzzz 3\n", "x.opl")
    (diagnostic,) = [d for d in result.report.diagnostics if d.code == "E102"]
    assert diagnostic.help and "did you mean" not in diagnostic.help
    assert concrete_fixes(diagnostic, result.report.source) == ()


def test_the_swapped_strike_and_tenor_is_one_finding():
    text = "opl-lang 1.0\nS = long Option(Put, 30d, 9800)\n"
    found = [d for d in check_text(text, "x.opl").report.diagnostics if d.severity == "error"]
    assert [d.code for d in found] == ["E104"] and "swapped" in found[0].message


def test_every_prefix_of_every_shipped_file_is_served_without_an_exception():
    """Half-typed text: every 19th prefix of each shipped file is checked, outlined, completed and hovered
    (words only: a leg's hover would price it, which tests/lsp/test_server.py covers)."""
    assert len(SHIPPED) >= 10
    started = time.perf_counter()
    for path in SHIPPED:
        text = path.read_text(encoding="utf-8")
        for end in range(0, len(text) + 1, 19):
            prefix = text[:end]
            analysis = analyse(str(path), prefix)
            symbols(analysis)
            completions(prefix, end, [])
            if not analysis.result.legs:
                hover(analysis, max(end - 1, 0))
    assert time.perf_counter() - started < 120


@pytest.mark.parametrize("word, expected", [
    ("price", "underlying price"), ("exit_mode", "first_hit"), ("pnl_percent", "position P&L"),
    ("roll_nearest_term", "nearest listed expiry"), ("IronCondor", "K1, K2, K3, K4, T"), ("E102", "unknown field"),
    ("Bull", "direction_intent"), ("paths", "10,000,000"), ("vol_up", "realised volatility"),
    ("Option", "Option"), ("stop_loss", "share of capital"),
])
def test_documentation_comes_from_the_reference(word, expected):
    assert expected in documentation(word)


def test_an_unknown_word_has_no_documentation():
    assert documentation("frobnicate") is None


def _apply_sarif(text: str, fix: dict) -> str:
    """Apply one SARIF fix by its 1-based line/column regions (as a code-scanning viewer does)."""
    lines = text.splitlines(keepends=True)
    starts = [sum(len(line) for line in lines[:i]) for i in range(len(lines) + 1)]
    (change,) = fix["artifactChanges"]
    edits = []
    for replacement in change["replacements"]:
        region = replacement["deletedRegion"]
        start = starts[region["startLine"] - 1] + region["startColumn"] - 1
        end = starts[region["endLine"] - 1] + region["endColumn"] - 1
        edits.append((start, end, replacement["insertedContent"]["text"]))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def test_sarif_fixes_are_the_code_actions_edits():
    import json

    from opl.lang.render import render

    text = "S = long Option(Put, 30d, 9800) + long Swap\ndirction_intent Bull\nexit_mode frist_hit\n"
    result = check_text(text, "x.opl")
    (run,) = json.loads(render([result.report], "sarif"))["runs"]
    fixed = {r["ruleId"]: _apply_sarif(text, r["fixes"][0]) for r in run["results"] if "fixes" in r}
    assert set(fixed) == {"E004", "E101", "E102", "E104", "E105"}
    for diagnostic in result.report.diagnostics:
        for fix in concrete_fixes(diagnostic, result.report.source):
            assert fixed[diagnostic.code] == apply_fix(text, fix)
            assert diagnostic.code not in _codes(fixed[diagnostic.code])


def test_hover_inside_the_experiment_block_reads_the_setting():
    text = "opl-lang 1.0\niv 0.25\nexperiment {\n  iv smile(spread=8%)\n}\n"
    analysis = analyse("x.opl", text)
    market = hover(analysis, text.index("iv"))
    setting = hover(analysis, text.index("iv smile"))
    assert "annual implied volatility" in market.text
    assert "experiment setting" in setting.text and "smile" in setting.text


def test_documentation_is_well_formed_markdown_for_every_word():
    from opl.lang import vocabulary as vocab
    from opl.lang.templates import TEMPLATES

    words = (vocab.ALL_FIELDS + vocab.EXPERIMENT_SETTINGS + vocab.PRIMITIVES + tuple(vocab.TRIGGERS)
             + tuple(vocab.ACTIONS) + tuple(TEMPLATES) + vocab.EXIT_MODES + vocab.DIRECTIONS)
    for word in words:
        text = documentation(word)
        assert text, word  # the reference documents every word of the vocabulary
        for line in text.splitlines():
            assert "```" not in line or line.startswith("```"), (word, line)  # a fence opens a line
